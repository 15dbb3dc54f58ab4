/**
 * A one-line progress bar on stderr. Without a terminal (CI, logs) it prints one line per change of label,
 * so logs stay readable.
 */
export function progressBar(stream: NodeJS.WriteStream = process.stderr) {
  let lastLabel = '';
  return {
    update(done: number, total: number, label: string) {
      const fraction = total > 0 ? Math.min(1, done / total) : 1;
      if (stream.isTTY) {
        const width = 30;
        const filled = Math.round(fraction * width);
        stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}% ${label.padEnd(40)}`);
      } else if (label !== lastLabel) {
        stream.write(`  ${String(Math.round(fraction * 100)).padStart(3)}% ${label}\n`);
      }
      lastLabel = label;
    },
    finish(message: string) {
      if (stream.isTTY) stream.write('\r' + ' '.repeat(80) + '\r');
      stream.write(`${message}\n`);
    },
  };
}
