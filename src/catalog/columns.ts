import { z } from 'zod';

/**
 * Column classes drive what a query may do with a column (DESIGN section 4):
 * direct identifiers are never output or grouped by; they serve only as privacy unit or join key.
 */
export const columnClasses = ['direct_identifier', 'quasi_identifier', 'sensitive', 'attribute'] as const;
export type ColumnClass = (typeof columnClasses)[number];

/** The DuckDB types a registered column may have; loading checks the file against them. */
export const columnTypeSchema = z.union([
  z.enum(['VARCHAR', 'BOOLEAN', 'INTEGER', 'BIGINT', 'DOUBLE', 'DATE', 'TIMESTAMP']),
  z
    .string()
    .regex(/^DECIMAL\((\d{1,2}),(\d{1,2})\)$/, 'must be VARCHAR, BOOLEAN, INTEGER, BIGINT, DOUBLE, DATE, TIMESTAMP or DECIMAL(p,s)')
    // DuckDB's limits: a width it refuses would pass registration and fail every load (and every binding).
    .refine((type) => {
      const [width, scale] = type.slice('DECIMAL('.length, -1).split(',').map(Number) as [number, number];
      return width >= 1 && width <= 38 && scale <= width;
    }, 'DECIMAL(p,s) needs 1 ≤ p ≤ 38 and s ≤ p'),
]);

const identifierPattern = /^[a-z][a-z0-9_]{0,62}$/;

export const columnSpecSchema = z
  .strictObject({
    name: z.string().regex(identifierPattern, 'must be lower snake_case, starting with a letter, at most 63 characters'),
    type: columnTypeSchema,
    class: z.enum(columnClasses),
    nullable: z.boolean().default(false),
    description: z.string().min(1).max(500),
    descriptionZh: z.string().min(1).max(500).optional(),
    // Public domain of a categorical column (towns, industry codes): group keys that reveal nothing by appearing.
    publicDomain: z.array(z.union([z.string(), z.number()])).max(10_000).optional(),
    // Declared bounds of a numeric column: the clamp for differentially private sums.
    bounds: z.strictObject({ min: z.number(), max: z.number() }).refine((b) => b.min <= b.max, 'min must not exceed max').optional(),
  });
export type ColumnSpec = z.infer<typeof columnSpecSchema>;

export const columnListSchema = z
  .array(columnSpecSchema)
  .min(1)
  .max(500)
  .superRefine((columns, context) => {
    const seen = new Set<string>();
    columns.forEach((column, index) => {
      if (seen.has(column.name)) {
        context.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate column name ${column.name}` });
      }
      seen.add(column.name);
    });
  });
