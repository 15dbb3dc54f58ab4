/**
 * The values of a model's categorical features as an operator writes them (the console), in the manner of clamp
 * bounds (src/privacy/bounds-text.ts): `customer_type: household, enterprise; town: 泥城镇, 书院镇` — one
 * `feature: baseline, value, …` per part, parts separated by semicolons or new lines. A part that does not read so is
 * named back, not guessed at.
 */
export type CategoriesReading = { categories: Record<string, string[]> } | { problem: string };

export function readCategories(text: string): CategoriesReading {
  const categories: Record<string, string[]> = {};
  for (const written of text.split(/[;\n]/).map((entry) => entry.trim()).filter(Boolean)) {
    const colon = written.indexOf(':');
    const feature = written.slice(0, colon).trim();
    const values = written.slice(colon + 1).split(',').map((value) => value.trim()).filter(Boolean);
    if (colon < 0 || !feature || values.length < 2) return { problem: `"${written}" is not feature: baseline, value, …` };
    if (feature in categories) return { problem: `${feature} is named twice` };
    categories[feature] = values;
  }
  return { categories };
}

/** Categories written back as an operator writes them, for `readCategories` to read again. */
export function writeCategories(categories: Record<string, string[]>): string {
  return Object.entries(categories)
    .map(([feature, values]) => `${feature}: ${values.join(', ')}`)
    .join('; ');
}
