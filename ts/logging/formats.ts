import { hostname } from 'node:os'
import { compileLines, dashed, field, json, members, perSecond, quoted, sum, type LinesFormat, type Piece } from './line-compiler.js'
import { Text } from './line-writer.js'
import { Field as F } from './record.js'

export type AccessLogFormat = 'skitai' | 'combined' | 'json'

export type { LinesFormat }

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

/** Text that changes once a second (a line's date), encoded once for each second. */
function perSecondText(render: (date: Date) => string): (ms: number) => Text {
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

const localDateTime = perSecondText(
  (d) => `${d.getFullYear()}.${pad(d.getMonth() + 1)}.${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
)

/**
 * Skitai's line, the seed's field order: date time ip host method uri version
 * request-bytes status response-bytes gtxn ltxn "user" bearer "referer"
 * "user-agent" forwarded-for worker active-connections handling-ms transfer-ms.
 */
const skitaiLine: readonly Piece[] = [
  perSecond(F.time, localDateTime),
  ' ', field(F.ip),
  ' ', dashed(F.host),
  ' ', field(F.method),
  ' ', field(F.uri),
  ' ', field(F.version),
  ' ', dashed(F.requestBytes, '0'),
  ' ', field(F.status),
  ' ', field(F.responseBytes),
  ' ', field(F.gtxn),
  ' ', field(F.ltxn),
  ' ', quoted(F.user),
  ' ', dashed(F.bearer),
  ' ', quoted(F.referer),
  ' ', quoted(F.userAgent),
  ' ', dashed(F.forwardedFor),
  ' ', field(F.worker),
  ' ', field(F.active),
  ' ', field(F.handlingMs),
  ' ', field(F.transferMs),
  '\n',
]

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

const clfDate = perSecondText((d) => {
  const offset = -d.getTimezoneOffset()
  const sign = offset >= 0 ? '+' : '-'
  const abs = Math.abs(offset)
  return `[${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}]`
})

/** Apache's combined format. */
const combinedLine: readonly Piece[] = [
  field(F.ip),
  ' - ', dashed(F.user),
  ' ', perSecond(F.time, clfDate),
  ' "', field(F.method),
  ' ', field(F.uri),
  ' HTTP/', field(F.version),
  '" ', field(F.status),
  ' ', field(F.responseBytes),
  ' ', quoted(F.referer),
  ' ', quoted(F.userAgent),
  '\n',
]

/**
 * pino-http's field names, one JSON object per line: the text JSON.stringify
 * gives for the object, written field by field without building the object.
 * The method (an HTTP token), the version, the address and the worker never
 * hold a byte JSON escapes, so their quotes are part of the text around them.
 */
const jsonLine: readonly Piece[] = [
  '{"level":30,"time":', field(F.time),
  `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())},"req":{"id":`, json(F.gtxn),
  ',"method":"', field(F.method),
  '","url":', json(F.uri),
  ',"httpVersion":"', field(F.version),
  '","remoteAddress":"', field(F.ip),
  '","headers":{', members([[F.host, 'host'], [F.userAgent, 'user-agent'], [F.referer, 'referer'], [F.forwardedFor, 'x-forwarded-for']]),
  '}},"res":{"statusCode":', field(F.status),
  ',"contentLength":', field(F.responseBytes),
  '},"responseTime":', sum(F.handlingMs, F.transferMs),
  ',"worker":"', field(F.worker),
  '","ltxn":', field(F.ltxn),
  ',"msg":"request completed"}\n',
]

/** Each format's line, as pieces. */
export const LINES: Record<AccessLogFormat, readonly Piece[]> = {
  skitai: skitaiLine,
  combined: combinedLine,
  json: jsonLine,
}

export const FORMATS: Record<AccessLogFormat, LinesFormat> = {
  skitai: compileLines(skitaiLine),
  combined: compileLines(combinedLine),
  json: compileLines(jsonLine),
}

