/**
 * XML-RPC messages, both ways: values as the specification types them (int/i4,
 * boolean, string, double, dateTime.iso8601, base64, struct, array) plus the
 * common extensions nil and i8. Parsing is fast-xml-parser's (validated,
 * order kept, no DOCTYPE); writing is done here, since the format is a handful
 * of fixed elements around escaped text.
 *
 * Types in JavaScript: int/i4/i8 are numbers (bigint beyond 2^53), boolean is
 * boolean, string and an untyped value are strings, double is a number,
 * dateTime.iso8601 is a Date (read as UTC when it has no offset; written in UTC),
 * base64 is a Buffer, struct a plain object, array an array, nil null.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { RpcError, RPC_CODES } from './error.js'

type XmlNode = { [tag: string]: XmlNode[] | string }

const parser = new XMLParser({
  preserveOrder: true,
  trimValues: false,
  parseTagValue: false,
  ignoreAttributes: true,
  removeNSPrefix: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  // Also decodes numeric character references (&#13;), which XML requires.
  htmlEntities: true,
})

const invalid = (message: string): RpcError => new RpcError(RPC_CODES.INVALID_REQUEST, message)

/** Parse a document; not well-formed XML is an RpcError with PARSE_ERROR. */
function parse(xml: string): XmlNode[] {
  if (/<!DOCTYPE/i.test(xml)) throw new RpcError(RPC_CODES.PARSE_ERROR, 'Parse error: DOCTYPE is not allowed in XML-RPC')
  const valid = XMLValidator.validate(xml)
  if (valid !== true) throw new RpcError(RPC_CODES.PARSE_ERROR, `Parse error: ${valid.err.msg} (line ${valid.err.line})`)
  return parser.parse(xml) as XmlNode[]
}

function tagOf(node: XmlNode): string {
  return Object.keys(node)[0]!
}

/** The child elements of `children` (whitespace between them is ignored, other text is not allowed). */
function elements(children: XmlNode[], where: string): Array<[string, XmlNode[]]> {
  const out: Array<[string, XmlNode[]]> = []
  for (const node of children) {
    const tag = tagOf(node)
    const content = node[tag]!
    if (tag === '#text') {
      if (typeof content === 'string' && content.trim() !== '') throw invalid(`unexpected text in <${where}>`)
      continue
    }
    out.push([tag, content as XmlNode[]])
  }
  return out
}

/** The text of an element that holds only text. */
function textOf(children: XmlNode[], where: string): string {
  let text = ''
  for (const node of children) {
    const tag = tagOf(node)
    if (tag !== '#text') throw invalid(`<${tag}> inside <${where}>, which holds text`)
    text += String(node[tag])
  }
  return text
}

function only(children: XmlNode[], tag: string, where: string): XmlNode[] {
  const found = elements(children, where)
  if (found.length !== 1 || found[0]![0] !== tag) throw invalid(`<${where}> must hold one <${tag}>`)
  return found[0]![1]
}

function integer(text: string, type: string): number | bigint {
  const t = text.trim()
  if (!/^[+-]?\d+$/.test(t)) throw invalid(`<${type}> holds '${text}', not an integer`)
  const n = Number(t)
  return Number.isSafeInteger(n) ? n : BigInt(t)
}

const DATE = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/

function dateTime(text: string): Date {
  const m = DATE.exec(text.trim())
  if (!m) throw invalid(`<dateTime.iso8601> holds '${text}'`)
  const zone = m[8] === undefined || m[8] === 'Z' ? 'Z' : `${m[8].slice(0, 3)}:${m[8].slice(-2)}`
  const date = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}${zone}`)
  if (Number.isNaN(date.getTime())) throw invalid(`<dateTime.iso8601> holds '${text}'`)
  return date
}

/** The JavaScript value of a <value> element's content. */
function decodeValue(children: XmlNode[]): unknown {
  // No type element: the value is a string (its text, whitespace kept).
  if (children.every((node) => tagOf(node) === '#text')) return textOf(children, 'value')
  const typed = elements(children, 'value')
  if (typed.length > 1) throw invalid('<value> holds more than one element')
  const [type, content] = typed[0]!
  switch (type) {
    case 'int':
    case 'i4':
    case 'i8':
      return integer(textOf(content, type), type)
    case 'boolean': {
      const t = textOf(content, type).trim()
      if (t !== '0' && t !== '1') throw invalid(`<boolean> holds '${t}', not 0 or 1`)
      return t === '1'
    }
    case 'string':
      return textOf(content, type)
    case 'double': {
      const t = textOf(content, type).trim()
      const n = Number(t)
      if (t === '' || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) || !Number.isFinite(n)) throw invalid(`<double> holds '${t}'`)
      return n
    }
    case 'dateTime.iso8601':
      return dateTime(textOf(content, type))
    case 'base64': {
      const t = textOf(content, type).replace(/\s+/g, '')
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) throw invalid('<base64> holds something else')
      return Buffer.from(t, 'base64')
    }
    case 'nil':
      return null
    case 'array': {
      const data = only(content, 'data', 'array')
      return elements(data, 'data').map(([tag, value]) => {
        if (tag !== 'value') throw invalid(`<${tag}> inside <data>`)
        return decodeValue(value)
      })
    }
    case 'struct': {
      const out: Record<string, unknown> = {}
      for (const [tag, member] of elements(content, 'struct')) {
        if (tag !== 'member') throw invalid(`<${tag}> inside <struct>`)
        let name: string | undefined
        let value: unknown
        let seen = false
        for (const [part, inner] of elements(member, 'member')) {
          if (part === 'name') name = textOf(inner, 'name')
          else if (part === 'value') {
            value = decodeValue(inner)
            seen = true
          } else throw invalid(`<${part}> inside <member>`)
        }
        if (name === undefined || !seen) throw invalid('a <member> needs a <name> and a <value>')
        Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true })
      }
      return out
    }
    default:
      throw invalid(`unknown XML-RPC type <${type}>`)
  }
}

function root(xml: string, tag: string): XmlNode[] {
  const found = elements(parse(xml), 'document')
  if (found.length !== 1 || found[0]![0] !== tag) throw invalid(`not an XML-RPC <${tag}>`)
  return found[0]![1]
}

function decodeParams(children: XmlNode[]): unknown[] {
  return elements(children, 'params').map(([tag, param]) => {
    if (tag !== 'param') throw invalid(`<${tag}> inside <params>`)
    return decodeValue(only(param, 'value', 'param'))
  })
}

/** A <methodCall>: its method name and parameters. */
export function decodeCall(xml: string): { method: string; params: unknown[] } {
  let method: string | undefined
  let params: unknown[] = []
  for (const [tag, content] of elements(root(xml, 'methodCall'), 'methodCall')) {
    if (tag === 'methodName') method = textOf(content, tag).trim()
    else if (tag === 'params') params = decodeParams(content)
    else throw invalid(`<${tag}> inside <methodCall>`)
  }
  if (!method) throw invalid('a <methodCall> needs a <methodName>')
  return { method, params }
}

/** A <methodResponse>: its value, or its fault as an RpcError (thrown). */
export function decodeResponse(xml: string): unknown {
  const parts = elements(root(xml, 'methodResponse'), 'methodResponse')
  if (parts.length !== 1) throw invalid('a <methodResponse> holds <params> or <fault>')
  const [tag, content] = parts[0]!
  if (tag === 'params') {
    const params = decodeParams(content)
    if (params.length !== 1) throw invalid('a <methodResponse> has one <param>')
    return params[0]
  }
  if (tag !== 'fault') throw invalid(`<${tag}> inside <methodResponse>`)
  const fault = decodeValue(only(content, 'value', 'fault')) as { faultCode?: unknown; faultString?: unknown } | null
  const code = Number(fault?.faultCode)
  throw new RpcError(Number.isInteger(code) ? code : 0, typeof fault?.faultString === 'string' ? fault.faultString : 'fault without a faultString')
}

// Characters XML 1.0 cannot carry, escaped or not.
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** `text` with the characters XML cannot carry replaced by U+FFFD (for fault strings). */
export function xmlSafe(text: string): string {
  return text.replace(new RegExp(NOT_XML.source, 'g'), '\uFFFD')
}

function escape(text: string): string {
  if (NOT_XML.test(text)) throw new TypeError('XML-RPC: a string holds a character XML cannot carry (a control character or a lone surrogate); send it as a Buffer (base64)')
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;')
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 }

/** A JavaScript value as an XML-RPC <value>; a value with no XML-RPC type throws a TypeError. */
export function encodeValue(value: unknown, seen: Set<object> = new Set()): string {
  if (value === null || value === undefined) return '<value><nil/></value>'
  switch (typeof value) {
    case 'boolean':
      return `<value><boolean>${value ? 1 : 0}</boolean></value>`
    case 'number':
      if (Number.isInteger(value) && value >= INT32.min && value <= INT32.max) return `<value><int>${value}</int></value>`
      if (!Number.isFinite(value)) throw new TypeError(`XML-RPC has no ${String(value)}`)
      return `<value><double>${String(value)}</double></value>`
    case 'bigint':
      return value >= BigInt(INT32.min) && value <= BigInt(INT32.max) ? `<value><int>${value}</int></value>` : `<value><i8>${value}</i8></value>`
    case 'string':
      return `<value><string>${escape(value)}</string></value>`
    case 'object':
      break
    default:
      throw new TypeError(`XML-RPC has no type for a ${typeof value}`)
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TypeError('XML-RPC: an invalid Date')
    const d = value
    const text = `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
    return `<value><dateTime.iso8601>${text}</dateTime.iso8601></value>`
  }
  if (value instanceof Uint8Array || value instanceof ArrayBuffer) {
    const bytes = value instanceof ArrayBuffer ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    return `<value><base64>${bytes.toString('base64')}</base64></value>`
  }
  if (seen.has(value)) throw new TypeError('XML-RPC: a value that contains itself')
  seen.add(value)
  try {
    if (Array.isArray(value)) return `<value><array><data>${value.map((item) => encodeValue(item, seen)).join('')}</data></array></value>`
    const members = Object.entries(value)
      .filter(([, member]) => member !== undefined)
      .map(([name, member]) => `<member><name>${escape(name)}</name>${encodeValue(member, seen)}</member>`)
    return `<value><struct>${members.join('')}</struct></value>`
  } finally {
    seen.delete(value)
  }
}

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'

export function encodeCall(method: string, params: readonly unknown[]): string {
  const body = params.map((param) => `<param>${encodeValue(param)}</param>`).join('')
  return `${HEAD}<methodCall><methodName>${escape(method)}</methodName><params>${body}</params></methodCall>\n`
}

export function encodeResponse(result: unknown): string {
  return `${HEAD}<methodResponse><params><param>${encodeValue(result)}</param></params></methodResponse>\n`
}

export function encodeFault(code: number, message: string): string {
  return `${HEAD}<methodResponse><fault>${encodeValue({ faultCode: code, faultString: message })}</fault></methodResponse>\n`
}
