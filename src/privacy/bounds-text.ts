/**
 * The clamp bounds an operator writes for a differentially private job (the console, `pds jobs --bounds`), as `trips: 0..20; fare: 0..5`: one
 * `column: min..max` per part, parts separated by semicolons or new lines (`~` and `–` also separate min from max).
 * A part that does not read so is named back, not guessed at: a bound is what limits one person's contribution.
 */
export type BoundsReading = { bounds: Record<string, { min: number; max: number }> } | { problem: string };

const part = /^([A-Za-z_][A-Za-z0-9_]*)\s*[:=]?\s*(-?\d+(?:\.\d+)?)\s*(?:\.\.|~|–)\s*(-?\d+(?:\.\d+)?)$/;

export function readBounds(text: string): BoundsReading {
  const bounds: Record<string, { min: number; max: number }> = {};
  for (const written of text.split(/[;\n]/).map((entry) => entry.trim()).filter(Boolean)) {
    const match = part.exec(written);
    if (!match) return { problem: `"${written}" is not column: min..max` };
    const [, name, min, max] = match as unknown as [string, string, string, string];
    // Lower case, as DuckDB reads identifiers and the API keys bounds.
    const column = name.toLowerCase();
    if (column in bounds) return { problem: `${column} has two bounds` };
    bounds[column] = { min: Number(min), max: Number(max) };
  }
  return { bounds };
}

/** Bounds written back as an operator writes them (`trips: 0..20; fare: 0..5`), for `readBounds` to read again. */
export function writeBounds(bounds: Record<string, { min: number; max: number }>): string {
  return Object.entries(bounds)
    .map(([column, { min, max }]) => `${column}: ${min}..${max}`)
    .join('; ');
}
