import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('configuration from the environment', () => {
  it('defaults to port 8787, ./data, dev mode and embedded PGlite', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 8787, mode: 'dev', databaseUrl: undefined });
    expect(config.dataDir.endsWith('/data')).toBe(true);
  });

  it('ends the demo the day before it is generated unless told a day', () => {
    expect(loadConfig({}).demoEnd).toBe('yesterday');
    expect(loadConfig({ PDS_DEMO_END: '2024-12-31' }).demoEnd).toBe('2024-12-31');
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['PDS_MODE', 'staging'],
    ['DATABASE_URL', 'mysql://localhost/x'],
    ['PDS_TOKEN_MAX_AGE_SECONDS', '5'],
    ['PDS_DEMO_END', 'last week'],
    ['PDS_DEMO_END', '2025-02-30'],
  ])('a bad %s (%s) stops start-up with a message naming it', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^invalid configuration: ${variable} `));
  });

  it('production mode requires key files and a database server', () => {
    expect(() => loadConfig({ PDS_MODE: 'production' })).toThrow(/PDS_TOKEN_KEY_FILE is required/);
    expect(() =>
      loadConfig({ PDS_MODE: 'production', PDS_TOKEN_KEY_FILE: '/k1', PDS_PLATFORM_KEY_FILE: '/k2' }),
    ).toThrow(/DATABASE_URL is required/);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' })).toMatchObject({ port: 8787, databaseUrl: undefined });
  });
});

describe('production mode', () => {
  it('never writes dev tokens', async () => {
    const { writeDevTokens } = await import('../../src/demo/seed-demo.js');
    const platform = { config: loadConfig({ PDS_MODE: 'production', PDS_TOKEN_KEY_FILE: '/k1', PDS_PLATFORM_KEY_FILE: '/k2', DATABASE_URL: 'postgres://x/y' }) };
    await expect(writeDevTokens(platform as never)).rejects.toThrow(/never written in production/);
  });
});
