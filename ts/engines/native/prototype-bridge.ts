import { IncomingMessage, ServerResponse } from 'node:http'
import { Readable, Stream } from 'node:stream'
import { NATIVE } from './brand.js'
import { NativeRequest } from './request.js'
import { NativeResponse } from './response.js'

/**
 * Express gives every request and response its own prototype
 * (`Object.setPrototypeOf(req, app.request)`), whose chain ends in node's
 * IncomingMessage / ServerResponse. That strips a native request of its class.
 *
 * A bridge is a prototype placed between Express's request (or response) object
 * and node's class. Each property either class defines becomes an accessor that
 * looks the property up in the native class for native objects (branded with
 * NATIVE) and in node's class for everything else, so the same Express app keeps
 * working on node:http too. Properties Express defines itself sit above the
 * bridge and are untouched.
 */
function keysUpTo(proto: object, stop: object, into: Set<PropertyKey>): void {
  for (let p: object | null = proto; p !== null && p !== stop; p = Object.getPrototypeOf(p) as object | null) {
    for (const key of Reflect.ownKeys(p)) if (key !== 'constructor') into.add(key)
  }
}

function makeBridge(nodeProto: object, nativeProto: object, common: object): object {
  const bridge = Object.create(nodeProto) as object
  const keys = new Set<PropertyKey>()
  keysUpTo(nodeProto, common, keys)
  keysUpTo(nativeProto, common, keys)
  for (const key of keys) {
    Object.defineProperty(bridge, key, {
      configurable: true,
      enumerable: false,
      get(this: Record<symbol, unknown>) {
        return Reflect.get(this[NATIVE] === true ? nativeProto : nodeProto, key, this)
      },
      set(this: Record<symbol, unknown>, value: unknown) {
        // Reflect.set with the object as receiver: a setter runs on it, a plain
        // value becomes its own property, exactly as an assignment would.
        Reflect.set(this[NATIVE] === true ? nativeProto : nodeProto, key, value, this)
      },
    })
  }
  return bridge
}

const requestBridge = makeBridge(IncomingMessage.prototype, NativeRequest.prototype, Readable.prototype)
const responseBridge = makeBridge(ServerResponse.prototype, NativeResponse.prototype, Stream.prototype)

/** The object in `start`'s prototype chain whose own prototype is `base` (or the bridge already). */
function directChildOf(start: unknown, base: object, bridge: object): object | undefined {
  let p: unknown = start
  while (typeof p === 'object' && p !== null) {
    const parent = Object.getPrototypeOf(p) as unknown
    if (parent === base || parent === bridge) return p
    p = parent
  }
  return undefined
}

/**
 * Let request/response prototypes that derive from node's classes (Express's
 * `app.request` / `app.response`) serve native objects as well. Done once per
 * Express copy: all its apps and sub-apps share these objects.
 */
export function bridgePrototypes(requestProto: unknown, responseProto: unknown): boolean {
  const req = directChildOf(requestProto, IncomingMessage.prototype, requestBridge)
  const res = directChildOf(responseProto, ServerResponse.prototype, responseBridge)
  if (req === undefined || res === undefined) return false
  if (Object.getPrototypeOf(req) !== requestBridge) Object.setPrototypeOf(req, requestBridge)
  if (Object.getPrototypeOf(res) !== responseBridge) Object.setPrototypeOf(res, responseBridge)
  return true
}
