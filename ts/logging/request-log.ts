import { join } from 'node:path'
import { logDir } from '../process/paths.js'
import { byteDestination, type ByteDestination } from './byte-destination.js'
import { FORMATS, LINE_TEXT_MAX, type AccessLogFormat, type LineFormat } from './formats.js'
import { Text } from './line-writer.js'
import { Field, RecordReader } from './record.js'

export interface RequestLogSettings {
  format: AccessLogFormat
  /** `logOff` patterns. */
  off: string[]
  /** `W0`, `W1`, ...: the worker in records. */
  worker: string
  /** `enableFileLogging()`: the directory of request.log (else stdout). */
  directory?: string
}

/** Where log files go for a service: the given directory or the default one. */
export function fileLogDirectory(name: string, given: string | true | undefined): string | undefined {
  if (given === undefined) return undefined
  return given === true ? logDir(name) : given
}

/** On a terminal, lines are coloured by status class. */
const COLOURS: Array<Text | undefined> = [undefined, undefined, new Text('\x1b[32m'), new Text('\x1b[36m'), new Text('\x1b[33m'), new Text('\x1b[31m')]
const RESET = new Text('\x1b[0m\n')

/** Formats access records and writes them: to request.log, or stdout (coloured on a terminal). */
export class RequestLog {
  private readonly out: ByteDestination
  private readonly line: LineFormat
  private readonly reader = new RecordReader()
  private closed = false

  constructor(readonly settings: RequestLogSettings) {
    this.out = byteDestination(settings.directory ? join(settings.directory, 'request.log') : 1)
    this.line = FORMATS[settings.format]
  }

  /** The server closed: every line is written when this resolves. */
  close(): Promise<void> {
    this.closed = true
    return this.out.close()
  }

  /** Every record in the first `length` bytes of `records` (record.ts gives their layout), as one line each. */
  write(records: Uint8Array, length = records.length): void {
    if (this.closed) return
    const { reader, line, out } = this
    const writer = out.lines
    const colours = out.isTTY
    reader.reset(records, length)
    while (reader.next()) {
      // A field grows at most sixfold (a control byte escaped as JSON's \u00XX).
      out.reserve(LINE_TEXT_MAX + 6 * reader.size())
      const colour = colours ? COLOURS[Math.floor(reader.number(Field.status) / 100)] : undefined
      if (colour === undefined) {
        line(reader, writer)
        continue
      }
      writer.text(colour)
      line(reader, writer)
      writer.used-- // the line's '\n' comes after the reset
      writer.text(RESET)
    }
    out.written()
  }
}
