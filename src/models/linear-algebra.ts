/**
 * The little linear algebra regression needs, on symmetric positive-definite matrices of at most a few dozen
 * rows (p + 1 coefficients): Cholesky factorisation, solving and inverting. Written out rather than pulled in
 * because it is thirty lines and its numerical behaviour is then ours to test.
 */
export type Matrix = number[][];

/** Lower-triangular L with A = L·Lᵀ, or undefined when A is not positive definite (collinear features). */
export function cholesky(a: Matrix): Matrix | undefined {
  const n = a.length;
  const l: Matrix = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i]![j]!;
      for (let k = 0; k < j; k++) sum -= l[i]![k]! * l[j]![k]!;
      if (i === j) {
        // Relative tolerance: a pivot this small means a feature is (nearly) a combination of others.
        if (!(sum > 1e-12 * Math.max(1, Math.abs(a[i]![i]!)))) return undefined;
        l[i]![i] = Math.sqrt(sum);
      } else {
        l[i]![j] = sum / l[j]![j]!;
      }
    }
  }
  return l;
}

/** Solves L·Lᵀ·x = b. */
export function choleskySolve(l: Matrix, b: number[]): number[] {
  const n = l.length;
  const y = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    let sum = b[i]!;
    for (let k = 0; k < i; k++) sum -= l[i]![k]! * y[k]!;
    y[i] = sum / l[i]![i]!;
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let sum = y[i]!;
    for (let k = i + 1; k < n; k++) sum -= l[k]![i]! * x[k]!;
    x[i] = sum / l[i]![i]!;
  }
  return x;
}

/** The diagonal of A⁻¹ from A's Cholesky factor (the variances of the coefficients, up to σ²). */
export function inverseDiagonal(l: Matrix): number[] {
  const n = l.length;
  return Array.from({ length: n }, (_, column) => {
    const unit = new Array<number>(n).fill(0);
    unit[column] = 1;
    return choleskySolve(l, unit)[column]!;
  });
}
