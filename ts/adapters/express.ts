import type { NodeHandler } from '../types.js'

interface ExpressLikeApp {
  (req: unknown, res: unknown, next?: unknown): unknown
  handle: (...args: never[]) => unknown
  set: (...args: never[]) => unknown
  request: object
  response: object
}

/** Express 4 and 5 apps (and routers made with `express()`): callable, with handle/set and request/response prototypes. */
export function isExpressApp(target: unknown): target is ExpressLikeApp {
  if (typeof target !== 'function') return false
  const app = target as unknown as Partial<ExpressLikeApp>
  return (
    typeof app.handle === 'function' &&
    typeof app.set === 'function' &&
    typeof app.request === 'object' &&
    typeof app.response === 'object'
  )
}

/**
 * Express runs unchanged: `app(req, res, next)` is `app.handle`, whose final
 * handler is `next` when another app follows (a request no route matched goes
 * on), or Express's own 404/error page when it is the last.
 */
export function expressApp(app: ExpressLikeApp): NodeHandler {
  return app as NodeHandler
}

/**
 * Before serving: let Express's request/response prototypes serve the native
 * engine's objects too (see prototype-bridge.ts). Loaded only where apps serve.
 */
export async function prepareExpress(app: ExpressLikeApp, prefix: string): Promise<void> {
  const { bridgePrototypes } = await import('../engines/native/prototype-bridge.js')
  if (!bridgePrototypes(app.request, app.response)) {
    throw new TypeError(`cannot mount the Express app at '${prefix}': its request/response do not derive from node:http's`)
  }
}
