import { realpath, stat } from 'node:fs/promises'
import type { BigIntStats } from 'node:fs'
import { join, sep } from 'node:path'

/**
 * The request path below the mount, decoded exactly once. Refused (undefined):
 * invalid escapes or UTF-8 (overlong forms included), NUL, backslashes, and any
 * segment starting with '.' (`.`, `..`, dot-files).
 */
export function decodePath(raw: string): { segments: string[]; trailingSlash: boolean } | undefined {
  let text: string
  try {
    text = decodeURIComponent(raw)
  } catch {
    return undefined
  }
  if (text.includes('\0') || text.includes('\\')) return undefined
  const segments: string[] = []
  for (const segment of text.split('/')) {
    if (segment === '') continue
    if (segment.startsWith('.')) return undefined
    segments.push(segment)
  }
  return { segments, trailingSlash: text.endsWith('/') }
}

export type Found = { kind: 'file'; path: string; stats: BigIntStats } | { kind: 'directory' }

async function contained(root: string, candidate: string): Promise<{ path: string; stats: BigIntStats } | undefined> {
  try {
    const real = await realpath(candidate)
    if (real !== root && !real.startsWith(root + sep)) return undefined
    return { path: real, stats: await stat(real, { bigint: true }) }
  } catch {
    return undefined
  }
}

const INDEX_FILES = ['index.html', 'index.htm']

/** Look the decoded path up in each (canonical) root in turn. */
export async function find(roots: string[], decoded: { segments: string[]; trailingSlash: boolean }): Promise<Found | undefined> {
  for (const root of roots) {
    const hit = await contained(root, join(root, ...decoded.segments))
    if (hit === undefined) continue
    if (hit.stats.isFile()) {
      if (decoded.trailingSlash) continue
      return { kind: 'file', ...hit }
    }
    if (hit.stats.isDirectory()) {
      if (!decoded.trailingSlash) return { kind: 'directory' }
      for (const index of INDEX_FILES) {
        const file = await contained(root, join(hit.path, index))
        if (file?.stats.isFile()) return { kind: 'file', ...file }
      }
    }
  }
  return undefined
}
