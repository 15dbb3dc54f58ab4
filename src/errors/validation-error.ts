import type { ZodError } from 'zod';
import { AppError, type ErrorDetail } from './app-error.js';

/** zod failures as data: the path and the rule broken, never the value that broke it. */
export function validationError(error: ZodError, where: string): AppError {
  const unknownKeys = error.issues.filter((issue) => issue.code === 'unrecognized_keys');
  if (unknownKeys.length > 0) {
    const keys = unknownKeys.flatMap((issue) => ('keys' in issue ? (issue.keys as string[]) : []));
    return new AppError(
      'UNKNOWN_FIELD',
      `unknown field(s) in the ${where}: ${keys.map((key) => key.slice(0, 64)).join(', ')}`,
      unknownKeys.map((issue) => ({ path: issue.path.join('.'), problem: 'unknown field' })),
    );
  }
  return new AppError(
    'VALIDATION_FAILED',
    `the ${where} is not valid`,
    issueDetails(error),
  );
}

/** Each issue as a detail: its path (under `prefix`) and the rule broken, for refusals built outside the HTTP layer. */
export function issueDetails(error: ZodError, prefix: Array<string | number> = []): ErrorDetail[] {
  return error.issues.slice(0, 20).map((issue) => ({ path: [...prefix, ...issue.path].join('.') || '(root)', problem: safeIssueMessage(issue) }));
}

export function safeIssueMessage(issue: ZodError['issues'][number]): string {
  // zod's messages for enums and literals list the allowed options, which are ours; messages that would
  // quote the received value are replaced by the rule's name.
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'invalid_value':
    case 'too_big':
    case 'too_small':
    case 'custom':
      return issue.message;
    case 'invalid_format':
      // Our own messages (`.regex(pattern, 'must be lower snake_case …')`) say which form is wanted; zod's default
      // ("Invalid string: must match pattern /…/") is replaced by the rule's name.
      if (!issue.message.startsWith('Invalid')) return issue.message;
      return issue.format === 'regex' ? 'does not have the expected form' : `invalid ${issue.format}`;
    default:
      return issue.code.replaceAll('_', ' ');
  }
}
