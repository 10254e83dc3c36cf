import type { Mountable, NodeHandler } from './types.js'
import { toNodeHandler } from './adapters/detect.js'

export interface Mount {
  /** Normalised: leading slash, no trailing slash, '/' for the root. */
  prefix: string
  handler: NodeHandler
}

export function normalizePrefix(prefix: string): string {
  if (typeof prefix !== 'string') throw new TypeError(`mount point must be a string, got ${typeof prefix}`)
  let end = prefix.length
  while (end > 0 && prefix.charCodeAt(end - 1) === 47 /* / */) end--
  const trimmed = prefix.slice(0, end)
  if (trimmed === '') return '/'
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`
}

function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true
  if (!path.startsWith(prefix)) return false
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 47
}

/** Where a request-target lands below its mount: `url` for the app, `baseUrl` for Express. */
export function splitUrl(prefix: string, originalUrl: string): { url: string; baseUrl: string } {
  if (prefix === '/') return { url: originalUrl, baseUrl: '' }
  const rest = originalUrl.slice(prefix.length)
  return { url: rest === '' || rest.charCodeAt(0) !== 47 ? `/${rest}` : rest, baseUrl: prefix }
}

export class MountTable {
  /** In mount order; the native engine refers to a mount by its index here. */
  readonly mounts: Mount[] = []

  add(prefix: string, target: Mountable): void {
    this.mounts.push({ prefix: normalizePrefix(prefix), handler: toNodeHandler(target, prefix) })
  }

  /** Longest prefix wins; equal prefixes keep mount order. */
  route(path: string): Mount | undefined {
    let best: Mount | undefined
    for (const m of this.mounts) {
      if (prefixMatches(m.prefix, path) && (best === undefined || m.prefix.length > best.prefix.length)) best = m
    }
    return best
  }
}

/** The path part of a request-target. */
export function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
