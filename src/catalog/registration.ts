import { z } from 'zod';
import { columnListSchema } from './columns.js';
import { gradeSchema } from './grades.js';
import { checkRulesAgainstColumns, qualityRuleSchema } from './quality-rules.js';

/** Days in one update period, for freshness (a month is taken at its longest so a full month never counts stale). */
export const updatePeriodDays: Record<string, number | null> = { daily: 1, weekly: 7, monthly: 31, quarterly: 92, yearly: 366, static: null };

/** What an institution sends to register a catalogue entry (measures art. 8 and 10). */
export const datasetRegistrationSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z][a-z0-9_]{2,62}$/, 'must be lower snake_case, 3 to 63 characters'),
    title: z.string().min(1).max(200),
    titleZh: z.string().min(1).max(200),
    description: z.string().min(1).max(4000),
    descriptionZh: z.string().min(1).max(4000).optional(),
    category: z.string().min(1).max(100),
    grade: gradeSchema,
    openData: z.boolean().default(false),
    sharingType: z.enum(['unconditional', 'conditional', 'none']),
    sharingBasis: z.string().min(1).max(2000).optional(),
    legalBasis: z.string().min(1).max(2000),
    updateFrequency: z.enum(['daily', 'weekly', 'monthly', 'quarterly', 'yearly', 'static']),
    privacyUnit: z.string().min(1).max(63),
    // Columns that together identify a row, e.g. [account_id, month]; every load is checked against it.
    uniqueKey: z.array(z.string().min(1).max(63)).min(1).max(10).optional(),
    columns: columnListSchema,
    qualityRules: z.array(qualityRuleSchema).max(100).default([]),
  })
  .superRefine((entry, context) => {
    const unit = entry.columns.find((column) => column.name === entry.privacyUnit);
    if (!unit) {
      context.addIssue({ code: 'custom', path: ['privacyUnit'], message: 'must name one of the columns' });
    } else if (unit.class !== 'direct_identifier' && !entry.openData) {
      context.addIssue({ code: 'custom', path: ['privacyUnit'], message: 'must be a direct_identifier column' });
    } else if (unit.nullable) {
      context.addIssue({ code: 'custom', path: ['privacyUnit'], message: 'must not be nullable' });
    }
    for (const [index, name] of (entry.uniqueKey ?? []).entries()) {
      if (!entry.columns.some((column) => column.name === name)) {
        context.addIssue({ code: 'custom', path: ['uniqueKey', index], message: 'must name one of the columns' });
      }
    }
    for (const { index, problem } of checkRulesAgainstColumns(entry.qualityRules, entry.columns, entry.updateFrequency)) {
      context.addIssue({ code: 'custom', path: ['qualityRules', index], message: problem });
    }
    // Art. 20: only low-risk data is opened to the public.
    if (entry.openData && entry.grade !== 'L1') {
      context.addIssue({ code: 'custom', path: ['openData'], message: 'only L1 data may be open data' });
    }
    // Art. 16: conditional or no sharing needs a legal basis for the restriction.
    if (entry.sharingType !== 'unconditional' && !entry.sharingBasis) {
      context.addIssue({ code: 'custom', path: ['sharingBasis'], message: 'is required when sharing is conditional or none' });
    }
  });
export type DatasetRegistration = z.infer<typeof datasetRegistrationSchema>;
/** As written by hand (defaults may be left out), e.g. in the demo catalogue. */
export type DatasetRegistrationInput = z.input<typeof datasetRegistrationSchema>;
