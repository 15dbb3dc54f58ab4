import type { CategoryColumns } from '../../models/model-job.js';
import { normalizeClaim } from './claim-encoding.js';

/**
 * A scoring call's features as the model needs them, read the same way on the server (plain scoring) and in the
 * client (before encrypting them): runs in Node and in a browser, so it imports only the client's own modules (and a type).
 *
 * A model fitted with categories has 0/1 features (`customer_type_1` stands for "enterprise", the baseline
 * "household" is all zeros). A consumer knows the value, not the column the platform named, so a category is
 * sent by its value; the 0/1 features are still accepted, as the model names them, for callers written before.
 */

/** Each category's baseline and the value each of its 0/1 features stands for, as the model job released them. */
export type ScoringCategories = CategoryColumns;
export type ScoringInput = Record<string, number | string>;
export type FeatureProblem = { path: string; problem: string };

/** The values a category accepts, baseline first, as they are shown to consumers. */
export const categoryValues = (category: ScoringCategories[string]): string[] => [category.baseline, ...Object.values(category.columns)];

/** Each 0/1 feature's category. */
const categoryOfColumn = (categories: ScoringCategories) => new Map(Object.entries(categories).flatMap(([name, category]) => Object.keys(category.columns).map((column) => [column, name] as const)));

/** The inputs a consumer sends, in the model's order: each category once, where its first 0/1 feature stands. */
export function scoringInputNames(features: readonly string[], categories: ScoringCategories): string[] {
  const categoryOf = categoryOfColumn(categories);
  return [...new Set(features.map((feature) => categoryOf.get(feature) ?? feature))];
}

/**
 * The model's feature values for one call, in the order of `features`, or what is wrong with the input: each
 * problem names the field, never the value sent (a wrong value is the consumer's own, but answers are logged).
 */
export function scoringFeatureValues(features: readonly string[], categories: ScoringCategories, input: ScoringInput): { values: number[]; problems: FeatureProblem[] } {
  const problems: FeatureProblem[] = [];
  const values = new Map<string, number>();
  const categoryOf = categoryOfColumn(categories);
  for (const name of Object.keys(input)) {
    if (!features.includes(name) && !(name in categories)) problems.push({ path: `input.${name.slice(0, 63)}`, problem: 'is not a feature of the model' });
  }
  for (const [name, category] of Object.entries(categories)) {
    const columns = Object.keys(category.columns);
    const value = input[name];
    const columnsSent = columns.filter((column) => input[column] !== undefined);
    if (value !== undefined) {
      const allowed = categoryValues(category);
      // Read as a claim is (NFC, outer spaces dropped): "书院镇 " typed into a form is the value 书院镇.
      const given = typeof value === 'string' ? normalizeClaim(value) : undefined;
      const chosen = allowed.find((candidate) => normalizeClaim(candidate) === given);
      if (columnsSent.length > 0) problems.push({ path: `input.${name}`, problem: `give the value of ${name} or its 0/1 features (${columns.join(', ')}), not both` });
      else if (chosen === undefined) problems.push({ path: `input.${name}`, problem: `must be one of the values the model was fitted on: ${allowed.slice(0, 20).join(', ')}${allowed.length > 20 ? ', …' : ''}` });
      else for (const column of columns) values.set(column, category.columns[column] === chosen ? 1 : 0);
      continue;
    }
    if (columnsSent.length === 0) {
      problems.push({ path: `input.${name}`, problem: 'is required' });
      continue;
    }
    // The 0/1 form: every column, each 0 or 1, at most one of them 1 (all 0 is the baseline).
    for (const column of columns) {
      const indicator = input[column];
      if (indicator === undefined) problems.push({ path: `input.${column}`, problem: `is required with the other 0/1 features of ${name}` });
      else if (indicator !== 0 && indicator !== 1) problems.push({ path: `input.${column}`, problem: 'must be 0 or 1' });
      else values.set(column, indicator);
    }
    if (columns.reduce((ones, column) => ones + (input[column] === 1 ? 1 : 0), 0) > 1) problems.push({ path: `input.${name}`, problem: `at most one of the 0/1 features of ${name} can be 1` });
  }
  for (const feature of features) {
    if (categoryOf.has(feature)) continue;
    const value = input[feature];
    if (value === undefined) problems.push({ path: `input.${feature}`, problem: 'is required' });
    else if (typeof value !== 'number' || !Number.isFinite(value)) problems.push({ path: `input.${feature}`, problem: 'must be a finite number' });
    else values.set(feature, value);
  }
  return { values: features.map((feature) => values.get(feature) ?? Number.NaN), problems };
}
