import type { NodeHandler, SkitaiRequest, SkitaiResponse } from '../types.js'

/**
 * Several apps at one mount point, tried in mount order. Each but the last gets
 * a `next` that hands the request to the following app (when nothing has been
 * sent yet) or, given an error, fails the request. A lone app runs as it is.
 */
export function chainApps(apps: readonly NodeHandler[]): NodeHandler {
  if (apps.length === 1) return apps[0]! as NodeHandler
  return (req: SkitaiRequest, res: SkitaiResponse) =>
    new Promise<void>((resolve, reject) => {
      const run = (index: number): void => {
        const next =
          index + 1 < apps.length
            ? (error?: unknown): void => {
                if (error !== undefined && error !== null) reject(error)
                else if (res.headersSent) resolve()
                else run(index + 1)
              }
            : undefined
        try {
          const result = apps[index]!(req, res, next) as PromiseLike<unknown> | undefined
          if (result !== null && typeof result === 'object' && typeof result.then === 'function') result.then(undefined, reject)
        } catch (error) {
          reject(error)
        }
      }
      run(0)
    })
}
