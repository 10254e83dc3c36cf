import type { KoaLikeApp, NextApp, NodeHandler } from '../types.js'

/** Where the Koa probe finds the next app of this request. */
const NEXT_APP = Symbol('skitai.nextApp')

interface ProbeContext {
  req: { [NEXT_APP]?: NextApp }
  res: { statusCode: number }
  status: number
  body: unknown
  headerSent: boolean
  respond?: boolean
  response: { _explicitStatus?: boolean }
}

/**
 * The outermost middleware of a Koa app mounted before another app: when the
 * whole chain left Koa's own 404 (no body, no status set), Koa does not answer
 * and the request goes to the next app. Outside Skitai it does nothing.
 */
async function fallThroughProbe(ctx: ProbeContext, next: () => Promise<unknown>): Promise<void> {
  await next()
  const nextApp = ctx.req[NEXT_APP]
  if (nextApp === undefined || ctx.headerSent || ctx.status !== 404) return
  if (ctx.body !== undefined && ctx.body !== null) return
  if (ctx.response._explicitStatus === true) return
  ctx.respond = false
  ctx.res.statusCode = 200
  nextApp()
}

export function isKoaApp(target: unknown): target is KoaLikeApp {
  const app = target as Partial<KoaLikeApp> | null
  return (
    typeof app === 'object' &&
    app !== null &&
    typeof app.callback === 'function' &&
    typeof app.use === 'function' &&
    Array.isArray(app.middleware) &&
    typeof app.context === 'object'
  )
}

/**
 * A Koa app through its own `callback()`, built on the first request so that
 * middleware added after mount() is included, as with `app.listen()`.
 */
export function koaApp(app: KoaLikeApp): NodeHandler {
  if (!app.middleware.includes(fallThroughProbe)) app.middleware.unshift(fallThroughProbe)
  let handle: ((req: never, res: never) => unknown) | undefined
  return (req, res, next) => {
    handle ??= app.callback() as (req: never, res: never) => unknown
    if (next !== undefined) (req as { [NEXT_APP]?: NextApp })[NEXT_APP] = next
    return handle(req as never, res as never)
  }
}
