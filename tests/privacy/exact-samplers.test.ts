import { describe, expect, it } from 'vitest';
import {
  bernoulliExpMinus,
  discreteGaussian,
  discreteGaussianPmf,
  discreteLaplace,
  discreteLaplacePmf,
} from '../../src/privacy/exact-samplers.js';

/**
 * Goodness of fit against the exact distributions (Pearson's χ² over the central values, tails pooled). The
 * critical values are for p = 0.0001 (scipy.stats.chi2.ppf), so a correct sampler fails about once in ten
 * thousand runs of each case, while a wrong scale or a biased tail fails at once.
 */
const chiSquareCritical: Record<number, number> = { 6: 27.86, 8: 31.83, 16: 45.92, 18: 49.19, 28: 64.66, 38: 79.22 };

/**
 * Bins −halfWidth < y < halfWidth one by one and pools each tail (|y| ≥ halfWidth) into one bin; halfWidth is
 * chosen per case so that every bin expects at least five samples, as the χ² approximation needs.
 */
function chiSquare(samples: bigint[], pmf: (y: number) => number, halfWidth: number) {
  const counts = new Map<number, number>();
  for (const sample of samples) {
    const y = Number(sample);
    const key = y >= halfWidth ? halfWidth : y <= -halfWidth ? -halfWidth : y;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let statistic = 0;
  let inside = 0;
  for (let y = -halfWidth + 1; y <= halfWidth - 1; y++) {
    const expected = pmf(y) * samples.length;
    inside += pmf(y);
    statistic += ((counts.get(y) ?? 0) - expected) ** 2 / expected;
  }
  const tailExpected = ((1 - inside) / 2) * samples.length;
  for (const tail of [halfWidth, -halfWidth]) statistic += ((counts.get(tail) ?? 0) - tailExpected) ** 2 / tailExpected;
  return { statistic, degreesOfFreedom: 2 * halfWidth };
}

describe('Bernoulli(exp(−γ))', () => {
  it.each([
    [1n, 2n],
    [3n, 2n],
    [5n, 1n],
  ])('γ = %s/%s is right within sampling error', (numerator, denominator) => {
    const n = 20_000;
    let hits = 0;
    for (let i = 0; i < n; i++) if (bernoulliExpMinus({ numerator, denominator })) hits++;
    const p = Math.exp(-Number(numerator) / Number(denominator));
    expect(Math.abs(hits / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n) + 1e-3);
  });
});

describe('discrete Laplace', () => {
  it.each([
    { scale: 1, halfWidth: 4 },
    { scale: 3, halfWidth: 9 },
    { scale: 10, halfWidth: 19 },
  ])('fits the exact distribution at scale $scale', ({ scale, halfWidth }) => {
    const samples = Array.from({ length: 20_000 }, () => discreteLaplace({ numerator: BigInt(scale), denominator: 1n }));
    const { statistic, degreesOfFreedom } = chiSquare(samples, (y) => discreteLaplacePmf(y, scale), halfWidth);
    expect(statistic).toBeLessThan(chiSquareCritical[degreesOfFreedom]!);
  });
});

describe('discrete Gaussian', () => {
  it.each([
    { sigmaSquared: 1, halfWidth: 3 },
    { sigmaSquared: 9, halfWidth: 8 },
    { sigmaSquared: 49, halfWidth: 14 },
  ])('fits the exact distribution at σ² = $sigmaSquared', ({ sigmaSquared, halfWidth }) => {
    const samples = Array.from({ length: 20_000 }, () => discreteGaussian({ numerator: BigInt(sigmaSquared), denominator: 1n }));
    const { statistic, degreesOfFreedom } = chiSquare(samples, (y) => discreteGaussianPmf(y, sigmaSquared), halfWidth);
    expect(statistic).toBeLessThan(chiSquareCritical[degreesOfFreedom]!);
  });
});

it('the fit test itself rejects a sampler of the wrong scale', () => {
  const samples = Array.from({ length: 20_000 }, () => discreteLaplace({ numerator: 3n, denominator: 1n }));
  const { statistic, degreesOfFreedom } = chiSquare(samples, (y) => discreteLaplacePmf(y, 2), 9);
  expect(statistic).toBeGreaterThan(chiSquareCritical[degreesOfFreedom]!);
});

describe('no gaps in the output (the floating-point Laplace attack)', () => {
  it('outputs for true values 0 and 1 are integers over the same support', () => {
    // Every integer has positive probability under both, so no output tells the two apart for certain.
    const zero = new Set(Array.from({ length: 5000 }, () => Number(discreteLaplace({ numerator: 2n, denominator: 1n }))));
    const one = new Set(Array.from({ length: 5000 }, () => 1 + Number(discreteLaplace({ numerator: 2n, denominator: 1n }))));
    for (const value of [...zero, ...one]) {
      expect(Number.isInteger(value)).toBe(true);
      expect(discreteLaplacePmf(value, 2)).toBeGreaterThan(0);
      expect(discreteLaplacePmf(value - 1, 2)).toBeGreaterThan(0);
    }
    // Overlap where the mass is: each integer within ±6 of the centre has probability above 1 % at this scale,
    // so 5,000 draws miss one with probability below 10⁻²⁰ (a fraction-of-distinct-values check failed by chance).
    for (let value = -5; value <= 6; value++) {
      expect(zero.has(value)).toBe(true);
      expect(one.has(value)).toBe(true);
    }
  });
});
