import type { BigIntStats } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { find, type Found } from './resolve.js'

/** Files up to this size are kept in memory. */
const SMALL_FILE = 128n * 1024n
/** What may be kept in all before it starts over. */
const MAX_BYTES = 64 * 1024 * 1024
const MAX_ENTRIES = 16 * 1024

interface Kept {
  path: string
  stats: BigIntStats
  /** Its bytes, when it is small enough to be kept. */
  data?: Buffer
}

/** What `find` finds, a file with its bytes when they are kept. */
export type FoundKept = ({ kind: 'file' } & Kept) | { kind: 'directory' }

/** What the last request for a path found, by roots and path. */
const kept = new Map<string, Kept>()
let keptBytes = 0

/** The same version of a file: the change time moves with every write and cannot be set back. */
const sameVersion = (a: BigIntStats, b: BigIntStats): boolean => a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino && a.ctimeNs === b.ctimeNs

function forget(key: string): void {
  const old = kept.get(key)
  if (old === undefined) return
  kept.delete(key)
  keptBytes -= old.data?.length ?? 0
}

function keep(key: string, entry: Kept): void {
  // Another request for the same path may have kept it meanwhile.
  forget(key)
  const size = entry.data?.length ?? 0
  if (keptBytes + size > MAX_BYTES || kept.size >= MAX_ENTRIES) {
    kept.clear()
    keptBytes = 0
  }
  kept.set(key, entry)
  keptBytes += size
}

/**
 * `find`, with what the last request for the same path found kept (the JS
 * engine's counterpart of the native engine's cache where no change notices
 * come): one stat of that file says whether it is still the same version, in
 * place of resolving the path and reading the file again.
 */
export async function findKept(roots: string[], rel: string, decoded: { segments: string[]; trailingSlash: boolean }): Promise<FoundKept | undefined> {
  const key = `${roots.join('\0')}\0${rel}`
  const last = kept.get(key)
  if (last !== undefined) {
    const now = await stat(last.path, { bigint: true }).catch(() => undefined)
    if (now !== undefined && sameVersion(now, last.stats)) return { kind: 'file', ...last }
    forget(key)
  }
  const found: Found | undefined = await find(roots, decoded)
  if (found?.kind !== 'file') return found
  let data: Buffer | undefined
  if (found.stats.size <= SMALL_FILE) {
    data = await readFile(found.path).catch(() => undefined)
    // Changed while it was read: served from the file this time, not kept.
    if (data !== undefined && BigInt(data.length) !== found.stats.size) return found
  }
  const entry: Kept = data === undefined ? { path: found.path, stats: found.stats } : { path: found.path, stats: found.stats, data }
  keep(key, entry)
  return { kind: 'file', ...entry }
}
