import { beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { personalIdentifierForms } from '../../src/catalog/identity-numbers.js';
import { issueDetails } from '../../src/errors/validation-error.js';

let detailText: (detail: { path?: string; problem: string }) => string;
let setLanguage: (language: 'zh' | 'en') => void;

beforeAll(async () => {
  // The console's modules read the chosen language from the browser's storage when loaded.
  const stored = new Map<string, string>([['pds-language', 'zh']]);
  vi.stubGlobal('localStorage', { getItem: (key: string) => stored.get(key) ?? null, setItem: (key: string, value: string) => void stored.set(key, value) });
  vi.stubGlobal('document', { documentElement: { lang: '' } });
  ({ detailText } = await import('../../src/console/browser/error-meanings.js'));
  ({ setLanguage } = await import('../../src/console/browser/i18n.js'));
});

describe("a delivery refusal's details in Chinese", () => {
  it('says which values do not cast, which are empty, and which columns are missing or extra', () => {
    setLanguage('zh');
    expect(detailText({ path: 'kwh', problem: '3 value(s) are not DOUBLE (first at data row 7)' })).toBe('kwh 3 个值不是 DOUBLE 类型（第一个在第 7 行数据）');
    expect(detailText({ path: 'town', problem: '2 empty value(s) in a column that may not be empty (first at data row 1)' })).toBe('town 2 个空值，但该列不允许为空（第一个在第 1 行数据）');
    expect(detailText({ path: 'town', problem: 'registered column missing from the file' })).toBe('town 文件中缺少这一登记的列');
    expect(detailText({ path: 'extra', problem: 'column not in the registered schema' })).toBe('extra 这一列不在登记的字段中');
    expect(detailText({ path: 'account_id, month', problem: '4 key value(s) appear on more than one row' })).toBe('account_id, month 4 个键值出现在不止一行');
  });

  it('names every form of personal identifier the load check knows, for a protected column and for open data', () => {
    setLanguage('zh');
    for (const form of personalIdentifierForms) {
      const protectedColumn = detailText({ path: 'c', problem: `3 of 4 value(s) look like ${form.kind}, but the column is classed attribute: class it a direct identifier (or a quasi-identifier) in a catalogue revision first` });
      expect(protectedColumn, form.kind).toMatch(/^c 4 个值中有 3 个像.+，但该列登记为“属性”：请先在目录修订中改为直接标识符（或准标识符）$/);
      expect(detailText({ path: 'c', problem: `1 value(s) look like ${form.kind}: open data is published row by row, so personal identifiers may not be in it` }), form.kind).toMatch(/^c 1 个值像.+：开放数据逐行公开，不得含有个人标识$/);
    }
  });

  it("says in Chinese which rule a form's field broke, as the server names it", () => {
    setLanguage('zh');
    // The details as the server writes them, from zod's own issues (src/errors/validation-error.ts).
    const form = z.strictObject({
      short: z.string().trim().min(4),
      long: z.string().max(6),
      low: z.number().min(0),
      high: z.number().max(10),
      empty: z.array(z.string()).min(1),
      outcome: z.enum(['no_action', 'operator_warned']),
      text: z.string(),
      whole: z.number().int(),
      code: z.string().regex(/^[a-z]+$/),
    });
    const parsed = form.safeParse({ short: 'ab', long: 'abcdefgh', low: -1, high: 11, empty: [], outcome: 'forgiven', text: 3, whole: 1.5, code: 'A1', extra: true });
    expect(parsed.success).toBe(false);
    const shown = Object.fromEntries(issueDetails(parsed.error!).map((detail) => [detail.path, detailText(detail)]));
    expect(shown).toEqual({
      short: 'short 长度应至少 4 个字符',
      long: 'long 长度应至多 6 个字符',
      low: 'low 应至少 0',
      high: 'high 应至多 10',
      empty: 'empty 应至少有 1 项',
      outcome: 'outcome 应为以下之一：no_action、operator_warned',
      text: 'text 应为文本',
      whole: 'whole 应为整数',
      code: 'code 格式不符合要求',
      '(root)': '(root) unrecognized keys',
    });
    expect(detailText({ path: 'extra', problem: 'unknown field' })).toBe('extra 未定义的字段');
  });

  it('leaves a problem it does not know, and every problem in English, as the server wrote it', () => {
    setLanguage('zh');
    expect(detailText({ path: 'x', problem: 'is something new' })).toBe('x is something new');
    setLanguage('en');
    expect(detailText({ path: 'kwh', problem: '3 value(s) are not DOUBLE (first at data row 7)' })).toBe('kwh 3 value(s) are not DOUBLE (first at data row 7)');
  });
});
