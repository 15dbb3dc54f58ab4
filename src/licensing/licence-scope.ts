import { z } from 'zod';

/** One dataset a licence covers; `columns` narrows it to some columns (absent = all columns). */
export const licenceScopeEntrySchema = z.strictObject({
  dataset: z.string().min(1).max(63),
  columns: z.array(z.string().min(1).max(63)).min(1).max(500).optional(),
});
export type LicenceScopeEntry = z.infer<typeof licenceScopeEntrySchema>;
