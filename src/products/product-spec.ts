import { z } from 'zod';
import { isValidCreditCode, isValidResidentId } from '../catalog/identity-numbers.js';
import type { ScoringCategories } from './client/scoring-features.js';

/**
 * What an operator submits to define a product (DESIGN section 5). Everything a call can do is fixed here and
 * approved by a regulator: the dataset, the columns that identify the subject, the claims compared for equality
 * and the condition over the subject's rows. A consumer sends values, never thresholds or expressions, so an
 * answer cannot be binary-searched by changing a parameter between calls.
 */
const name = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be lower snake_case, at most 63 characters');
const sqlExpression = z.string().min(1).max(1000);

export const productInputSchema = z.strictObject({
  name,
  description: z.string().min(1).max(500),
  descriptionZh: z.string().min(1).max(500).optional(),
  /** A regular expression the value must match in full (checked before any lookup). */
  pattern: z.string().min(1).max(200).optional(),
  maxLength: z.number().int().min(1).max(200).default(100),
  /**
   * A national identifier's check character, verified before any lookup (after upper-casing, so a typed `x`
   * counts): GB 11643 resident ID numbers, GB 32100 unified social credit codes. A mistyped number is then refused
   * as invalid input instead of being answered "no match", metered and counted against someone's daily checks.
   */
  checksum: z.enum(['gb11643', 'gb32100']).optional(),
  example: z.string().min(1).max(200),
});

const binding = z.strictObject({ input: name, column: name });

export const verificationSpecSchema = z.strictObject({
  kind: z.literal('verification'),
  dataset: name,
  inputs: z.array(productInputSchema).min(1).max(8),
  /** Inputs that identify the subject: together they must name the dataset's unique key when there are claims. */
  subject: z.array(binding).min(1).max(3),
  /** Inputs compared for equality with the subject's record (plain and encrypted modes). */
  claims: z.array(binding).max(4).default([]),
  /**
   * A fixed condition over the subject's rows: every row selected by `rows` (and, with `recentMonths`, within
   * that many months of the latest date in the data) must satisfy `require`, and there must be at least
   * `minRows` of them. Checked by the job analyser like any job's SQL.
   */
  condition: z
    .strictObject({
      rows: sqlExpression.optional(),
      require: sqlExpression,
      minRows: z.number().int().min(1).max(1000).default(1),
      recentMonths: z.strictObject({ column: name, months: z.number().int().min(1).max(120) }).optional(),
    })
    .optional(),
  /** How often one subject may be checked per day across all consumers (art. 25: no profiling by repetition). */
  perSubjectDailyLimit: z.number().int().min(1).max(100).default(5),
});

/**
 * A scoring product serves a released model job of the same operator: consumers send the features, plain or
 * CKKS-encrypted, and get the model's score. The coefficients are those the model job released (they passed
 * its release checks), copied into the product when it is defined.
 */
export const scoringSpecSchema = z.strictObject({
  kind: z.literal('scoring'),
  job: z.string().min(1).max(100),
  /** Optional descriptions and plausible ranges of the features, shown to consumers and checked on each call. */
  features: z
    .array(z.strictObject({ name, description: z.string().min(1).max(500), min: z.number().finite().optional(), max: z.number().finite().optional() }))
    .max(100)
    .default([]),
  /** Calls per consumer per day: scoring p+1 chosen points reveals a linear model, so volume is limited. */
  dailyCallsPerConsumer: z.number().int().min(1).max(100_000).default(1000),
});

export const productDefinitionSchema = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9-]{2,62}$/, 'must be lower kebab-case, 3 to 63 characters'),
  title: z.string().min(1).max(200),
  titleZh: z.string().min(1).max(200),
  /** Terms of use shown to consumers. */
  terms: z.string().min(1).max(4000),
  spec: z.discriminatedUnion('kind', [verificationSpecSchema, scoringSpecSchema]),
});

export type ProductInput = z.infer<typeof productInputSchema>;
export type VerificationSpec = z.infer<typeof verificationSpecSchema>;
export type ScoringDefinition = z.infer<typeof scoringSpecSchema>;
/** A scoring product as stored: the definition plus the released model it serves. */
export type ScoringSpec = ScoringDefinition & {
  model: {
    type: 'linear' | 'logistic';
    target: string;
    features: string[];
    coefficients: number[];
    datasets: string[];
    outputHash: string;
    /** A model fitted with categories: which value each 0/1 feature stands for, so consumers send the value. */
    categories?: ScoringCategories;
  };
};
export type ProductSpec = VerificationSpec | ScoringSpec;

/** The datasets a product answers from (for audit events). */
export const productDatasets = (spec: ProductSpec): string[] => (spec.kind === 'verification' ? [spec.dataset] : spec.model.datasets);
export type ProductDefinition = z.infer<typeof productDefinitionSchema>;

/** Semantic checks zod cannot express: every binding names a declared input, each input is used once. */
export function specProblems(spec: VerificationSpec): string[] {
  const problems: string[] = [];
  const declared = new Set(spec.inputs.map((input) => input.name));
  if (declared.size !== spec.inputs.length) problems.push('input names must be unique');
  const used = [...spec.subject, ...spec.claims].map((bound) => bound.input);
  for (const input of used) if (!declared.has(input)) problems.push(`binding names an undeclared input: ${input}`);
  if (new Set(used).size !== used.length) problems.push('each input is bound once');
  for (const input of declared) if (!used.includes(input)) problems.push(`input ${input} is declared but not used`);
  if (spec.claims.length === 0 && !spec.condition) problems.push('a product needs claims, a condition or both');
  for (const input of spec.inputs) {
    if (input.checksum && !passesChecksum(input.checksum, input.example.toUpperCase())) problems.push(`the example of ${input.name} fails its ${checksumNames[input.checksum]} check character`);
    if (!input.pattern) continue;
    // Patterns run on consumer input: refuse nested quantifiers, the shape of catastrophic backtracking.
    if (/\([^()]*[+*}][^()]*\)\s*[+*{]/.test(input.pattern)) {
      problems.push(`the pattern of ${input.name} repeats a repeated group (catastrophic backtracking)`);
      continue;
    }
    try {
      if (!new RegExp(`^(?:${input.pattern})$`, 'u').test(input.example)) problems.push(`the example of ${input.name} does not match its pattern`);
    } catch {
      problems.push(`the pattern of ${input.name} is not a valid regular expression`);
    }
  }
  return problems;
}

export type Checksum = NonNullable<z.infer<typeof productInputSchema>['checksum']>;
export const checksumNames: Record<Checksum, string> = { gb11643: 'GB 11643', gb32100: 'GB 32100' };
export const passesChecksum = (checksum: Checksum, value: string): boolean => (checksum === 'gb11643' ? isValidResidentId(value) : isValidCreditCode(value));
