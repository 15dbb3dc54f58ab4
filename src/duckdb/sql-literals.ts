/** SQL literals for statements the service writes itself (never for operator SQL, which goes through the analyser). */
export const sqlString = (value: string) => `'${value.replaceAll("'", "''")}'`;
export const sqlIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;
