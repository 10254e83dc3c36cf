import { hostname } from 'node:os'
import { Text, type LineWriter } from './line-writer.js'
import { Field as F, type RecordReader } from './record.js'

export type AccessLogFormat = 'skitai' | 'combined' | 'json'

/** Writes the line of the reader's current record, '\n' included. */
export type LineFormat = (r: RecordReader, out: LineWriter) => void

const SPACE = 32
const NEWLINE = 10
const ZERO = 48
const COMMA = 44

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

/** Text that changes once a second (a line's date), encoded once for each second. */
function perSecond(render: (date: Date) => string): (ms: number) => Text {
  let second = -1
  let text = new Text('')
  return (ms) => {
    const now = Math.floor(ms / 1000)
    if (now !== second) {
      second = now
      text = new Text(render(new Date(ms)))
    }
    return text
  }
}

const localDateTime = perSecond(
  (d) => `${d.getFullYear()}.${pad(d.getMonth() + 1)}.${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
)

/** Each of `fields`, after a space. */
function spaced(r: RecordReader, out: LineWriter, fields: readonly number[]): void {
  for (let i = 0; i < fields.length; i++) {
    out.byte(SPACE)
    out.field(r, fields[i]!)
  }
}

const REQUEST_LINE = [F.method, F.uri, F.version]
const OUTCOME = [F.status, F.responseBytes, F.gtxn, F.ltxn]
const SERVER_SIDE = [F.worker, F.active, F.handlingMs, F.transferMs]

/**
 * Skitai's line, the seed's field order: date time ip host method uri version
 * request-bytes status response-bytes gtxn ltxn "user" bearer "referer"
 * "user-agent" forwarded-for worker active-connections handling-ms transfer-ms.
 */
export function skitaiLine(r: RecordReader, out: LineWriter): void {
  out.text(localDateTime(r.number(F.time)))
  out.byte(SPACE)
  out.field(r, F.ip)
  out.byte(SPACE)
  out.dashed(r, F.host)
  spaced(r, out, REQUEST_LINE)
  out.byte(SPACE)
  if (r.isEmpty(F.requestBytes)) out.byte(ZERO)
  else out.field(r, F.requestBytes)
  spaced(r, out, OUTCOME)
  out.byte(SPACE)
  out.quoted(r, F.user)
  out.byte(SPACE)
  out.dashed(r, F.bearer)
  out.byte(SPACE)
  out.quoted(r, F.referer)
  out.byte(SPACE)
  out.quoted(r, F.userAgent)
  out.byte(SPACE)
  out.dashed(r, F.forwardedFor)
  spaced(r, out, SERVER_SIDE)
  out.byte(NEWLINE)
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

const clfDate = perSecond((d) => {
  const offset = -d.getTimezoneOffset()
  const sign = offset >= 0 ? '+' : '-'
  const abs = Math.abs(offset)
  return `[${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}] "`
})

const USER_AT = new Text(' - ')
const HTTP = new Text(' HTTP/')
const END_OF_REQUEST = new Text('" ')

/** Apache's combined format. */
export function combinedLine(r: RecordReader, out: LineWriter): void {
  out.field(r, F.ip)
  out.text(USER_AT)
  out.dashed(r, F.user)
  out.byte(SPACE)
  out.text(clfDate(r.number(F.time)))
  out.field(r, F.method)
  out.byte(SPACE)
  out.field(r, F.uri)
  out.text(HTTP)
  out.field(r, F.version)
  out.text(END_OF_REQUEST)
  out.field(r, F.status)
  out.byte(SPACE)
  out.field(r, F.responseBytes)
  out.byte(SPACE)
  out.quoted(r, F.referer)
  out.byte(SPACE)
  out.quoted(r, F.userAgent)
  out.byte(NEWLINE)
}

/** The JSON text around the fields; the process's part is the same for its whole life. */
const JSON_START = new Text('{"level":30,"time":')
const JSON_PROCESS = new Text(`,"pid":${process.pid},"hostname":${JSON.stringify(hostname())},"req":{"id":`)
// The method (an HTTP token), the version, the address and the worker never hold a byte JSON escapes: their quotes are part of the text around them.
const JSON_METHOD = new Text(',"method":"')
const JSON_URL = new Text('","url":')
const JSON_VERSION = new Text(',"httpVersion":"')
const JSON_ADDRESS = new Text('","remoteAddress":"')
const JSON_HEADERS = new Text('","headers":{')
const JSON_STATUS = new Text('}},"res":{"statusCode":')
const JSON_LENGTH = new Text(',"contentLength":')
const JSON_TIME = new Text('},"responseTime":')
const JSON_WORKER = new Text(',"worker":"')
const JSON_LTXN = new Text('","ltxn":')
const JSON_END = new Text(',"msg":"request completed"}\n')
/** The request headers a line shows, when the request had them. */
const JSON_REQUEST_HEADERS: Array<[number, Text]> = [
  [F.host, new Text('"host":')],
  [F.userAgent, new Text('"user-agent":')],
  [F.referer, new Text('"referer":')],
  [F.forwardedFor, new Text('"x-forwarded-for":')],
]

/**
 * pino-http's field names, one JSON object per line: the text JSON.stringify
 * gives for the object, written field by field without building the object.
 */
export function jsonLine(r: RecordReader, out: LineWriter): void {
  out.text(JSON_START)
  out.field(r, F.time)
  out.text(JSON_PROCESS)
  out.json(r, F.gtxn)
  out.text(JSON_METHOD)
  out.field(r, F.method)
  out.text(JSON_URL)
  out.json(r, F.uri)
  out.text(JSON_VERSION)
  out.field(r, F.version)
  out.text(JSON_ADDRESS)
  out.field(r, F.ip)
  out.text(JSON_HEADERS)
  let first = true
  for (const [field, name] of JSON_REQUEST_HEADERS) {
    if (r.isEmpty(field)) continue
    if (!first) out.byte(COMMA)
    first = false
    out.text(name)
    out.json(r, field)
  }
  out.text(JSON_STATUS)
  out.field(r, F.status)
  out.text(JSON_LENGTH)
  out.field(r, F.responseBytes)
  out.text(JSON_TIME)
  out.integer(r.number(F.handlingMs) + r.number(F.transferMs))
  out.text(JSON_WORKER)
  out.field(r, F.worker)
  out.text(JSON_LTXN)
  out.field(r, F.ltxn)
  out.text(JSON_END)
}

export const FORMATS: Record<AccessLogFormat, LineFormat> = {
  skitai: skitaiLine,
  combined: combinedLine,
  json: jsonLine,
}

/** The longest constant text a format adds to a line (the JSON one's, with a hostname of up to 255 bytes each escaped to 6), with room for colours. */
export const LINE_TEXT_MAX = 2048
