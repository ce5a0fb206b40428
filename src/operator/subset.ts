/**
 * Whether every field set in `wanted` has the same value in `actual`: how reconcile decides that a
 * Deployment (or a status) needs no write. Fields only `actual` has (defaults the API server filled
 * in, fields other managers own) do not count, which is what server-side apply would leave alone too.
 * Lists must have the same length and match element by element: an extra container or variable
 * someone added to a list we own is a difference.
 *
 * An empty list, map or string (or null) in `wanted` matches a field `actual` lacks: the API server leaves
 * such fields out of what it returns (Go's `omitempty`: `tolerations: []`, `nodeSelector: {}`, a
 * toleration's `value: ""`), so without this a source that sets one would be applied on every
 * reconcile, for ever.
 */
export function isSubset(wanted: unknown, actual: unknown): boolean {
  if (wanted === undefined) return true;
  if (actual === undefined && isEmpty(wanted)) return true;
  if (wanted === null || typeof wanted !== "object") return wanted === actual || sameNumber(wanted, actual);
  if (Array.isArray(wanted)) {
    return (
      Array.isArray(actual) &&
      actual.length === wanted.length &&
      wanted.every((item, index) => isSubset(item, actual[index]))
    );
  }
  if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
  const record = actual as Record<string, unknown>;
  return Object.entries(wanted).every(([key, value]) => isSubset(value, record[key]));
}

/** `1` and `"1"` differ; but an int-or-string port the API server echoes as a number matches. */
function sameNumber(wanted: unknown, actual: unknown): boolean {
  return typeof wanted === "number" && typeof actual === "string" && String(wanted) === actual;
}

/** What the API server drops from its answers when it is all a field holds. */
function isEmpty(value: unknown): boolean {
  if (value === "" || value === null) return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === "object" && value !== null && Object.keys(value).length === 0;
}
