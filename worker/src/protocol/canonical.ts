// Canonical JSON: JSON with every object's keys sorted, so two equal values
// always give the same text. The client keys on-demand requests by it (equal
// requests share one subscription); the DO shell scopes mutation ids by the
// canonical claims.

/**
 * `JSON.stringify(value)` with object keys sorted (by UTF-16 code unit).
 * As in JSON.stringify, `toJSON` is honoured (a Date becomes its ISO text),
 * object members whose value is undefined or a function are left out, such
 * values in arrays become null, and a bigint throws. A value that has no
 * JSON text at all (undefined) gives "null".
 */
export function canonicalJson(value: unknown): string {
  return (
    JSON.stringify(value, (_key, v: unknown) =>
      v !== null && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(
            Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
          )
        : v,
    ) ?? 'null'
  )
}
