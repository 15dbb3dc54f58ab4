import { describe, expect, it } from 'vitest';
import { consistentMargins } from '../../src/privacy/consistent-margins.js';

const close = (actual: Float64Array, expected: number[]) => expected.forEach((value, index) => expect(actual[index]).toBeCloseTo(value, 9));

describe('least-squares consistency of grouping sets', () => {
  it('spreads the gap between a total and its cells evenly: (T − Σc)/(n + 1) onto each cell', () => {
    // ROLLUP (a) over three values: cells 10, 20, 30 and a total of 66 measured with the same noise.
    const [cells, total] = consistentMargins([3], [[0], []], [[10, 20, 30], [66]]);
    close(cells!, [11.5, 21.5, 31.5]);
    close(total!, [64.5]);
  });

  it('leaves figures that already add up as they are', () => {
    // A 2 × 3 table, both margins and the total, all exact.
    const table = [1, 2, 3, 4, 5, 6];
    const [full, byA, byB, total] = consistentMargins([2, 3], [[0, 1], [0], [1], []], [table, [6, 15], [5, 7, 9], [21]]);
    close(full!, table);
    close(byA!, [6, 15]);
    close(byB!, [5, 7, 9]);
    close(total!, [21]);
  });

  it('reconciles two margins with no table between them, keeping the differences within each', () => {
    // GROUPING SETS ((a), (b)): 10 + 20 against 5 + 5 + 5. Least squares moves a's two cells by −3 and b's three by
    // +3 (minimising 2·d₁² + 3·d₂² with 30 + 2·d₁ = 15 + 3·d₂), so both add up to 24.
    const [byA, byB] = consistentMargins([2, 3], [[0], [1]], [[10, 20], [5, 5, 5]]);
    close(byA!, [7, 17]);
    close(byB!, [8, 8, 8]);
  });

  it('reads a set whose keys are listed in another order in that order', () => {
    const table = [1, 2, 3, 4, 5, 6]; // a slowest, b fastest
    const transposed = [1, 4, 2, 5, 3, 6]; // b slowest, a fastest
    const [first, second] = consistentMargins([2, 3], [[0, 1], [1, 0]], [table, transposed]);
    close(first!, table);
    close(second!, transposed);
  });

  it('refuses a full table larger than it takes on', () => {
    expect(() => consistentMargins([1000, 1000], [[0], [1]], [new Float64Array(1000), new Float64Array(1000)])).toThrow(RangeError);
  });
});
