/**
 * HTTP/2 server push from a handler: `res.push(path)`, or `skitai.push(path)` in
 * the synchronous part of the handler (the request being handled is known only
 * there; after an `await`, use `res.push`).
 */
export interface Pushing {
  /**
   * Promise `path` (same origin, absolute path with an optional query) to the
   * client: the engine sends PUSH_PROMISE and answers it from the mount table.
   * A no-op over HTTP/1.1, when the client disabled push, once the response has
   * started, and for a path already pushed with this response.
   */
  push(path: string): void
}

let handling: Pushing | undefined

/**
 * Make `res` the response `skitai.push` pushes on (a handler starts); returns
 * the one before, to restore when the handler's synchronous part is over.
 */
export function handlingResponse(res: Pushing | undefined): Pushing | undefined {
  const outer = handling
  handling = res
  return outer
}

/** `skitai.push(path)`: push on the response being handled. */
export function pushFromHandler(path: string): void {
  if (handling === undefined) {
    throw new Error('skitai.push() is only known in the synchronous part of a handler; after an await, call res.push(path)')
  }
  handling.push(path)
}

/** What a push path must be: an absolute path on this origin. */
export function checkPushPath(path: unknown): void {
  if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//') || /[\s\0]/.test(path)) {
    throw new TypeError(`push: expected an absolute path such as '/img/logo.png', got ${JSON.stringify(path)}`)
  }
}
