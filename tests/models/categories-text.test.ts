import { describe, expect, it } from 'vitest';
import { readCategories } from '../../src/models/categories-text.js';

describe("a model's categories as an operator writes them in the console", () => {
  it('read feature: baseline, value parts separated by semicolons or new lines', () => {
    expect(readCategories('customer_type: household, enterprise; town: 泥城镇, 书院镇\nsex: F, M')).toEqual({
      categories: { customer_type: ['household', 'enterprise'], town: ['泥城镇', '书院镇'], sex: ['F', 'M'] },
    });
  });

  it('read an empty text as no categories', () => {
    expect(readCategories('  ')).toEqual({ categories: {} });
  });

  it('name back a part without a colon, with one value, or naming a feature twice', () => {
    expect(readCategories('customer_type household')).toEqual({ problem: '"customer_type household" is not feature: baseline, value, …' });
    expect(readCategories('town: 泥城镇')).toEqual({ problem: '"town: 泥城镇" is not feature: baseline, value, …' });
    expect(readCategories('town: a, b; town: c, d')).toEqual({ problem: 'town is named twice' });
  });
});
