/**
 * A released figure as the console shows it. A sum of two million decimal readings in floating point comes back as
 * 357913705.699995 where the readings add up to 357913705.7: its last digits are rounding error, not information.
 * Twelve significant digits (at most six decimals) show every figure the data holds and hide that error; JSON and
 * CSV keep the full value.
 */
export function formatFigure(value: number): string {
  if (Number.isInteger(value) || !Number.isFinite(value)) return value.toLocaleString();
  const wholeDigits = Math.max(1, Math.floor(Math.log10(Math.abs(value))) + 1);
  return value.toLocaleString(undefined, { maximumFractionDigits: Math.min(6, Math.max(0, 12 - wholeDigits)) });
}

/**
 * A noisy figure (a DP count or sum) to the precision its noise allows: down to a tenth of its 95 % half-width's
 * leading digit (± 240 → whole numbers, ± 0.8 → hundredths). A consistent total's least-squares count of
 * 37,036.032258 says no more than 37,036 does, and the extra digits look like precision it does not have. JSON and
 * CSV keep the full value.
 */
export function formatNoisyFigure(value: number, ci95HalfWidth: number): string {
  if (!Number.isFinite(value) || !(ci95HalfWidth > 0)) return formatFigure(value);
  const decimals = Math.min(6, Math.max(0, 1 - Math.floor(Math.log10(ci95HalfWidth))));
  return value.toLocaleString(undefined, { minimumFractionDigits: 0, maximumFractionDigits: decimals });
}
