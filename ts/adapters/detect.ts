import type { FetchApp, Mountable, NodeHandler } from '../types.js'
import { fetchHandler } from './fetch.js'

function isFetchApp(target: unknown): target is FetchApp {
  return typeof target === 'object' && target !== null && typeof (target as FetchApp).fetch === 'function'
}

/** Turn whatever was mounted into a node-style handler, or say what is wrong with it. */
export function toNodeHandler(target: Mountable, prefix: string): NodeHandler {
  if (typeof target === 'function') return target
  if (isFetchApp(target)) return fetchHandler(target)
  const kind = target === null ? 'null' : typeof target
  throw new TypeError(
    `cannot mount ${kind} at '${prefix}': expected a (req, res) function or an object with fetch(request)`,
  )
}
