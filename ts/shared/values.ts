/** How `skitai.g` values are checked and encoded, the same on every backend. */

/** The largest value, JSON-encoded, unless `registerG(..., { maxSize })` says otherwise. */
export const DEFAULT_MAX_SIZE = 64 * 1024

/** Names `skitai.g` keeps for its methods (and `then`, so that `await skitai.g` is harmless). */
export const RESERVED = new Set(['get', 'set', 'incr', 'names', 'then', 'toJSON', 'constructor'])

/** A name's longest form in bytes (crates/core/src/shared_state.rs). */
const NAME_MAX = 104

export function checkName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || Buffer.byteLength(name) > NAME_MAX) {
    throw new TypeError(`registerG: a name is a string of 1 to ${NAME_MAX} bytes, got ${JSON.stringify(String(name))}`)
  }
  if (RESERVED.has(name)) throw new TypeError(`registerG: '${name}' is reserved for skitai.g's own methods`)
  return name
}

/** The JSON text of a value, or undefined to clear it; clear errors for what cannot be shared. */
export function encode(name: string, value: unknown, maxSize: number): string | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new RangeError(`g.${name}: ${value} cannot be shared; numbers must be finite`)
  }
  if (typeof value === 'bigint' || typeof value === 'function' || typeof value === 'symbol') {
    throw new TypeError(`g.${name}: a ${typeof value} cannot be shared; use numbers, strings or JSON values`)
  }
  let text: string
  try {
    text = JSON.stringify(value)
  } catch (error) {
    throw new TypeError(`g.${name}: the value cannot be encoded as JSON (${(error as Error).message})`)
  }
  const size = Buffer.byteLength(text)
  if (size > maxSize) throw new RangeError(`g.${name}: the value takes ${size} bytes as JSON, over the limit of ${maxSize} bytes`)
  return text
}

export function checkIncrement(name: string, by: unknown): number {
  if (typeof by !== 'number' || !Number.isFinite(by)) throw new TypeError(`g.incr('${name}'): the increment must be a finite number, got ${String(by)}`)
  return by
}
