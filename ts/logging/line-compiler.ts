import { jsonEscapeIn, quoteIn, Text, type LineWriter } from './line-writer.js'
import { ACCESS_FIELDS, ACCESS_TABLE, RecordReader } from './record.js'

/**
 * Writes the line of each record in `records[at, end)`, '\n' included.
 * `room(n)` is called before a line that may not fit: after it the writer has
 * room for n more bytes (and three after them). `view` is a DataView of
 * `records`; every byte of `records` may be read, also past `end`.
 */
export type LinesFormat = (records: Uint8Array, view: DataView, at: number, end: number, out: LineWriter, room: (n: number) => void) => void

/** The longest text a format adds to a record's fields (the JSON one's, with a hostname of up to 255 bytes each escaped to 6), with room for colours. */
export const LINE_TEXT_MAX = 2048

/** Room a record's line may need: LINE_TEXT_MAX, and its fields grown sixfold at most (a control byte escaped as JSON's \u00XX). */
export const lineRoom = (recordSize: number): number => LINE_TEXT_MAX + 6 * recordSize

/** How a piece of a line writes a record's field. */
type FieldPiece =
  | { write: 'field' | 'quoted' | 'json'; field: number }
  /** The field, or `instead` (one byte) when it is empty. */
  | { write: 'dashed'; field: number; instead: string }
  /** JSON object members `"name":"value"`, comma-separated, for the fields that are not empty. */
  | { write: 'members'; members: ReadonlyArray<readonly [number, string]> }
  /** Two number fields added up, in decimal. */
  | { write: 'sum'; fields: readonly [number, number] }
  /** Text that changes once a second, from a field of ms since the epoch. */
  | { write: 'perSecond'; field: number; text: (ms: number) => Text }

/** A line: its constant text (latin1) and the fields written into it, in order. */
export type Piece = string | FieldPiece

export const field = (field: number): Piece => ({ write: 'field', field })
export const dashed = (field: number, instead = '-'): Piece => ({ write: 'dashed', field, instead })
/** In double quotes with its own quotes escaped; `-` when empty. */
export const quoted = (field: number): Piece => ({ write: 'quoted', field })
/** As a JSON string: the text JSON.stringify gives for its latin1 characters. */
export const json = (field: number): Piece => ({ write: 'json', field })
export const members = (members: ReadonlyArray<readonly [number, string]>): Piece => ({ write: 'members', members })
export const sum = (a: number, b: number): Piece => ({ write: 'sum', fields: [a, b] })
export const perSecond = (field: number, text: (ms: number) => Text): Piece => ({ write: 'perSecond', field, text })

/** Where field f of the current record starts (`s${ACCESS_FIELDS}`: where it ends). */
const start = (f: number): string => `s${f}`

/** The record at `at`: where each field starts, from its table of lengths. */
const table = (): string => {
  const starts = [`const s0 = at + ${ACCESS_TABLE}`]
  for (let f = 1; f <= ACCESS_FIELDS; f++) starts.push(`s${f} = s${f - 1} + from.getUint32(at + ${4 * (f - 1)}, true)`)
  return starts.join(', ')
}

/**
 * A line format as one function made for it, which writes the lines of a
 * whole batch: each record's field starts are locals, constant text becomes
 * stores of whole words with the bytes in the code, and each field's copy is
 * written out in place, so a line is a run of straight code with no call per
 * piece. Where code cannot be made from text (node's
 * --disallow-code-generation-from-strings), `interpretLines` makes the same
 * bytes by the writer's methods, more slowly.
 */
export function compileLines(pieces: readonly Piece[]): LinesFormat {
  const texts: Array<(ms: number) => Text> = []
  const body = pieces.map((piece) => (typeof piece === 'string' ? constant(piece) : fieldCode(piece, texts))).join('\n')
  const source = `return function lines(src, from, at, end, out, room) {
  const wordEnd = src.length - 3
  let buffer = out.buffer, to = out.view, o = out.used
  while (at < end) {
    if (at + ${ACCESS_TABLE} > end) throw corrupt(at, end)
    ${table()}
    if (${start(ACCESS_FIELDS)} > end) throw corrupt(at, end)
    const need = lineRoom(${start(ACCESS_FIELDS)} - s0)
    if (o + need + 3 > buffer.length) { out.used = o; room(need); buffer = out.buffer; to = out.view; o = out.used }
    ${body}
    at = ${start(ACCESS_FIELDS)}
  }
  out.used = o
}`
  try {
    return new Function('jsonEscapeIn', 'quoteIn', 'texts', 'corrupt', 'lineRoom', source)(jsonEscapeIn, quoteIn, texts, RecordReader.corrupt, lineRoom) as LinesFormat
  } catch (error) {
    if (!(error instanceof EvalError)) throw error
    return interpretLines(pieces)
  }
}

/**
 * Stores of `text`'s bytes at `o`, then `o` past them: eight at a time as a
 * double whose bits they are (half the stores of words, which JSON's long
 * names make count), else four, else one. Only a finite double is written
 * so: its literal reads back to the same bits, where a NaN's need not.
 */
function constant(text: string): string {
  const bytes = Buffer.from(text, 'latin1')
  const stores: string[] = []
  for (let i = 0; i < bytes.length; ) {
    const bits = i + 8 <= bytes.length ? bytes.readDoubleLE(i) : NaN
    if (Number.isFinite(bits) && !Object.is(bits, -0)) {
      stores.push(`to.setFloat64(o + ${i}, ${bits}, true)`)
      i += 8
    } else if (i + 4 <= bytes.length) {
      stores.push(`to.setUint32(o + ${i}, ${bytes.readUInt32LE(i)}, true)`)
      i += 4
    } else {
      stores.push(`buffer[o + ${i}] = ${bytes[i]}`)
      i++
    }
  }
  return `${stores.join('; ')}; o += ${bytes.length}`
}

/** The field's bytes as they are: whole words while the source has three bytes after the field (the last word's extra bytes are overwritten by what follows), else one by one. */
const copied = (f: number): string => `{
  let p = ${start(f)}; const end = ${start(f + 1)}
  if (end <= wordEnd) { for (; p < end; p += 4, o += 4) to.setUint32(o, from.getUint32(p, true), true); o -= p - end }
  else for (; p < end; p++) buffer[o++] = src[p]
}`

/** The field in double quotes: whole words while none holds a byte to escape, the rest byte by byte with escapes. */
const escaped = (f: number, isJson: boolean): string => `{
  buffer[o++] = 34
  let p = ${start(f)}; const end = ${start(f + 1)}, words = end < wordEnd ? end : wordEnd
  for (; p < words; p += 4, o += 4) { const x = from.getUint32(p, true); if (${isJson ? 'jsonEscapeIn' : 'quoteIn'}(x) !== 0) break; to.setUint32(o, x, true) }
  if (p >= end) o -= p - end
  else o = out.escapeRest(src, p, end, o, ${isJson})
  buffer[o++] = 34
}`

const isEmpty = (f: number): string => `${start(f)} === ${start(f + 1)}`

/** The decimal digits of field f as a number, into `name`. */
const parsed = (f: number, name: string): string => `let ${name} = 0; for (let p = ${start(f)}; p < ${start(f + 1)}; p++) ${name} = ${name} * 10 + src[p] - 48`

function fieldCode(piece: FieldPiece, texts: Array<(ms: number) => Text>): string {
  switch (piece.write) {
    case 'field':
      return copied(piece.field)
    case 'dashed':
      return `if (${isEmpty(piece.field)}) buffer[o++] = ${piece.instead.charCodeAt(0)}; else ${copied(piece.field)}`
    case 'quoted':
      return `if (${isEmpty(piece.field)}) buffer[o++] = 45; else ${escaped(piece.field, false)}`
    case 'json':
      return escaped(piece.field, true)
    case 'members':
      return `{ let first = true
${piece.members.map(([f, name]) => `if (!(${isEmpty(f)})) { if (!first) buffer[o++] = 44; first = false; ${constant(`${JSON.stringify(name)}:`)}; ${escaped(f, true)} }`).join('\n')}
}`
    case 'sum':
      // The digits of the sum written from the last one back.
      return `{ ${parsed(piece.fields[0], 'n')}; ${parsed(piece.fields[1], 'm')}; n += m
  let digits = 1; for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++
  o += digits; let q = o
  do { buffer[--q] = 48 + (n % 10); n = Math.floor(n / 10) } while (n > 0)
}`
    case 'perSecond':
      texts.push(piece.text)
      // The text is padded: it is copied in whole words.
      return `{ ${parsed(piece.field, 'ms')}
  const text = texts[${texts.length - 1}](ms), words = text.view, n = text.bytes.length
  for (let i = 0; i < n; i += 4) to.setUint32(o + i, words.getUint32(i, true), true)
  o += n
}`
  }
}

/** The same lines as `compileLines` makes, by the writer's methods, record by record. */
export function interpretLines(pieces: readonly Piece[]): LinesFormat {
  const line = interpretLine(pieces)
  const r = new RecordReader()
  return (records, view, at, end, out, room) => {
    r.reset(records, end, at, view)
    while (r.next()) {
      room(lineRoom(r.size()))
      line(r, out)
    }
  }
}

/** A line's pieces as calls of the writer's methods, for one record. */
type LineFormat = (r: RecordReader, out: LineWriter) => void

function interpretLine(pieces: readonly Piece[]): LineFormat {
  const steps = pieces.map((piece): LineFormat => {
    if (typeof piece === 'string') {
      const text = new Text(piece)
      return (_r, out) => out.text(text)
    }
    switch (piece.write) {
      case 'field':
        return (r, out) => out.field(r, piece.field)
      case 'dashed': {
        const instead = piece.instead.charCodeAt(0)
        return (r, out) => out.dashed(r, piece.field, instead)
      }
      case 'quoted':
        return (r, out) => out.quoted(r, piece.field)
      case 'json':
        return (r, out) => out.json(r, piece.field)
      case 'members': {
        const names = piece.members.map(([f, name]) => [f, new Text(`${JSON.stringify(name)}:`)] as const)
        return (r, out) => {
          let first = true
          for (const [f, name] of names) {
            if (r.isEmpty(f)) continue
            if (!first) out.byte(44)
            first = false
            out.text(name)
            out.json(r, f)
          }
        }
      }
      case 'sum':
        return (r, out) => out.integer(r.number(piece.fields[0]) + r.number(piece.fields[1]))
      case 'perSecond':
        return (r, out) => out.text(piece.text(r.number(piece.field)))
    }
  })
  return (r, out) => {
    for (const step of steps) step(r, out)
  }
}
