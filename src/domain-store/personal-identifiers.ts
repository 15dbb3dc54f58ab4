import { DuckDBInstance } from '@duckdb/node-api';
import { personalIdentifierForms, type PersonalIdentifierForm } from '../catalog/identity-numbers.js';
import type { ColumnSpec } from '../catalog/columns.js';
import { sqlIdentifier, sqlString } from '../duckdb/sql-literals.js';
import { AppError, type ErrorDetail } from '../errors/app-error.js';

type Connection = Awaited<ReturnType<DuckDBInstance['connect']>>;

/**
 * A column whose values are personal identifiers must be classed as one. The class decides what the sandbox lets
 * out: an attribute may be a group key whose values are listed even in a withheld cell, a sensitive value may be
 * summed, and open data leaves row by row. So a mobile-number column registered as an attribute would let
 * `SELECT contact, count(*) … GROUP BY contact` list every number.
 *
 * Problems name the column, the form and how many values (never a value): in a protected dataset, an attribute or
 * sensitive column more than 1 % of whose values have such a form (a stray match among codes is not a misclassified
 * column); in open data, any column with one such value, whatever its class, since each row is published. A form
 * that other values take by chance (bank card numbers: one in ten numbers of their shape) needs its
 * `minimumShare` of the column in both, and one a few categories could take (names: towns) its `minimumDistinct`. One pass over `table`, inside DuckDB.
 */
export async function personalIdentifierProblems(connection: Connection, table: string, columns: ColumnSpec[], openData: boolean): Promise<ErrorDetail[]> {
  // Only text and whole numbers can hold these forms (a mobile or ID number may be stored as a number); dates,
  // decimals and booleans are not read, which keeps the pass cheap on large deliveries.
  const checked = columns.filter((column) => (openData || column.class === 'attribute' || column.class === 'sensitive') && canHoldIdentifier(column.type));
  if (checked.length === 0) return [];
  const text = (column: ColumnSpec) => `trim(CAST(${sqlIdentifier(column.name)} AS VARCHAR))`;
  const measures = checked.flatMap((column) => [`count(${sqlIdentifier(column.name)})`, ...personalIdentifierForms.map((form) => `count(*) FILTER (WHERE ${formConditionSql(form, text(column))})`)]);
  const row = (await connection.runAndReadAll(`SELECT ${measures.join(', ')} FROM ${table}`)).getRows()[0]!.map((value) => Number(value ?? 0));
  const width = 1 + personalIdentifierForms.length;
  const suspects = checked.flatMap((column, index) => {
    const [present = 0, ...matches] = row.slice(index * width, (index + 1) * width);
    return personalIdentifierForms.flatMap((form, formIndex) => {
      const count = matches[formIndex] ?? 0;
      if (count === 0 || (!openData && count * 100 <= present) || (form.minimumShare !== undefined && count <= form.minimumShare * present)) return [];
      return [{ column, form, count, present }];
    });
  });
  // A form that a few categories could take needs enough different values too. Counted in a second pass over the
  // few columns already suspected: hashing every value of every column cost a 2 M-row load more than all the forms.
  // An estimate (HyperLogLog) is enough to tell thirty names from five towns.
  const needingDistinct = suspects.filter(({ form }) => form.minimumDistinct !== undefined);
  const distinct =
    needingDistinct.length === 0
      ? []
      : (await connection.runAndReadAll(`SELECT ${needingDistinct.map(({ column, form }) => `approx_count_distinct(${text(column)}) FILTER (WHERE ${formConditionSql(form, text(column))})`).join(', ')} FROM ${table}`))
          .getRows()[0]!
          .map((value) => Number(value ?? 0));
  return suspects
    .filter((suspect) => suspect.form.minimumDistinct === undefined || distinct[needingDistinct.indexOf(suspect)]! >= suspect.form.minimumDistinct)
    .map(({ column, form, count, present }) => ({
      path: column.name,
      problem: openData
        ? `${count} value(s) look like ${form.kind}: open data is published row by row, so personal identifiers may not be in it`
        : `${count} of ${present} value(s) look like ${form.kind}, but the column is classed ${column.class.replaceAll('_', ' ')}: class it a direct identifier (or a quasi-identifier) in a catalogue revision first`,
    }));
}

/**
 * Whether `text` has the form, as a DuckDB condition. DuckDB evaluates both sides of an AND, so the further tests
 * (the Luhn sum, the endings a form's values must not have) sit in a CASE and run only over values of the form:
 * the Luhn sum would fail casting letters, and the endings test over every value of a 2 M-row load took half as
 * long as all the forms together. A form whose values all contain some text (a space, for names in pinyin) is matched
 * only against values that contain it: most columns of a delivery have no spaces, and `contains` is cheaper than
 * the pattern (~40 ms instead of ~70 ms over the 2.1 M-row readings).
 */
function formConditionSql(form: PersonalIdentifierForm, text: string): string {
  const further = [...(form.luhn ? [passesLuhnSql(text)] : []), ...(form.unless === undefined ? [] : [`NOT regexp_matches(${text}, ${sqlString(form.unless)})`])];
  const ofForm = `regexp_full_match(${text}, ${sqlString(form.pattern)})`;
  const matched = further.length === 0 ? ofForm : `CASE WHEN ${ofForm} THEN ${further.join(' AND ')} ELSE false END`;
  return form.contains === undefined ? matched : `CASE WHEN contains(${text}, ${sqlString(form.contains)}) THEN ${matched} ELSE false END`;
}

const canHoldIdentifier = (type: string) => type === 'VARCHAR' || type === 'BIGINT';

/** The Luhn check (as `passesLuhn`) of a text's digits, inside DuckDB: every second digit from the right doubled. */
const passesLuhnSql = (text: string) =>
  `list_sum(list_transform(list_reverse(string_split(regexp_replace(${text}, '[- ]', '', 'g'), '')), lambda digit, position: CASE WHEN position % 2 = 1 THEN ascii(digit) - 48 ELSE (ascii(digit) - 48) * 2 - CASE WHEN digit >= '5' THEN 9 ELSE 0 END END)) % 10 = 0`;

export const classificationRefusal = (details: ErrorDetail[]) => new AppError('COLUMN_CLASS_SUSPECT', 'a column holds personal identifiers its registered class does not allow for', details);

/**
 * The same check over a loaded snapshot, for a catalogue revision that would change a column's class or open the
 * data: a revision must not make a loaded identifier column an attribute (or publish it) where a load could not.
 */
export async function snapshotIdentifierProblems(snapshotPath: string, columns: ColumnSpec[], openData: boolean): Promise<ErrorDetail[]> {
  const instance = await DuckDBInstance.create(snapshotPath, { access_mode: 'READ_ONLY', threads: '2' });
  try {
    const connection = await instance.connect();
    try {
      return await personalIdentifierProblems(connection, 'data', columns, openData);
    } finally {
      connection.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}
