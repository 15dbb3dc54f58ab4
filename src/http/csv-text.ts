// Pure text, no Node modules: the console's browser bundle writes its CSV downloads with it too.

/**
 * RFC 4180 CSV. For people (the default), a text cell that starts like a formula is prefixed so spreadsheets do
 * not run it; `forSpreadsheet: false` writes values exactly, for a loader that reads them back.
 */
export function toCsv(header: string[], rows: unknown[][], options: { forSpreadsheet?: boolean } = {}): string {
  const defuse = options.forSpreadsheet ?? true;
  const cell = (value: unknown) => {
    if (value === null || value === undefined) return '';
    let text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
    if (defuse && typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [header, ...rows].map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}
