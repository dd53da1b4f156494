// What parsed JSON (or YAML) is, checked: a value read from disk or a message is `unknown` until a guard says more.

/** A JSON object: not null, not an array. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
