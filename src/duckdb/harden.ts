import type { DuckDBConnection } from '@duckdb/node-api';

/**
 * Locks a DuckDB instance down before any untrusted SQL reaches it (DESIGN section 3, STACK.md). Order matters:
 * the temp directory cannot be changed once external access is off, and nothing can be changed after the lock.
 * Whatever the instance must read (snapshots) has to be attached before this.
 */
export async function hardenDuckDb(connection: DuckDBConnection): Promise<void> {
  for (const setting of [
    "SET temp_directory = ''",
    'SET enable_external_access = false',
    "SET disabled_filesystems = 'LocalFileSystem'",
    'SET autoinstall_known_extensions = false',
    'SET autoload_known_extensions = false',
    'SET allow_community_extensions = false',
    'SET allow_unsigned_extensions = false',
    'SET lock_configuration = true',
  ]) {
    await connection.run(setting);
  }
}
