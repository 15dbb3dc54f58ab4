import { z } from 'zod';
import type { ColumnSpec } from '../catalog/columns.js';

/**
 * Quality rules a source institution declares for its dataset (measures arts. 9, 12). They run inside DuckDB on
 * every new version and report counts only — rows checked, rows in violation — never a row or a value, since the
 * results reach the catalogue and the supervision report.
 */
const column = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/);
// A share of checked rows that may violate the rule before the version fails it (0 = none may).
const tolerance = z.number().min(0).max(1).default(0);

export const qualityRuleSchema = z.discriminatedUnion('rule', [
  z.strictObject({ rule: z.literal('not_null'), column, tolerance }),
  z.strictObject({ rule: z.literal('unique'), columns: z.array(column).min(1).max(10), tolerance }),
  z.strictObject({ rule: z.literal('range'), column, min: z.number().optional(), max: z.number().optional(), tolerance }),
  // DuckDB matches with RE2 (linear time, so no pattern can stall a check); lookarounds and back-references are not RE2.
  z.strictObject({ rule: z.literal('pattern'), column, pattern: z.string().min(1).max(200), tolerance }),
  // GB 11643 resident ID numbers and GB 32100 unified social credit codes, check character included.
  z.strictObject({ rule: z.literal('resident_id'), column, tolerance }),
  z.strictObject({ rule: z.literal('credit_code'), column, tolerance }),
  // Every non-empty value must appear in a column of another dataset's latest version.
  z.strictObject({ rule: z.literal('reference'), column, dataset: z.string().regex(/^[a-z][a-z0-9_]{2,62}$/), references: column, tolerance }),
  // The newest date in the column must be within `periods` update periods of the load (declared frequency).
  z.strictObject({ rule: z.literal('freshness'), column, periods: z.number().int().min(1).max(24).default(2), tolerance }),
  // Art. 9's completeness (完整性) across deliveries: the rows of the previous version, by these key columns, that
  // the new version no longer holds; `tolerance` is the share of the previous version's rows that may go.
  z.strictObject({ rule: z.literal('completeness'), columns: z.array(column).min(1).max(10), tolerance }),
]);
export type QualityRule = z.infer<typeof qualityRuleSchema>;
export type QualityRuleInput = z.input<typeof qualityRuleSchema>;

export type QualityRuleResult = {
  rule: QualityRule['rule'];
  label: string;
  status: 'passed' | 'failed' | 'not_checked';
  checked: number;
  violations: number;
  /** Why a rule could not run (a referenced dataset without data, a static dataset's freshness). */
  note?: string;
};

const numericType = /^(INTEGER|BIGINT|DOUBLE|DECIMAL\(\d+,\d+\))$/;

/** Rule checks that need the columns: names exist, types suit the rule. Returns problems by rule index. */
export function checkRulesAgainstColumns(rules: QualityRule[], columns: ColumnSpec[], updateFrequency: string): Array<{ index: number; problem: string }> {
  const problems: Array<{ index: number; problem: string }> = [];
  const typeOf = new Map(columns.map((entry) => [entry.name, entry.type]));
  rules.forEach((rule, index) => {
    const names = rule.rule === 'unique' || rule.rule === 'completeness' ? rule.columns : [rule.column];
    for (const name of names) if (!typeOf.has(name)) problems.push({ index, problem: `names an unknown column ${name}` });
    if (rule.rule === 'unique' || rule.rule === 'completeness') return;
    const type = typeOf.get(rule.column);
    if (!type) return;
    if (['pattern', 'resident_id', 'credit_code'].includes(rule.rule) && type !== 'VARCHAR') problems.push({ index, problem: `${rule.rule} needs a VARCHAR column` });
    if (rule.rule === 'range') {
      if (!numericType.test(type)) problems.push({ index, problem: 'range needs a numeric column' });
      if (rule.min === undefined && rule.max === undefined) problems.push({ index, problem: 'range needs min, max or both' });
      if (rule.min !== undefined && rule.max !== undefined && rule.min > rule.max) problems.push({ index, problem: 'min must not exceed max' });
    }
    if (rule.rule === 'freshness') {
      if (type !== 'DATE' && type !== 'TIMESTAMP') problems.push({ index, problem: 'freshness needs a DATE or TIMESTAMP column' });
      if (updateFrequency === 'static') problems.push({ index, problem: 'a static dataset has no freshness' });
    }
    if (rule.rule === 'pattern') {
      const problem = patternProblem(rule.pattern);
      if (problem) problems.push({ index, problem });
    }
  });
  return problems;
}

function patternProblem(pattern: string): string | undefined {
  if (/\(\?[=!<]|\\[1-9]/.test(pattern)) return 'the pattern uses lookarounds or back-references, which RE2 does not support';
  try {
    new RegExp(pattern, 'u');
    return undefined;
  } catch {
    return 'the pattern is not a valid regular expression';
  }
}

export function ruleLabel(rule: QualityRule): string {
  switch (rule.rule) {
    case 'unique':
      return `unique(${rule.columns.join(', ')})`;
    case 'completeness':
      return `completeness(${rule.columns.join(', ')})`;
    case 'range':
      return `range(${rule.column}, ${rule.min ?? '−∞'}..${rule.max ?? '∞'})`;
    case 'reference':
      return `reference(${rule.column} → ${rule.dataset}.${rule.references})`;
    case 'freshness':
      return `freshness(${rule.column}, ${rule.periods} periods)`;
    default:
      return `${rule.rule}(${rule.column})`;
  }
}
