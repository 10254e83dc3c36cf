/** One answered request, as both engines report it (Rust builds it for the native one). */
export interface AccessRecord {
  /** Request start, ms since the epoch. */
  time: number
  ip: string
  host: string
  method: string
  uri: string
  version: string
  /** Content-Length of the request, '' when none. */
  requestBytes: string
  status: number
  responseBytes: number
  gtxn: string
  ltxn: number
  user: string
  bearer: string
  referer: string
  userAgent: string
  forwardedFor: string
  worker: string
  active: number
  handlingMs: number
  transferMs: number
}

/** Fields of an 'L' batch record after the tag (crates/core/src/record.rs). */
export const ACCESS_FIELDS = 20

export function accessRecordAt(fields: readonly string[], at: number): AccessRecord {
  return {
    time: Number(fields[at]),
    ip: fields[at + 1]!,
    host: fields[at + 2]!,
    method: fields[at + 3]!,
    uri: fields[at + 4]!,
    version: fields[at + 5]!,
    requestBytes: fields[at + 6]!,
    status: Number(fields[at + 7]),
    responseBytes: Number(fields[at + 8]),
    gtxn: fields[at + 9]!,
    ltxn: Number(fields[at + 10]),
    user: fields[at + 11]!,
    bearer: fields[at + 12]!,
    referer: fields[at + 13]!,
    userAgent: fields[at + 14]!,
    forwardedFor: fields[at + 15]!,
    worker: fields[at + 16]!,
    active: Number(fields[at + 17]),
    handlingMs: Number(fields[at + 18]),
    transferMs: Number(fields[at + 19]),
  }
}

/** `logOff` patterns: `*.css` a suffix, anything else a path prefix; `/` is always logged. */
export function loggedOff(patterns: readonly string[], path: string): boolean {
  if (path === '/' || patterns.length === 0) return false
  for (const p of patterns) {
    if (p.startsWith('*') ? path.endsWith(p.slice(1)) : path.startsWith(p)) return true
  }
  return false
}
