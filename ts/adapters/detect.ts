import type { FetchApp, Mountable, NodeHandler } from '../types.js'
import { expressApp, isExpressApp, prepareExpress } from './express.js'
import { fetchApp } from './fetch.js'
import { isKoaApp, koaApp } from './koa.js'

function isFetchApp(target: unknown): target is FetchApp {
  return typeof target === 'object' && target !== null && typeof (target as FetchApp).fetch === 'function'
}

/** What kind of app `target` is, by the features each kind has. */
export function appKind(target: unknown): 'express' | 'koa' | 'fetch' | 'function' | undefined {
  if (isExpressApp(target)) return 'express'
  if (isKoaApp(target)) return 'koa'
  if (isFetchApp(target)) return 'fetch'
  if (typeof target === 'function') return 'function'
  return undefined
}

/** What an app needs done before it serves (asynchronous, once). */
export async function prepareApp(target: unknown, prefix: string): Promise<void> {
  if (isExpressApp(target)) await prepareExpress(target, prefix)
}

/** Turn whatever was mounted into an app the engines run, or say what is wrong with it. */
export function toHandler(target: Mountable, prefix: string): NodeHandler {
  switch (appKind(target)) {
    case 'express':
      return expressApp(target as Parameters<typeof expressApp>[0])
    case 'koa':
      return koaApp(target as Parameters<typeof koaApp>[0])
    case 'fetch':
      return fetchApp(target as FetchApp)
    case 'function':
      return target as NodeHandler
    default: {
      const kind = target === null ? 'null' : typeof target
      throw new TypeError(
        `cannot mount ${kind} at '${prefix}': expected a (req, res) function, an Express or Koa app, or an object with fetch(request)`,
      )
    }
  }
}
