import { join } from 'node:path'
import { logDir } from '../process/paths.js'
import { byteDestination, type ByteDestination } from './byte-destination.js'
import { FORMATS, type AccessLogFormat, type LinesFormat } from './formats.js'
import { Text } from './line-writer.js'
import { lineRoom } from './line-compiler.js'
import { ACCESS_FIELDS, ACCESS_TABLE, Field, RecordReader } from './record.js'

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
  private readonly lines: LinesFormat
  /** Asks the destination for room in its block. */
  private readonly room: (n: number) => void
  private readonly reader = new RecordReader()
  private closed = false

  constructor(readonly settings: RequestLogSettings) {
    this.out = byteDestination(settings.directory ? join(settings.directory, 'request.log') : 1)
    this.lines = FORMATS[settings.format]
    this.room = (n) => this.out.reserve(n)
  }

  /** The server closed: every line is written when this resolves. */
  close(): Promise<void> {
    this.closed = true
    return this.out.close()
  }

  /** Every record in the first `length` bytes of `records` (record.ts gives their layout), as one line each. */
  write(records: Uint8Array, length = records.length): void {
    if (this.closed) return
    const { reader, lines, out, room } = this
    reader.reset(records, length)
    if (out.isTTY) this.coloured(reader)
    else lines(records, reader.view, 0, length, out.lines, room)
    out.written()
  }

  /** On a terminal, each line coloured by its status class. */
  private coloured(reader: RecordReader): void {
    const { lines, room } = this
    const writer = this.out.lines
    while (reader.next()) {
      const from = reader.starts[0]! - ACCESS_TABLE
      const to = reader.starts[ACCESS_FIELDS]!
      const colour = COLOURS[Math.floor(reader.number(Field.status) / 100)]
      if (colour === undefined) {
        lines(reader.bytes, reader.view, from, to, writer, room)
        continue
      }
      room(lineRoom(to - from))
      writer.text(colour)
      lines(reader.bytes, reader.view, from, to, writer, room)
      writer.used-- // the line's '\n' comes after the reset
      writer.text(RESET)
    }
  }
}
