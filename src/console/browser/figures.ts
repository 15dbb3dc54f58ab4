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
