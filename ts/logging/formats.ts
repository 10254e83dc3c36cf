import { hostname } from 'node:os'
import type { AccessRecord } from './record.js'

export type AccessLogFormat = 'skitai' | 'combined' | 'json'

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

/** The date and time fields, rebuilt once a second. */
let lastSecond = -1
let dateTime = ''
function localDateTime(ms: number): string {
  const second = Math.floor(ms / 1000)
  if (second !== lastSecond) {
    lastSecond = second
    const d = new Date(ms)
    dateTime = `${d.getFullYear()}.${pad(d.getMonth() + 1)}.${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  }
  return dateTime
}

const dash = (value: string): string => (value === '' ? '-' : value)
// The regular expression only when there is a quote to escape: most values have none.
const quoted = (value: string): string => (value === '' ? '-' : `"${value.includes('"') ? value.replace(/"/g, '\\"') : value}"`)

/**
 * Skitai's line, the seed's field order: date time ip host method uri version
 * request-bytes status response-bytes gtxn ltxn "user" bearer "referer"
 * "user-agent" forwarded-for worker active-connections handling-ms transfer-ms.
 */
export function skitaiLine(r: AccessRecord): string {
  return (
    `${localDateTime(r.time)} ${r.ip} ${dash(r.host)} ${r.method} ${r.uri} ${r.version} ${r.requestBytes === '' ? '0' : r.requestBytes} ` +
    `${r.status} ${r.responseBytes} ${r.gtxn} ${r.ltxn} ${quoted(r.user)} ${dash(r.bearer)} ${quoted(r.referer)} ` +
    `${quoted(r.userAgent)} ${dash(r.forwardedFor)} ${r.worker} ${r.active} ${r.handlingMs} ${r.transferMs}\n`
  )
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

function clfDate(ms: number): string {
  const d = new Date(ms)
  const offset = -d.getTimezoneOffset()
  const sign = offset >= 0 ? '+' : '-'
  const abs = Math.abs(offset)
  return `${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
}

/** Apache's combined format. */
export function combinedLine(r: AccessRecord): string {
  return (
    `${r.ip} - ${dash(r.user)} [${clfDate(r.time)}] "${r.method} ${r.uri} HTTP/${r.version}" ${r.status} ` +
    `${r.responseBytes} ${quoted(r.referer)} ${quoted(r.userAgent)}\n`
  )
}

/** A JSON string: JSON.stringify only for the values that need escaping (few do). */
const NEEDS_ESCAPE = /["\\\x00-\x1f]/
const str = (value: string): string => (NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`)

/** The fields every line starts with: the same for the life of the process. */
const PREFIX = `{"level":30,"time":`
const PROCESS = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())},"req":{"id":`

/**
 * pino-http's field names, one JSON object per line; written out field by field
 * (the same text JSON.stringify gives for the object, without building the object).
 */
export function jsonLine(r: AccessRecord): string {
  let headers = ''
  if (r.host) headers += `"host":${str(r.host)}`
  if (r.userAgent) headers += `${headers ? ',' : ''}"user-agent":${str(r.userAgent)}`
  if (r.referer) headers += `${headers ? ',' : ''}"referer":${str(r.referer)}`
  if (r.forwardedFor) headers += `${headers ? ',' : ''}"x-forwarded-for":${str(r.forwardedFor)}`
  return (
    `${PREFIX}${r.time}${PROCESS}${str(r.gtxn)},"method":${str(r.method)},"url":${str(r.uri)},"httpVersion":${str(r.version)},` +
    `"remoteAddress":${str(r.ip)},"headers":{${headers}}},"res":{"statusCode":${r.status},"contentLength":${r.responseBytes}},` +
    `"responseTime":${r.handlingMs + r.transferMs},"worker":${str(r.worker)},"ltxn":${r.ltxn},"msg":"request completed"}\n`
  )
}

export const FORMATS: Record<AccessLogFormat, (r: AccessRecord) => string> = {
  skitai: skitaiLine,
  combined: combinedLine,
  json: jsonLine,
}

const COLOURS = { 2: '\x1b[32m', 3: '\x1b[36m', 4: '\x1b[33m', 5: '\x1b[31m' } as Record<number, string>

/** For a terminal: the line coloured by status class. */
export function coloured(line: string, status: number): string {
  const colour = COLOURS[Math.floor(status / 100)]
  return colour ? `${colour}${line.slice(0, -1)}\x1b[0m\n` : line
}
