// Project rules that the type checker cannot see. Prints each breach and exits 1 if there is any.
import fs from 'node:fs';
import path from 'node:path';

const rules = [
  { folder: 'src', pattern: /Math\.random\(/, why: 'randomness for noise, keys, masks and ids must come from node:crypto' },
  { folder: 'src', pattern: /console\.(log|error)\([^)]*\berror\.message\b/, why: 'error messages can quote data values; log describeForLog(error)' },
  { folder: 'tests', pattern: /\b(it|test|describe)\.only\(/, why: 'a focused test hides the others' },
];

const breaches = [];
function walk(folder) {
  if (!fs.existsSync(folder)) return [];
  return fs.readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(folder, entry.name);
    return entry.isDirectory() ? walk(full) : full.endsWith('.ts') ? [full] : [];
  });
}
for (const rule of rules) {
  for (const file of walk(rule.folder)) {
    fs.readFileSync(file, 'utf8').split('\n').forEach((line, index) => {
      if (rule.pattern.test(line)) breaches.push(`${file}:${index + 1}: ${rule.why}`);
    });
  }
}
if (breaches.length > 0) {
  console.error(breaches.join('\n'));
  process.exit(1);
}
console.log('style checks passed');
