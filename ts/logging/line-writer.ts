import type { RecordReader } from './record.js'

const QUOTE = 34
const DASH = 45

const viewOf = (bytes: Buffer): DataView => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Constant text of a line, encoded once. */
export class Text {
  readonly bytes: Uint8Array
  readonly view: DataView

  constructor(text: string) {
    // Three bytes of slack after the text, so it is copied in whole words.
    const padded = Buffer.alloc(text.length + 3)
    padded.write(text, 'latin1')
    this.bytes = padded.subarray(0, text.length)
    this.view = viewOf(padded)
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
 * Words (four bytes) that hold a byte needing escape, with the word tricks of
 * "Bit Twiddling Hacks" (haszero, hasless): a word has a zero byte when
 * (x - 0x01010101) & ~x & 0x80808080 is not 0, and a byte below 0x20 when
 * (x - 0x20202020) & ~x & 0x80808080 is not 0. Neither misses a byte; a word
 * they flag is looked at byte by byte.
 */
const ONES = 0x01010101
const HIGH_BITS = 0x80808080 | 0
const QUOTES = 0x22222222
const BACKSLASHES = 0x5c5c5c5c
const SPACES = 0x20202020

const hasZeroByte = (x: number): number => (x - ONES) & ~x & HIGH_BITS

/** Not 0 when the word has a '"'. */
export const quoteIn = (x: number): number => hasZeroByte(x ^ QUOTES)

/** Not 0 when the word has a byte JSON escapes: '"', '\\' or one below 0x20. */
export const jsonEscapeIn = (x: number): number => ((x - SPACES) & ~x & HIGH_BITS) | hasZeroByte(x ^ QUOTES) | hasZeroByte(x ^ BACKSLASHES)

/**
 * Log lines being formatted, as bytes: the fields of a record are copied from
 * the batch's bytes, never made into strings. Its buffer is the block the
 * request log's destination writes next (`use`); it grows when a line needs it.
 *
 * Bytes go four at a time through DataViews (an unaligned word costs about
 * what one byte does). A field is copied in whole words, the last one running
 * past its end, when its source has three bytes after it (a record's `wordEnd`,
 * a Text's padding): the extra bytes land in the room `reserve` keeps and are
 * overwritten by what follows.
 */
export class LineWriter {
  buffer: Buffer
  private view: DataView
  used = 0

  constructor(size = 64 * 1024) {
    this.buffer = Buffer.allocUnsafe(size)
    this.view = viewOf(this.buffer)
  }

  /** Write into `buffer` from its start on. */
  use(buffer: Buffer): void {
    this.buffer = buffer
    this.view = viewOf(buffer)
    this.used = 0
  }

  /** Room for `n` more bytes (and the three a last word may run past them): the buffer grows, keeping what it holds. */
  reserve(n: number): void {
    if (this.used + n + 3 <= this.buffer.length) return
    const used = this.used
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, used + n + 3))
    this.buffer.copy(bigger, 0, 0, used)
    this.use(bigger)
    this.used = used
  }

  /** bytes[from, to) as they are; words may be read up to `wordEnd` + 3. */
  private copy(bytes: Uint8Array, view: DataView, from: number, to: number, wordEnd: number): void {
    const out = this.view
    const start = this.used
    let o = start
    let p = from
    if (to <= wordEnd) {
      for (; p < to; p += 4, o += 4) out.setUint32(o, view.getUint32(p, true), true)
      this.used = start + to - from
      return
    }
    for (; p + 4 <= to; p += 4, o += 4) out.setUint32(o, view.getUint32(p, true), true)
    const buffer = this.buffer
    for (; p < to; p++) buffer[o++] = bytes[p]!
    this.used = o
  }

  byte(b: number): void {
    this.buffer[this.used++] = b
  }

  text(text: Text): void {
    this.copy(text.bytes, text.view, 0, text.bytes.length, text.bytes.length)
  }

  /** A field as it is. */
  field(r: RecordReader, field: number): void {
    this.copy(r.bytes, r.view, r.starts[field]!, r.starts[field + 1]!, r.wordEnd)
  }

  /** A field, or `instead` (a byte) when empty. */
  dashed(r: RecordReader, field: number, instead = DASH): void {
    if (r.isEmpty(field)) this.byte(instead)
    else this.field(r, field)
  }

  /** A field in double quotes, its own quotes escaped; `-` when empty. */
  quoted(r: RecordReader, field: number): void {
    if (r.isEmpty(field)) this.byte(DASH)
    else this.escaped(r, field, false)
  }

  /** A field as a JSON string: the text JSON.stringify gives for its latin1 characters. */
  json(r: RecordReader, field: number): void {
    this.escaped(r, field, true)
  }

  /**
   * A field in double quotes, escaped for JSON or only its quotes: whole words
   * while none has a byte to escape, the rest byte by byte.
   */
  private escaped(r: RecordReader, field: number, json: boolean): void {
    const view = r.view
    const end = r.starts[field + 1]!
    const out = this.view
    let p = r.starts[field]!
    let o = this.used
    this.buffer[o++] = QUOTE
    const words = Math.min(end, r.wordEnd)
    for (; p < words; p += 4, o += 4) {
      const x = view.getUint32(p, true)
      if ((json ? jsonEscapeIn(x) : quoteIn(x)) !== 0) break
      out.setUint32(o, x, true)
    }
    if (p >= end) o -= p - end
    else o = this.escapeRest(r.bytes, p, end, o, json)
    this.buffer[o++] = QUOTE
    this.used = o
  }

  /** bytes[p, end) written at `o`, escaped for JSON or only their quotes; where the output ends. */
  escapeRest(bytes: Uint8Array, p: number, end: number, o: number, json: boolean): number {
    const out = this.buffer
    const escapes = json ? JSON_ESCAPES : QUOTE_ESCAPES
    for (; p < end; p++) {
      const b = bytes[p]!
      const escape = escapes[b]
      if (escape === undefined) {
        out[o++] = b
      } else {
        for (let i = 0; i < escape.length; i++) out[o++] = escape[i]!
      }
    }
    return o
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
