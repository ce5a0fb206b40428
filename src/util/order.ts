/**
 * Orders strings by UTF-16 code unit, as `Array.prototype.sort` does without a comparator, for
 * entries sorted by key. Not `localeCompare`: its order follows the process's locale (ICU data and
 * LANG), and what is sorted here is written out (a CRD, a pod template) and must come out the same
 * everywhere, or an unchanged input would look changed.
 */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
