/**
 * A prototype to put between an app's request (or response) prototype, such as
 * Express's, and node's class. Each property that node's class or `special`
 * defines becomes an accessor that looks it up in `special` for objects branded
 * `brand`, and below the bridge for all others, so the same app serves both.
 * Properties the app defines itself sit above the bridge and are untouched.
 */
export function makeBridge(base: object, special: object, common: object, brand: symbol): object {
  const bridge = Object.create(base) as object
  const keys = new Set<PropertyKey>()
  keysUpTo(base, common, keys)
  keysUpTo(special, common, keys)
  for (const key of keys) {
    Object.defineProperty(bridge, key, {
      configurable: true,
      enumerable: false,
      get(this: Record<symbol, unknown>) {
        // Below the bridge: usually `base`, or another bridge it was put over.
        return Reflect.get(this[brand] === true ? special : (Object.getPrototypeOf(bridge) as object), key, this)
      },
      set(this: Record<symbol, unknown>, value: unknown) {
        // Reflect.set with the object as receiver: a setter runs on it, a plain
        // value becomes its own property, exactly as an assignment would.
        Reflect.set(this[brand] === true ? special : (Object.getPrototypeOf(bridge) as object), key, value, this)
      },
    })
  }
  return bridge
}

function keysUpTo(proto: object, stop: object, into: Set<PropertyKey>): void {
  for (let p: object | null = proto; p !== null && p !== stop; p = Object.getPrototypeOf(p) as object | null) {
    for (const key of Reflect.ownKeys(p)) if (key !== 'constructor') into.add(key)
  }
}
