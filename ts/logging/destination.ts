import { mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import pino from 'pino'

/** What log writers write to: whole lines, asynchronously (pino's SonicBoom). */
export interface LogDestination {
  write(line: string): void
  /** After logrotate moved the file: open it again (SIGUSR1). */
  reopen(): void
  flushSync(): void
  readonly isTTY: boolean
}

const open = new Set<LogDestination>()
let exitHooked = false

/**
 * A file opened for appending (every worker appends whole lines to the same
 * file), or stdout/stderr. `buffered`: written in blocks of 4 KiB or more (the
 * request log under load), flushed at exit and when the server closes.
 */
export function destination(target: string | 1 | 2, buffered = false): LogDestination {
  // Opened here, synchronously: a line written at once is never lost to a file still opening.
  let fd: number
  if (typeof target === 'string') {
    mkdirSync(dirname(target), { recursive: true })
    fd = openSync(target, 'a')
  } else {
    fd = target
  }
  const isTTY = typeof target === 'number' && Boolean(target === 1 ? process.stdout.isTTY : process.stderr.isTTY)
  const boom = pino.destination({ fd, sync: false, append: true, minLength: buffered && !isTTY ? 4096 : 0 })
  // SonicBoom reopens by path: tell it the file behind the descriptor.
  if (typeof target === 'string') (boom as unknown as { file: string }).file = target
  const dest: LogDestination = {
    write: (line) => {
      boom.write(line)
    },
    reopen: () => {
      if (typeof target === 'string') boom.reopen(target)
    },
    flushSync: () => {
      try {
        boom.flushSync()
      } catch {
        // Not ready yet (still opening) or the file is gone: nothing to flush.
      }
    },
    isTTY,
  }
  open.add(dest)
  if (!exitHooked) {
    exitHooked = true
    process.on('exit', () => {
      for (const d of open) d.flushSync()
    })
  }
  return dest
}

/** SIGUSR1: reopen every log file of this process. */
export function reopenAll(): void {
  for (const d of open) d.reopen()
}
