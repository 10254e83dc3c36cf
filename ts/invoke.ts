import { handlingResponse } from './push.js'
import type { NodeHandler, SkitaiRequest, SkitaiResponse } from './types.js'

export type FailureHandler = (error: unknown) => void

/** The status an error asks for (`status`/`statusCode` 400-599, as http-errors sets), else 500. */
export function failureStatus(error: unknown): number {
  const { status, statusCode } = (typeof error === 'object' && error !== null ? error : {}) as { status?: unknown; statusCode?: unknown }
  const code = typeof status === 'number' ? status : statusCode
  return typeof code === 'number' && Number.isInteger(code) && code >= 400 && code <= 599 ? code : 500
}

function logHandlerError(req: SkitaiRequest, error: unknown): void {
  const where = `${req.method} ${req.originalUrl}`
  console.error(`skitai: handler failed on ${where}:`, error)
}

/**
 * Run a handler; a throw or a rejected promise is logged and handed to `fail`,
 * which answers 500 (or cuts a response already under way). The server goes on.
 */
export function invoke(handler: NodeHandler, req: SkitaiRequest, res: SkitaiResponse, fail: FailureHandler): void {
  const onError = (error: unknown): void => {
    // A client error (a body parser's 400) is an answer, not a fault to log.
    if (failureStatus(error) >= 500) logHandlerError(req, error)
    try {
      fail(error)
    } catch (failure) {
      // Answering the failure failed too (a response left half-built): log, go on.
      logHandlerError(req, failure)
    }
  }
  // No closure per request: `skitai.push` is told the response directly.
  const outer = handlingResponse(res)
  try {
    const result = handler(req, res) as PromiseLike<unknown> | undefined
    if (result !== undefined && result !== null && typeof result.then === 'function') result.then(undefined, onError)
  } catch (error) {
    onError(error)
  } finally {
    handlingResponse(outer)
  }
}
