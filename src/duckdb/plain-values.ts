/** DuckDB types whose values reach the client as numbers (lists of them too). */
export const numericType = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|DECIMAL.*|FLOAT|DOUBLE|REAL)(\[\])?$/;

/** DuckDB's JSON form gives big integers and decimals as strings; aggregates are numbers to the client. */
export function toPlainValues(row: unknown[], numeric: boolean[]): unknown[] {
  return row.map((value, index) => {
    if (!numeric[index] || value === null) return value;
    if (Array.isArray(value)) return value.map((entry) => (entry === null ? null : toNumber(entry)));
    return toNumber(value);
  });
}

/** A number where that is exact; a 64-bit integer beyond 2^53 (a hash, say) stays a decimal string. */
function toNumber(value: unknown): number | string {
  const number = Number(value);
  return Number.isSafeInteger(number) || !/^-?\d+$/.test(String(value)) ? number : String(value);
}
