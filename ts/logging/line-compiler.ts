import { jsonEscapeIn, quoteIn, Text, type LineWriter } from './line-writer.js'
import type { RecordReader } from './record.js'

/** Writes the line of the reader's current record, '\n' included; the writer has room for it (`reserve`). */
export type LineFormat = (r: RecordReader, out: LineWriter) => void

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

/**
 * A line format as one function made for it: constant text becomes stores of
 * whole words with the bytes in the code, and each field's copy is written out
 * in place, so a line is a run of straight code with no call per piece (about
 * twice as fast as calling the writer's methods piece by piece). Where code
 * cannot be made from text (node's --disallow-code-generation-from-strings),
 * the line calls the writer's methods instead: the same bytes, more slowly.
 */
export function compileLine(pieces: readonly Piece[]): LineFormat {
  const texts: Array<(ms: number) => Text> = []
  const body = pieces.map((piece) => (typeof piece === 'string' ? constant(piece) : fieldCode(piece, texts))).join('\n')
  const source = `return function line(r, out) {
  const starts = r.starts, from = r.view, src = r.bytes, wordEnd = r.wordEnd, to = out.view, buffer = out.buffer
  let o = out.used
  ${body}
  out.used = o
}`
  try {
    return new Function('jsonEscapeIn', 'quoteIn', 'texts', source)(jsonEscapeIn, quoteIn, texts) as LineFormat
  } catch (error) {
    if (!(error instanceof EvalError)) throw error
    return interpretLine(pieces)
  }
}

/** Stores of `text`'s bytes at `o`, four at a time, then `o` past them. */
function constant(text: string): string {
  const bytes = Buffer.from(text, 'latin1')
  const stores: string[] = []
  let i = 0
  for (; i + 4 <= bytes.length; i += 4) stores.push(`to.setUint32(o + ${i}, ${bytes.readUInt32LE(i)}, true)`)
  for (; i < bytes.length; i++) stores.push(`buffer[o + ${i}] = ${bytes[i]}`)
  return `${stores.join('; ')}; o += ${bytes.length}`
}

/** The field's bytes as they are: whole words while the source has three bytes after the field (the last word's extra bytes are overwritten by what follows), else one by one. */
const copied = (f: number): string => `{
  let p = starts[${f}]; const end = starts[${f + 1}]
  if (end <= wordEnd) { for (; p < end; p += 4, o += 4) to.setUint32(o, from.getUint32(p, true), true); o -= p - end }
  else for (; p < end; p++) buffer[o++] = src[p]
}`

/** The field in double quotes: whole words while none holds a byte to escape, the rest byte by byte with escapes. */
const escaped = (f: number, isJson: boolean): string => `{
  buffer[o++] = 34
  let p = starts[${f}]; const end = starts[${f + 1}], words = end < wordEnd ? end : wordEnd
  for (; p < words; p += 4, o += 4) { const x = from.getUint32(p, true); if (${isJson ? 'jsonEscapeIn' : 'quoteIn'}(x) !== 0) break; to.setUint32(o, x, true) }
  if (p >= end) o -= p - end
  else o = out.escapeRest(src, p, end, o, ${isJson})
  buffer[o++] = 34
}`

const isEmpty = (f: number): string => `starts[${f}] === starts[${f + 1}]`

/** A call into the writer, with `o` handed over and back. */
const viaWriter = (call: string): string => `out.used = o; ${call}; o = out.used`

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
      return viaWriter(`out.integer(r.number(${piece.fields[0]}) + r.number(${piece.fields[1]}))`)
    case 'perSecond':
      texts.push(piece.text)
      return viaWriter(`out.text(texts[${texts.length - 1}](r.number(${piece.field})))`)
  }
}

/** The same line as `compileLine` makes, by the writer's methods. */
export function interpretLine(pieces: readonly Piece[]): LineFormat {
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
