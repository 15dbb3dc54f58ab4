/**
 * What the server log keeps of an unexpected error: its class, its code and where it was thrown. Not its
 * message, which for database and DuckDB errors can quote query parameters or data values.
 */
export function describeForLog(error: unknown): string {
  if (!(error instanceof Error)) return typeof error;
  const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
  const frames = (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at ')).slice(0, 8);
  const cause = error.cause instanceof Error ? ` caused by ${error.cause.name}` : '';
  return [`${error.name}${code ? ` (${String(code)})` : ''}${cause}`, ...frames].join('\n');
}
