import { IncomingMessage, ServerResponse } from 'node:http'
import { Readable, Stream } from 'node:stream'
import { isExpressApp } from '../../adapters/express.js'
import { checkPushPath } from '../../push.js'
import { makeBridge } from '../bridge-prototype.js'
import { HTTP2, Http2Request, Http2Response } from './h2-response.js'

/**
 * Express sets its own prototypes on every request and response; theirs end in
 * node:http's classes (through the native engine's bridge, see
 * ../native/prototype-bridge.ts), which know nothing of an HTTP/2 stream. This
 * bridge goes right under Express's objects: each property that node:http's or
 * node:http2's class defines is looked up in node:http2's compatibility class for
 * the JS engine's HTTP/2 objects, and further down the chain for all others.
 */
const requestBridge = makeBridge(IncomingMessage.prototype, Http2Request.prototype, Readable.prototype, HTTP2)
const responseBridge = makeBridge(ServerResponse.prototype, Http2Response.prototype, Stream.prototype, HTTP2)

/** Another bridge over node's class (the native engine's): its accessors stand in for node's own methods. */
function isBridge(proto: object, sample: PropertyKey): boolean {
  return typeof Object.getOwnPropertyDescriptor(proto, sample)?.get === 'function'
}

/**
 * `res.push` for Express responses. Express's prototypes skip the engine's
 * HTTP/1.1 response class and with it its push; this layer gives it back: the
 * push of whatever is below (the native engine's, HTTP/2's), else the HTTP/1.1
 * no-op. A plain method: no other property pays for it.
 */
const pushLayer = {
  push(this: object, path: string): void {
    const below = Reflect.get(Object.getPrototypeOf(pushLayer) as object, 'push', this) as unknown
    if (typeof below === 'function') return (below as (path: string) => void).call(this, path)
    checkPushPath(path)
  },
}

/**
 * Put `layer` above the lowest object of the chain from `start` (node's class,
 * or a bridge over it): Express's objects above it, that object below.
 */
function insert(start: unknown, base: object, layer: object, sample: PropertyKey): boolean {
  let child: object | undefined
  for (let p: unknown = start; typeof p === 'object' && p !== null; p = Object.getPrototypeOf(p)) {
    const parent = Object.getPrototypeOf(p) as object | null
    if (parent === layer) return true
    if (parent === base) {
      if (!isBridge(p, sample)) child = p
      else if (child === undefined) return false
      Object.setPrototypeOf(layer, child === p ? base : p)
      Object.setPrototypeOf(child, layer)
      return true
    }
    child = p as object
  }
  return false
}

function expressApps(targets: Iterable<unknown>, done: WeakSet<object>): Array<{ request: object; response: object }> {
  const apps: Array<{ request: object; response: object }> = []
  for (const target of targets) {
    if (!isExpressApp(target) || done.has(target)) continue
    done.add(target)
    apps.push(target)
  }
  return apps
}

const pushing = new WeakSet<object>()
const bridged = new WeakSet<object>()

/** Give the Express apps among `targets` `res.push` (see pushLayer); when the engine starts. */
export function expressPush(targets: Iterable<unknown>): void {
  for (const app of expressApps(targets, pushing)) insert(app.response, ServerResponse.prototype, pushLayer, 'writeHead')
}

/**
 * Let the Express apps among `targets` serve the JS engine's HTTP/2 requests.
 * Done at the first HTTP/2 connection, not before: the extra accessor it puts
 * in Express's chains costs Express apps some 5% of their HTTP/1.1 speed, which
 * servers that never see HTTP/2 (and the native engine) do not pay.
 */
export function bridgeExpressApps(targets: Iterable<unknown>): void {
  for (const app of expressApps(targets, bridged)) {
    if (!insert(app.request, IncomingMessage.prototype, requestBridge, '_read') || !insert(app.response, ServerResponse.prototype, responseBridge, 'writeHead')) {
      console.warn('skitai: an Express app whose request/response do not derive from node:http cannot serve HTTP/2 on the JS engine')
    }
  }
}
