import { join } from 'node:path'
import { logDir } from '../process/paths.js'
import { destination, type LogDestination } from './destination.js'
import { coloured, FORMATS, type AccessLogFormat } from './formats.js'
import type { AccessRecord } from './record.js'

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

/** Formats access records and writes them: to request.log, or stdout (coloured on a terminal). */
export class RequestLog {
  private readonly out: LogDestination
  private readonly format: (r: AccessRecord) => string

  constructor(readonly settings: RequestLogSettings) {
    this.out = destination(settings.directory ? join(settings.directory, 'request.log') : 1, true)
    this.format = FORMATS[settings.format]
  }

  /** The server closed: every line is written when this resolves. */
  close(): Promise<void> {
    return this.out.close()
  }

  write(record: AccessRecord): void {
    const line = this.format(record)
    this.out.write(this.out.isTTY ? coloured(line, record.status) : line)
  }
}
