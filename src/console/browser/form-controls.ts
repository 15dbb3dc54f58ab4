import { h } from './dom.js';
import { t, tValue, type Phrase } from './i18n.js';

/**
 * Form controls shared by the console's larger forms (registrations, product definitions): one control per field,
 * its value or nothing when left empty (so optional fields are left out of the request), and editable rows.
 */
type Values = Record<string, unknown>;

/** The catalogue's choices, as the console offers them (the server's schemas check them again). */
export const catalogueChoices = {
  grades: ['L1', 'L2', 'L3', 'L4', 'important', 'core'],
  sharingTypes: ['unconditional', 'conditional', 'none'],
  frequencies: ['daily', 'weekly', 'monthly', 'quarterly', 'yearly', 'static'],
  columnClasses: ['direct_identifier', 'quasi_identifier', 'sensitive', 'attribute'],
};

/** A control under its label. */
export const labelled = (label: string, element: HTMLElement) => h('div', {}, h('label', {}, label), element);

/** How one field of a form is edited; `empty` choices may be left unset (for a review to point out, or optional). */
export type Field = { key: string; label: Phrase; kind: 'text' | 'date' | 'check' | 'type' | 'number' | { choices: string[]; phrase?: 'class' | 'sharing' | 'frequency' | 'registrationKind'; empty?: boolean } };

/** One field's control, named by its key (and given `id` when a form addresses it alone). */
export function control(field: Pick<Field, 'key' | 'kind'>, value: unknown, id?: string): HTMLInputElement | HTMLSelectElement {
  const name = field.key;
  if (field.kind === 'check') return h('input', { type: 'checkbox', name, id, checked: value === true });
  if (field.kind === 'text' || field.kind === 'date' || field.kind === 'number') return h('input', { name, id, type: field.kind, value: value === undefined || value === null ? '' : String(value) });
  if (field.kind === 'type') return h('input', { name, id, list: 'column-types', value: value === undefined ? 'VARCHAR' : String(value) });
  const { choices, phrase, empty } = field.kind;
  return h(
    'select',
    { name, id },
    empty ? h('option', { value: '' }, t('notSet')) : null,
    ...choices.map((choice) => h('option', { value: choice, selected: choice === value }, phrase ? tValue(phrase, choice) : choice)),
  );
}

/** What a control holds, or undefined when it is empty (the field is then left out). */
export function filledValue(element: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement): unknown {
  if (element instanceof HTMLInputElement && element.type === 'checkbox') return element.checked;
  const value = element.value.trim();
  if (value === '') return undefined;
  return element instanceof HTMLInputElement && element.type === 'number' ? Number(value) : value;
}

/** Rows of the same fields (columns, unstructured items, product inputs, bindings), with add and remove. */
export function rowsEditor(fields: Field[], initial: Values[], addLabel: Phrase, attributes: Record<string, string>) {
  const body = h('tbody', {});
  const addRow = (values: Values = {}) => {
    const row = h('tr', {}, ...fields.map((field) => h('td', {}, control(field, values[field.key]))));
    row.append(h('td', {}, h('button', { class: 'secondary remove', type: 'button', onclick: () => row.remove() }, '×')));
    body.append(row);
  };
  for (const values of initial) addRow(values);
  const element = h(
    'div',
    attributes,
    h('table', { class: 'rows' }, h('thead', {}, h('tr', {}, ...fields.map((field) => h('th', {}, t(field.label))), h('th', {}, ''))), body),
    h('button', { class: 'secondary add', type: 'button', onclick: () => addRow() }, t(addLabel)),
  );
  const values = (): Values[] =>
    [...body.querySelectorAll('tr')].map((row) => Object.fromEntries(fields.flatMap((field) => {
      const value = filledValue(row.querySelector(`[name="${field.key}"]`) as HTMLInputElement | HTMLSelectElement);
      return value === undefined ? [] : [[field.key, value]];
    })));
  return { element, values, addRow };
}

