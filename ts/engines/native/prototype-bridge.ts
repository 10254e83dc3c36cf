import { IncomingMessage, ServerResponse } from 'node:http'
import { Readable, Stream } from 'node:stream'
import { makeBridge } from '../bridge-prototype.js'
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
const requestBridge = makeBridge(IncomingMessage.prototype, NativeRequest.prototype, Readable.prototype, NATIVE)
const responseBridge = makeBridge(ServerResponse.prototype, NativeResponse.prototype, Stream.prototype, NATIVE)

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
