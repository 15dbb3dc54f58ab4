import path from 'node:path';
import { z } from 'zod';
import { isCalendarDay } from '../time/china-time.js';

/**
 * Everything the service reads from its environment, validated once at start-up.
 * A bad value stops the process with one line naming the variable (see `ConfigError`).
 */
const environmentSchema = z.object({
  PORT: z.coerce.number().int().min(1).max(65535).default(8787),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('./data'),
  // Unset → embedded PGlite stored under DATA_DIR/control-plane.
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  PDS_MODE: z.enum(['dev', 'production']).default('dev'),
  // Production reads keys from files the platform operator provisions; dev generates them into DATA_DIR/keys.
  PDS_TOKEN_KEY_FILE: z.string().min(1).optional(),
  PDS_PLATFORM_KEY_FILE: z.string().min(1).optional(),
  // Platform keys rotated out, oldest first, comma-separated: they verify what they signed; the first roots derived secrets.
  PDS_RETIRED_PLATFORM_KEY_FILES: z.string().min(1).optional(),
  PDS_TOKEN_ISSUER: z.string().min(1).default('urn:pds:lingang'),
  PDS_TOKEN_AUDIENCE: z.string().min(1).default('urn:pds:api'),
  // Longest a token may live, counted from its `iat`, whatever its `exp` says.
  PDS_TOKEN_MAX_AGE_SECONDS: z.coerce.number().int().min(60).max(30 * 24 * 3600).default(12 * 3600),
  PDS_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024 * 1024).default(1024 * 1024),
  PDS_UPLOAD_LIMIT_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024 * 1024).default(512 * 1024 * 1024),
  // Sandbox worker processes started by `pds serve` (0: none, e.g. when separate `pds worker` processes run).
  PDS_WORKERS: z.coerce.number().int().min(0).max(32).default(2),
  // Where POST /v1/backups writes (default DATA_DIR/backups); copy each backup off the machine from there.
  PDS_BACKUP_DIR: z.string().min(1).optional(),
  PDS_DEMO_SEED: z.string().min(1).default('lingang-2024'),
  // Scale of the generated demo data; 1 = the sizes the README promises. Tests use small fractions.
  PDS_DEMO_SCALE: z.coerce.number().positive().max(10).default(1),
  // The last day the demo's records cover: `yesterday` (China Standard Time, when the demo is generated) or a date.
  PDS_DEMO_END: z
    .string()
    .regex(/^(yesterday|\d{4}-\d{2}-\d{2})$/, 'must be yesterday or a date YYYY-MM-DD')
    .refine((value) => value === 'yesterday' || isCalendarDay(value), 'must be a real date')
    .default('yesterday'),
  // Sign-in through an OpenID Connect identity provider (production): its issuer URL, the console's client id
  // (the audience of its ID tokens) and the claim that names the principal (default `sub`).
  PDS_OIDC_ISSUER: z
    .string()
    .url()
    .refine((value) => value.startsWith('https://') || /^http:\/\/(127\.0\.0\.1|localhost)(:|\/|$)/.test(value), 'must be an https:// URL (http only on localhost)')
    .optional(),
  PDS_OIDC_CLIENT_ID: z.string().min(1).max(200).optional(),
  PDS_OIDC_PRINCIPAL_CLAIM: z.string().regex(/^[A-Za-z_][A-Za-z0-9_:.-]{0,99}$/).default('sub'),
});

export type Config = {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  mode: 'dev' | 'production';
  tokenKeyFile: string | undefined;
  platformKeyFile: string | undefined;
  /** Retired platform keys, oldest first (production; dev keeps them in DATA_DIR/keys/retired). */
  retiredPlatformKeyFiles: string[];
  tokenIssuer: string;
  tokenAudience: string;
  tokenMaxAgeSeconds: number;
  bodyLimitBytes: number;
  uploadLimitBytes: number;
  backupDir: string;
  demoSeed: string;
  demoScale: number;
  demoEnd: string;
  workers: number;
  oidc: { issuer: string; clientId: string; principalClaim: string } | undefined;
};

export class ConfigError extends Error {
  static readonly code = 'ERR_CONFIG';
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`invalid configuration: ${variable} ${problem}`);
  }
}

export function loadConfig(environment: Record<string, string | undefined> = process.env): Config {
  // Empty strings count as unset, as shells and .env files commonly produce them.
  const present = Object.fromEntries(
    Object.entries(environment).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    throw new ConfigError(variable, issue.message.toLowerCase());
  }
  const env = parsed.data;
  if (env.PDS_MODE === 'production') {
    for (const variable of ['PDS_TOKEN_KEY_FILE', 'PDS_PLATFORM_KEY_FILE', 'DATABASE_URL'] as const) {
      if (!env[variable]) throw new ConfigError(variable, 'is required when PDS_MODE=production');
    }
  }
  if (Boolean(env.PDS_OIDC_ISSUER) !== Boolean(env.PDS_OIDC_CLIENT_ID)) {
    throw new ConfigError(env.PDS_OIDC_ISSUER ? 'PDS_OIDC_CLIENT_ID' : 'PDS_OIDC_ISSUER', 'is required with the other OIDC setting');
  }
  return {
    port: env.PORT,
    host: env.HOST,
    dataDir: path.resolve(env.DATA_DIR),
    databaseUrl: env.DATABASE_URL,
    mode: env.PDS_MODE,
    tokenKeyFile: env.PDS_TOKEN_KEY_FILE,
    platformKeyFile: env.PDS_PLATFORM_KEY_FILE,
    retiredPlatformKeyFiles: (env.PDS_RETIRED_PLATFORM_KEY_FILES ?? '').split(',').map((file) => file.trim()).filter(Boolean),
    tokenIssuer: env.PDS_TOKEN_ISSUER,
    tokenAudience: env.PDS_TOKEN_AUDIENCE,
    tokenMaxAgeSeconds: env.PDS_TOKEN_MAX_AGE_SECONDS,
    bodyLimitBytes: env.PDS_BODY_LIMIT_BYTES,
    uploadLimitBytes: env.PDS_UPLOAD_LIMIT_BYTES,
    backupDir: path.resolve(env.PDS_BACKUP_DIR ?? path.join(env.DATA_DIR, 'backups')),
    demoSeed: env.PDS_DEMO_SEED,
    demoScale: env.PDS_DEMO_SCALE,
    demoEnd: env.PDS_DEMO_END,
    workers: env.PDS_WORKERS,
    oidc: env.PDS_OIDC_ISSUER && env.PDS_OIDC_CLIENT_ID ? { issuer: env.PDS_OIDC_ISSUER.replace(/\/$/, ''), clientId: env.PDS_OIDC_CLIENT_ID, principalClaim: env.PDS_OIDC_PRINCIPAL_CLAIM } : undefined,
  };
}
