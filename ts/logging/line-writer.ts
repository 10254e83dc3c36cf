import type { RecordReader } from './record.js'

const QUOTE = 34
const BACKSLASH = 92
const DASH = 45

/** Constant text of a line, encoded once. */
export class Text {
  readonly bytes: Uint8Array
  readonly view: DataView

  constructor(text: string) {
    this.bytes = Buffer.from(text, 'latin1')
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength)
  }
}

/** For each byte value, what stands for it inside a quoted field; undefined: the byte itself. */
type Escapes = ReadonlyArray<Uint8Array | undefined>

/** What JSON.stringify writes for each byte that needs escaping (as a latin1 character). */
const JSON_ESCAPES: Escapes = Array.from({ length: 256 }, (_, b) => {
  const json = JSON.stringify(String.fromCharCode(b)).slice(1, -1)
  return json.length > 1 ? Buffer.from(json, 'latin1') : undefined
})

/** A quoted field of the skitai and combined lines escapes only its quotes. */
const QUOTE_ESCAPES: Escapes = Array.from({ length: 256 }, (_, b) => (b === QUOTE ? Buffer.from('\\"', 'latin1') : undefined))

/*
 * Whether bytes[from, to) hold a byte that needs escaping: four at a time, with
 * the word tricks of "Bit Twiddling Hacks" (haszero, hasless): a word has a zero
 * byte when (x - 0x01010101) & ~x & 0x80808080 is not 0, and a byte below 0x20
 * when (x - 0x20202020) & ~x & 0x80808080 is not 0. Neither misses a byte; the
 * slow path that escapes looks at each byte again anyway.
 */
const ONES = 0x01010101
const HIGH_BITS = 0x80808080 | 0
const QUOTES = 0x22222222
const BACKSLASHES = 0x5c5c5c5c
const SPACES = 0x20202020

const hasZeroByte = (x: number): number => (x - ONES) & ~x & HIGH_BITS

/** A '"' in bytes[from, to). */
function hasQuote(bytes: Uint8Array, view: DataView, from: number, to: number): boolean {
  let p = from
  for (; p + 4 <= to; p += 4) if (hasZeroByte(view.getUint32(p, true) ^ QUOTES) !== 0) return true
  for (; p < to; p++) if (bytes[p] === QUOTE) return true
  return false
}

/** A byte JSON escapes ('"', '\\', or below 0x20) in bytes[from, to). */
function hasJsonEscape(bytes: Uint8Array, view: DataView, from: number, to: number): boolean {
  let p = from
  for (; p + 4 <= to; p += 4) {
    const x = view.getUint32(p, true)
    if ((((x - SPACES) & ~x & HIGH_BITS) | hasZeroByte(x ^ QUOTES) | hasZeroByte(x ^ BACKSLASHES)) !== 0) return true
  }
  for (; p < to; p++) {
    const b = bytes[p]!
    if (b < 32 || b === QUOTE || b === BACKSLASH) return true
  }
  return false
}

/**
 * Log lines being formatted, as bytes: the fields of a record are copied from
 * the batch's bytes, never made into strings. The buffer grows as needed and
 * is reused batch after batch.
 */
export class LineWriter {
  buffer = Buffer.allocUnsafe(64 * 1024)
  private view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength)
  used = 0

  /** Room for `n` more bytes. */
  reserve(n: number): void {
    if (this.used + n <= this.buffer.length) return
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, this.used + n))
    this.buffer.copy(bigger, 0, 0, this.used)
    this.buffer = bigger
    this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength)
  }

  /**
   * bytes[from, to) as they are: four at a time (unaligned loads and stores
   * through DataViews cost about what one byte does).
   */
  private copy(bytes: Uint8Array, view: DataView, from: number, to: number): void {
    const out = this.view
    let o = this.used
    let p = from
    for (; p + 4 <= to; p += 4, o += 4) out.setUint32(o, view.getUint32(p, true), true)
    const buffer = this.buffer
    for (; p < to; p++) buffer[o++] = bytes[p]!
    this.used = o
  }

  byte(b: number): void {
    this.buffer[this.used++] = b
  }

  text(text: Text): void {
    this.copy(text.bytes, text.view, 0, text.bytes.length)
  }

  /** A field as it is. */
  field(r: RecordReader, field: number): void {
    this.copy(r.bytes, r.view, r.starts[field]!, r.starts[field + 1]!)
  }

  /** A field, or `-` when empty. */
  dashed(r: RecordReader, field: number): void {
    if (r.isEmpty(field)) this.byte(DASH)
    else this.field(r, field)
  }

  /** A field in double quotes, its own quotes escaped; `-` when empty. */
  quoted(r: RecordReader, field: number): void {
    if (r.isEmpty(field)) this.byte(DASH)
    else this.escaped(r, field, hasQuote, QUOTE_ESCAPES)
  }

  /** A field as a JSON string: the text JSON.stringify gives for its latin1 characters. */
  json(r: RecordReader, field: number): void {
    this.escaped(r, field, hasJsonEscape, JSON_ESCAPES)
  }

  /**
   * A field in double quotes, each byte that `escapes` has written as its escape;
   * copied whole when `needsEscape` finds none (most fields).
   */
  private escaped(r: RecordReader, field: number, needsEscape: typeof hasQuote, escapes: Escapes): void {
    const bytes = r.bytes
    const start = r.starts[field]!
    const end = r.starts[field + 1]!
    this.byte(QUOTE)
    if (!needsEscape(bytes, r.view, start, end)) {
      this.copy(bytes, r.view, start, end)
      return this.byte(QUOTE)
    }
    const out = this.buffer
    let o = this.used
    for (let p = start; p < end; p++) {
      const b = bytes[p]!
      const escape = escapes[b]
      if (escape === undefined) {
        out[o++] = b
      } else {
        for (let i = 0; i < escape.length; i++) out[o++] = escape[i]!
      }
    }
    out[o++] = QUOTE
    this.used = o
  }

  /** A whole number in decimal. */
  integer(n: number): void {
    let digits = 1
    for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++
    const out = this.buffer
    let o = this.used + digits
    this.used = o
    let rest = n
    do {
      out[--o] = 48 + (rest % 10)
      rest = Math.floor(rest / 10)
    } while (rest > 0)
  }
}
