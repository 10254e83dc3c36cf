/**
 * Access records as both engines hand them to the request log, one after
 * another: each a table of its fields' lengths (u32, little-endian), then the
 * fields' bytes in this order (the request's, then the response's) (crates/core/src/record.rs builds them for the
 * native engine, js-records.ts for the pure-JS one). The bytes are the
 * request's own.
 */
export const Field = {
  /** Request start, ms since the epoch. */
  time: 0,
  ip: 1,
  host: 2,
  method: 3,
  uri: 4,
  version: 5,
  /** Content-Length of the request, empty when none. */
  requestBytes: 6,
  gtxn: 7,
  ltxn: 8,
  user: 9,
  bearer: 10,
  referer: 11,
  userAgent: 12,
  forwardedFor: 13,
  worker: 14,
  status: 15,
  responseBytes: 16,
  active: 17,
  handlingMs: 18,
  transferMs: 19,
} as const

export const ACCESS_FIELDS = 20
/** The table of field lengths a record starts with. */
export const ACCESS_TABLE = 4 * ACCESS_FIELDS

/**
 * Reads records one after another from a batch's bytes: where each field of the
 * current one starts. Reused across batches; no string and no object per record.
 */
export class RecordReader {
  bytes: Uint8Array = new Uint8Array(0)
  view = new DataView(this.bytes.buffer)
  /** Field i is bytes[starts[i], starts[i + 1]). */
  readonly starts = new Int32Array(ACCESS_FIELDS + 1)
  /** A field that ends here or before can be read in whole words (the last one running past it). */
  wordEnd = -3
  private at = 0
  private end = 0

  /** Read the records in bytes[at, length); the bytes after them may be read in whole words too. `view`: one of `bytes`, when the caller has it. */
  reset(bytes: Uint8Array, length = bytes.length, at = 0, view?: DataView): void {
    // The native engine hands over the same Buffer batch after batch.
    if (bytes !== this.bytes) {
      this.bytes = bytes
      this.view = view ?? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    }
    this.end = length
    this.wordEnd = bytes.length - 3
    this.at = at
  }

  /** Moves to the next record; false when there is none left. */
  next(): boolean {
    const at = this.at
    const end = this.end
    if (at >= end) return false
    let start = at + ACCESS_TABLE
    if (start > end) throw RecordReader.corrupt(at, end)
    for (let i = 0; i < ACCESS_FIELDS; i++) {
      this.starts[i] = start
      start += this.view.getUint32(at + 4 * i, true)
    }
    if (start > end) throw RecordReader.corrupt(at, end)
    this.starts[ACCESS_FIELDS] = start
    this.at = start
    return true
  }

  /** A record that runs past the end of its batch. */
  static corrupt(at: number, end: number): Error {
    return new Error(`skitai: corrupt access record at byte ${at} of ${end}`)
  }

  /** The current record's length in bytes. */
  size(): number {
    return this.starts[ACCESS_FIELDS]! - this.starts[0]!
  }

  isEmpty(field: number): boolean {
    return this.starts[field + 1] === this.starts[field]
  }

  /** A field of decimal digits as a number (0 when empty). */
  number(field: number): number {
    const bytes = this.bytes
    const end = this.starts[field + 1]!
    let n = 0
    for (let p = this.starts[field]!; p < end; p++) n = n * 10 + bytes[p]! - 48
    return n
  }
}

/** Encodes one record (the pure-JS engine's): its fields' characters are bytes (latin1). */
export function encodeRecord(fields: ReadonlyArray<string | number>): Buffer {
  const texts = fields.map(String)
  let size = ACCESS_TABLE
  for (const text of texts) size += text.length
  const out = Buffer.allocUnsafe(size)
  let at = ACCESS_TABLE
  texts.forEach((text, i) => {
    out.writeUInt32LE(text.length, 4 * i)
    at += out.write(text, at, 'latin1')
  })
  return out
}

/** `logOff` patterns: `*.css` a suffix, anything else a path prefix; `/` is always logged. */
export function loggedOff(patterns: readonly string[], path: string): boolean {
  if (path === '/' || patterns.length === 0) return false
  for (const p of patterns) {
    if (p.startsWith('*') ? path.endsWith(p.slice(1)) : path.startsWith(p)) return true
  }
  return false
}
