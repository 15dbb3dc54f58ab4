import path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/bootstrap.js';

describe('the consumer client library', () => {
  it('bundles for a browser without any Node built-in', async () => {
    const result = await build({
      entryPoints: [path.join(projectRoot, 'src/products/client/verification-client.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/from ["']node:|require\(["'](node:)?(crypto|fs|path|buffer)["']\)/);
    expect(code).toContain('verifyEncrypted');
  });
});
