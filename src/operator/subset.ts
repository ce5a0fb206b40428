/**
 * Whether every field set in `wanted` has the same value in `actual`: how reconcile decides that a
 * Deployment (or a status) needs no write. Fields only `actual` has (defaults the API server filled
 * in, fields other managers own) do not count, which is what server-side apply would leave alone too.
 * Lists must have the same length and match element by element: an extra container or variable
 * someone added to a list we own is a difference.
 *
 * What the API server returns for what we sent can differ in form only, and must match, or a source
 * would be applied on every reconcile, for ever:
 * - An empty list, map or string (or null) in `wanted` matches a field `actual` lacks: the server
 *   leaves such fields out (Go's `omitempty`: `tolerations: []`, `nodeSelector: {}`, `value: ""`).
 * - Quantities (`resources.requests`/`limits`, `sizeLimit`) come back in canonical form: "0.5"
 *   as "500m", "1024Mi" as "1Gi", 1 as "1". They match when their values are equal.
 */
export function isSubset(wanted: unknown, actual: unknown): boolean {
  return subset(wanted, actual, "plain");
}

/** "quantities": a map of quantities (requests, limits); "quantity": one quantity. */
type Context = "plain" | "quantities" | "quantity";

function subset(wanted: unknown, actual: unknown, context: Context): boolean {
  if (wanted === undefined) return true;
  if (actual === undefined && isEmpty(wanted)) return true;
  if (wanted === null || typeof wanted !== "object") {
    if (wanted === actual || sameNumber(wanted, actual)) return true;
    return context === "quantity" && sameQuantity(wanted, actual);
  }
  if (Array.isArray(wanted)) {
    return (
      Array.isArray(actual) &&
      actual.length === wanted.length &&
      wanted.every((item, index) => subset(item, actual[index], "plain"))
    );
  }
  if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
  const record = actual as Record<string, unknown>;
  return Object.entries(wanted).every(([key, value]) =>
    subset(value, record[key], childContext(context, key)),
  );
}

function childContext(context: Context, key: string): Context {
  if (context === "quantities") return "quantity";
  if (key === "requests" || key === "limits") return "quantities";
  return key === "sizeLimit" ? "quantity" : "plain";
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

const QUANTITY =
  /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei)|(n|u|m|k|M|G|T|P|E))?$/;
const DECIMAL_EXPONENT: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const BINARY_EXPONENT: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };

/** A quantity as integer x 10^ten x 2^two, exactly; undefined when it is not one (or absurdly large). */
function parseQuantity(value: unknown): { integer: bigint; ten: number; two: number } | undefined {
  const text = typeof value === "number" ? String(value) : value;
  if (typeof text !== "string") return undefined;
  const match = QUANTITY.exec(text);
  if (match === null) return undefined;
  const [, sign = "", number = "", exponent, binary, decimal] = match;
  const [whole = "", fraction = ""] = number.split(".");
  const ten =
    (exponent !== undefined ? Number(exponent) : (DECIMAL_EXPONENT[decimal ?? ""] ?? 0)) - fraction.length;
  if (Math.abs(ten) > 100) return undefined;
  const integer = BigInt(`${sign === "-" ? "-" : ""}${whole}${fraction}` || "0");
  return { integer, ten, two: BINARY_EXPONENT[binary ?? ""] ?? 0 };
}

/** Whether two quantities have the same value ("0.5" and "500m", "1Gi" and "1024Mi"). */
function sameQuantity(wanted: unknown, actual: unknown): boolean {
  const a = parseQuantity(wanted);
  const b = parseQuantity(actual);
  if (a === undefined || b === undefined) return false;
  const ten = Math.min(a.ten, b.ten);
  const two = Math.min(a.two, b.two);
  const scaled = (q: { integer: bigint; ten: number; two: number }): bigint =>
    q.integer * 10n ** BigInt(q.ten - ten) * 2n ** BigInt(q.two - two);
  return scaled(a) === scaled(b);
}
