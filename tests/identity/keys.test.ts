import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generatePrivateJwk, KeyError, loadKeyRing } from '../../src/identity/keys.js';

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'pds-keys-'));

describe('signing keys', () => {
  it('dev mode generates two distinct keys on first run with mode 0600 and reuses them later', async () => {
    const dir = tempDir();
    const first = await loadKeyRing({ mode: 'dev', dataDir: dir });
    for (const name of ['token-signing.jwk.json', 'platform-signing.jwk.json']) {
      expect(fs.statSync(path.join(dir, 'keys', name)).mode & 0o777).toBe(0o600);
    }
    const second = await loadKeyRing({ mode: 'dev', dataDir: dir });
    expect(second.token.kid).toBe(first.token.kid);
    expect(first.token.kid).not.toBe(first.platform.kid);
  });

  it('production mode never generates a key', async () => {
    const dir = tempDir();
    await expect(
      loadKeyRing({ mode: 'production', tokenKeyFile: path.join(dir, 'a.json'), platformKeyFile: path.join(dir, 'b.json') }),
    ).rejects.toThrow(/does not exist/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('production mode refuses a key file readable by others', async () => {
    const dir = tempDir();
    const token = path.join(dir, 'token.json');
    const platform = path.join(dir, 'platform.json');
    fs.writeFileSync(token, JSON.stringify(await generatePrivateJwk()), { mode: 0o644 });
    fs.writeFileSync(platform, JSON.stringify(await generatePrivateJwk()), { mode: 0o600 });
    fs.chmodSync(token, 0o644);
    await expect(loadKeyRing({ mode: 'production', tokenKeyFile: token, platformKeyFile: platform })).rejects.toThrow(KeyError);
    fs.chmodSync(token, 0o600);
    const ring = await loadKeyRing({ mode: 'production', tokenKeyFile: token, platformKeyFile: platform });
    expect(ring.jwks().keys).toHaveLength(2);
  });
});
