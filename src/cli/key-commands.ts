import type { Config } from '../config/config.js';
import { generateKeyFile, keySourceOf, loadKeyRing, rotateDevKey } from '../identity/keys.js';
import { CommandUsageError } from './remote-commands.js';

export const keysUsage = `pds keys — the signing keys (platform administrators: whoever can read the key files)

  pds keys list
      each key's purpose, kid and standing: current, or retired (still in the JWKS, verifying what it signed);
      and which key roots the derived secrets (subject keys, the differencing guard, kept answers)
  pds keys rotate platform|token
      dev mode: a new key in DATA_DIR/keys, used from the server's next start. The platform key is retired, not
      deleted: receipts, answers, checkpoints and backups it signed still verify, and subject quotas and the
      differencing guard carry on. The token key is replaced: every token it signed is refused (after a leak).
  pds keys generate <file>
      write a new private Ed25519 key file (mode 0600, never over an existing file). Production rotation: generate
      one, point PDS_PLATFORM_KEY_FILE (or PDS_TOKEN_KEY_FILE) at it, add the old platform key file to the end of
      PDS_RETIRED_PLATFORM_KEY_FILES, restart every pds serve and pds worker.`;

export async function keysCommand(config: Config, args: string[]): Promise<number> {
  const [sub, argument] = args;
  switch (sub) {
    case 'list': {
      const ring = await loadKeyRing(keySourceOf(config));
      const rows = [
        ['token', ring.token.kid, 'current'],
        ['platform', ring.platform.kid, 'current'],
        ...ring.retiredPlatform.map((key) => ['platform', key.kid, 'retired']),
      ];
      for (const [purpose, kid, standing] of rows) console.log(`${purpose!.padEnd(9)} ${standing!.padEnd(8)} ${kid}${kid === ring.secretRoot.kid ? '  (roots the derived secrets)' : ''}`);
      return 0;
    }
    case 'rotate': {
      if (argument !== 'platform' && argument !== 'token') throw new CommandUsageError('pds keys rotate platform|token');
      if (config.mode === 'production') {
        throw new CommandUsageError('in production the key files are yours to manage: pds keys generate <new file>, then point the key setting at it (and list an old platform key in PDS_RETIRED_PLATFORM_KEY_FILES); see pds keys --help');
      }
      const { retiredKid, newKid } = await rotateDevKey(config.dataDir, argument);
      console.log(`${argument} key ${newKid} written${retiredKid ? `; ${retiredKid} retired (still verifies what it signed)` : '; tokens signed with the old key are refused'}. Restart pds serve to sign with it.`);
      return 0;
    }
    case 'generate': {
      if (!argument) throw new CommandUsageError('pds keys generate <file>');
      console.log(`${argument}: ${await generateKeyFile(argument)}`);
      return 0;
    }
    default:
      throw new CommandUsageError(keysUsage);
  }
}
