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

/** Lines are written in blocks of this much (fewer, larger writes under load). */
const BLOCK = 32 * 1024

const open = new Set<LogDestination>()
let exitHooked = false

/**
 * A file opened for appending (every worker appends whole lines to the same
 * file), or stdout/stderr. `buffered`: written in blocks of 32 KiB or more (the
 * request log under load), and at least once a second, at exit and when the
 * server closes.
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
  const boom = pino.destination({ fd, sync: false, append: true, maxWrite: 4 * BLOCK })
  // SonicBoom reopens by path: tell it the file behind the descriptor.
  if (typeof target === 'string') (boom as unknown as { file: string }).file = target
  // Lines are gathered here and handed over a block at a time: SonicBoom measures
  // its pending text on every write, which is costly one short line at a time.
  const block = buffered && !isTTY
  let parts: string[] = []
  let size = 0
  const handOver = (): void => {
    if (size === 0) return
    boom.write(parts.length === 1 ? parts[0]! : parts.join(''))
    parts = []
    size = 0
  }
  // A quiet server's last lines are not held back for long.
  if (block) setInterval(handOver, 1000).unref()
  const dest: LogDestination = {
    write: (line) => {
      if (!block) {
        boom.write(line)
        return
      }
      parts.push(line)
      size += line.length
      if (size >= BLOCK) handOver()
    },
    reopen: () => {
      handOver()
      if (typeof target === 'string') boom.reopen(target)
    },
    flushSync: () => {
      handOver()
      try {
        boom.flushSync()
      } catch {
        // Still writing asynchronously, or the file is gone: nothing more to do.
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
