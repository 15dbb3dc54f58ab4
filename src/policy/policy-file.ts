import crypto from 'node:crypto';
import fs from 'node:fs';
import { parse } from 'yaml';
import type { z } from 'zod';

/** A policy file that fails validation: start-up stops, naming the file, the field and the rule. */
export class PolicyFileError extends Error {
  static readonly code = 'ERR_POLICY_FILE';
}

/**
 * Reads a YAML policy file and validates it; returns the data and the SHA-256 of the exact bytes (recorded with
 * the decisions the policy makes). The first problem is reported as `<file>: <path>: <message>`.
 */
export function readPolicyFile<Schema extends z.ZodType>(file: string, schema: Schema, name = file): { data: z.infer<Schema>; hash: string } {
  const bytes = fs.readFileSync(file);
  const parsed = schema.safeParse(parse(bytes.toString('utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PolicyFileError(`${name}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return { data: parsed.data, hash: crypto.createHash('sha256').update(bytes).digest('hex') };
}
