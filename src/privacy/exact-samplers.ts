import crypto from 'node:crypto';

/**
 * Exact samplers for differential privacy after Canonne, Kamath and Steinke, "The Discrete Gaussian for
 * Differential Privacy" (NeurIPS 2020), algorithms 1–3. Every step is integer or rational arithmetic on BigInt
 * with randomness from node:crypto: no floating point anywhere, so there are none of the gaps and biases that
 * break floating-point Laplace noise (Mironov 2012). Parameters are rationals `numerator / denominator`.
 */
export type Rational = { numerator: bigint; denominator: bigint };
export type RandomSource = { below: (bound: bigint) => bigint };

/** Uniform integers in [0, bound) by rejection from whole random bytes (no modulo bias). */
export const cryptoRandom: RandomSource = {
  below(bound: bigint): bigint {
    if (bound <= 0n) throw new RangeError('bound must be positive');
    if (bound === 1n) return 0n;
    const bits = bound.toString(2).length;
    const bytes = Math.ceil(bits / 8);
    const mask = (1n << BigInt(bits)) - 1n;
    for (;;) {
      const candidate = BigInt(`0x${crypto.randomBytes(bytes).toString('hex')}`) & mask;
      if (candidate < bound) return candidate;
    }
  },
};

const rational = (numerator: bigint, denominator: bigint): Rational => {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  return { numerator, denominator };
};

/** Bernoulli(p) for rational p in [0, 1]. */
export function bernoulli(p: Rational, random: RandomSource = cryptoRandom): boolean {
  if (p.numerator < 0n || p.numerator > p.denominator) throw new RangeError('p must lie in [0, 1]');
  return random.below(p.denominator) < p.numerator;
}

/** Bernoulli(exp(−γ)) for rational γ ≥ 0 (algorithm 1). */
export function bernoulliExpMinus(gamma: Rational, random: RandomSource = cryptoRandom): boolean {
  if (gamma.numerator < 0n) throw new RangeError('γ must be non-negative');
  if (gamma.numerator <= gamma.denominator) {
    // K ← 1; while Bernoulli(γ/K): K ← K + 1; return K odd.
    let k = 1n;
    while (bernoulli(rational(gamma.numerator, gamma.denominator * k), random)) k += 1n;
    return k % 2n === 1n;
  }
  const whole = gamma.numerator / gamma.denominator;
  for (let i = 0n; i < whole; i++) if (!bernoulliExpMinus(rational(1n, 1n), random)) return false;
  return bernoulliExpMinus(rational(gamma.numerator - whole * gamma.denominator, gamma.denominator), random);
}

/**
 * Discrete Laplace with scale t = scale.numerator / scale.denominator (algorithm 2):
 * P(Y = y) ∝ exp(−|y| / t) on all integers.
 */
export function discreteLaplace(scale: Rational, random: RandomSource = cryptoRandom): bigint {
  const s = scale.denominator;
  const t = scale.numerator;
  if (t <= 0n) throw new RangeError('scale must be positive');
  for (;;) {
    const u = random.below(t);
    if (!bernoulliExpMinus(rational(u, t), random)) continue;
    let v = 0n;
    while (bernoulliExpMinus(rational(1n, 1n), random)) v += 1n;
    const y = (u + t * v) / s;
    const negative = bernoulli(rational(1n, 2n), random);
    if (negative && y === 0n) continue;
    return negative ? -y : y;
  }
}

/**
 * Discrete Gaussian with variance σ² = sigmaSquared (algorithm 3): P(Y = y) ∝ exp(−y² / 2σ²) on all integers.
 */
export function discreteGaussian(sigmaSquared: Rational, random: RandomSource = cryptoRandom): bigint {
  const { numerator: a, denominator: b } = sigmaSquared;
  if (a <= 0n) throw new RangeError('σ² must be positive');
  // t = ⌊σ⌋ + 1, with ⌊σ⌋ = ⌊√(a/b)⌋ computed on integers.
  const t = integerSquareRoot(a / b) + 1n;
  for (;;) {
    const y = discreteLaplace(rational(t, 1n), random);
    const absolute = y < 0n ? -y : y;
    // (|y| − σ²/t)² / (2σ²) = (|y|·b·t − a)² / (2·a·b·t²)
    const difference = absolute * b * t - a;
    if (bernoulliExpMinus(rational(difference * difference, 2n * a * b * t * t), random)) return y;
  }
}

function integerSquareRoot(n: bigint): bigint {
  if (n < 2n) return n;
  let x = n;
  let y = (x + 1n) / 2n;
  while (y < x) {
    x = y;
    y = (x + n / x) / 2n;
  }
  return x;
}

/** The exact probability mass functions, for tests and for confidence intervals. */
export function discreteLaplacePmf(y: number, scale: number): number {
  const q = Math.exp(-1 / scale);
  return ((1 - q) / (1 + q)) * q ** Math.abs(y);
}

export function discreteGaussianPmf(y: number, sigmaSquared: number, support = 2000): number {
  let normaliser = 0;
  for (let k = -support; k <= support; k++) normaliser += Math.exp(-(k * k) / (2 * sigmaSquared));
  return Math.exp(-(y * y) / (2 * sigmaSquared)) / normaliser;
}
