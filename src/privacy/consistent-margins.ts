/**
 * Least-squares consistency for the tables of a DP release with grouping sets (ROLLUP, CUBE, GROUPING SETS).
 *
 * Each grouping set is a table of noisy figures, each cell noised on its own with the same scale in every set, so a
 * total is not the sum of its cells. Post-processing can make them agree without spending budget: take the full
 * table over every key x whose margins best fit what was measured (ordinary least squares — the noise is
 * independent and of one variance across sets, so this is the best linear unbiased estimate), and release its
 * margins. Every released figure then adds up (a total is the sum of its cells, a month's total the sum over its
 * towns), and each is at least as accurate as the noisy one it replaces: the total of n cells that were noised
 * separately is informed by them (Hay et al., "Boosting the accuracy of differentially private histograms through
 * consistency", VLDB 2010; the US Census TopDown algorithm does the same in more dimensions).
 *
 * Only figures that add up over cells are adjusted (row counts and sums); distinct units do not (one unit is in
 * many cells, once in their total). The full table may be underdetermined (GROUPING SETS ((a), (b)) measures no
 * (a, b) cell); its margins are not, and conjugate gradients from zero reach them: the normal equations' operator
 * over a product of domains has at most 2^k distinct eigenvalues for k keys, so it converges in that many steps.
 */

/** The most cells of the full table (the product of every key's domain) the solver takes on. */
export const MAX_CONSISTENT_CELLS = 200_000;

/**
 * The margins of the least-squares full table, for each set in the order given.
 * `domainSizes[k]` is key k's number of values; `sets[s]` lists the keys of set s (a cell's keys in that order, the
 * first varying slowest, as the release lists them); `measured[s]` holds set s's noisy figures in that cell order.
 */
export function consistentMargins(domainSizes: number[], sets: number[][], measured: ArrayLike<number>[]): Float64Array[] {
  const cells = domainSizes.reduce((product, size) => product * size, 1);
  if (cells > MAX_CONSISTENT_CELLS) throw new RangeError('the full table is too large to fit');
  // For each set, the cell of the set that each cell of the full table adds to.
  const cellOf = sets.map((set) => {
    const map = new Int32Array(cells);
    const digits = new Array<number>(domainSizes.length).fill(0);
    for (let flat = 0; flat < cells; flat++) {
      let cell = 0;
      for (const key of set) cell = cell * domainSizes[key]! + digits[key]!;
      map[flat] = cell;
      // Count in mixed radix, the last key fastest.
      for (let key = domainSizes.length - 1; key >= 0; key--) {
        if (++digits[key]! < domainSizes[key]!) break;
        digits[key] = 0;
      }
    }
    return map;
  });
  const setSizes = sets.map((set) => set.reduce((product, key) => product * domainSizes[key]!, 1));
  sets.forEach((_, s) => {
    if (measured[s]!.length !== setSizes[s]) throw new RangeError(`set ${s} has ${measured[s]!.length} figures for ${setSizes[s]} cells`);
  });

  const margins = (x: Float64Array): Float64Array[] =>
    cellOf.map((map, s) => {
      const margin = new Float64Array(setSizes[s]!);
      for (let flat = 0; flat < cells; flat++) margin[map[flat]!]! += x[flat]!;
      return margin;
    });
  /** Σ over sets of Mᵀ(y): each full cell gets the figure of the cell it adds to in every set. */
  const spread = (ys: ArrayLike<number>[]): Float64Array => {
    const out = new Float64Array(cells);
    cellOf.forEach((map, s) => {
      const y = ys[s]!;
      for (let flat = 0; flat < cells; flat++) out[flat]! += y[map[flat]!]!;
    });
    return out;
  };
  const dot = (a: Float64Array, b: Float64Array) => {
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
    return sum;
  };

  // Conjugate gradients on MᵀM x = Mᵀy from x = 0.
  const x = new Float64Array(cells);
  const r = spread(measured);
  const p = Float64Array.from(r);
  const scale = dot(r, r);
  let rr = scale;
  for (let step = 0; step < 4 * (2 ** Math.min(domainSizes.length, 10)) + 10 && rr > scale * 1e-26; step++) {
    const Ap = spread(margins(p));
    const pAp = dot(p, Ap);
    if (pAp <= 0) break;
    const alpha = rr / pAp;
    for (let i = 0; i < cells; i++) {
      x[i]! += alpha * p[i]!;
      r[i]! -= alpha * Ap[i]!;
    }
    const next = dot(r, r);
    const beta = next / rr;
    rr = next;
    for (let i = 0; i < cells; i++) p[i] = r[i]! + beta * p[i]!;
  }
  return margins(x);
}
