import { mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { createRequire } from 'node:module'
import type { SonicBoom as SonicBoomClass } from 'sonic-boom'

/** What log writers write to: whole lines, asynchronously (SonicBoom, pino's destination). */
export interface LogDestination {
  write(line: string): void
  /** After logrotate moved the file: open it again (SIGUSR1). */
  reopen(): void
  flushSync(): void
  /** The server closed: write out what is buffered, wait until it is written, release the file. */
  close(): Promise<void>
  readonly isTTY: boolean
}

// CommonJS whose module.exports is the class (its types declare it a named export).
const SonicBoom = createRequire(import.meta.url)('sonic-boom') as typeof SonicBoomClass

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
  // Request lines are gathered into blocks here, each line encoded at once (so it
  // dies young, and SonicBoom never measures a growing string). Their characters
  // are the request's bytes (both engines read headers and URLs as latin1, like
  // node:http), so they are written back as latin1: a UTF-8 user agent stays UTF-8.
  const block = buffered && !isTTY
  const boom = new SonicBoom({ fd, sync: false, append: true, contentMode: block ? 'buffer' : 'utf8' })
  // SonicBoom reopens by path: tell it the file behind the descriptor.
  if (typeof target === 'string') (boom as unknown as { file: string }).file = target
  // SonicBoom's types know only its utf8 mode.
  const writeBytes = (bytes: Buffer): void => void (boom as unknown as { write(bytes: Buffer): boolean }).write(bytes)
  let buffer = block ? Buffer.allocUnsafe(2 * BLOCK) : Buffer.alloc(0)
  let used = 0
  let ended = false
  const handOver = (): void => {
    if (used === 0) return
    writeBytes(buffer.subarray(0, used))
    buffer = Buffer.allocUnsafe(2 * BLOCK)
    used = 0
  }
  // A quiet server's last lines are not held back for long.
  const timer = block ? setInterval(handOver, 1000).unref() : undefined
  const dest: LogDestination = {
    write: (line) => {
      if (ended) return
      if (!block) {
        boom.write(line)
        return
      }
      if (used + line.length > buffer.length) {
        handOver()
        if (line.length > buffer.length) {
          writeBytes(Buffer.from(line, 'latin1'))
          return
        }
      }
      used += buffer.write(line, used, 'latin1')
      if (used >= BLOCK) handOver()
    },
    reopen: () => {
      handOver()
      if (typeof target === 'string') boom.reopen(target)
    },
    flushSync: () => {
      if (ended) return
      handOver()
      try {
        boom.flushSync()
      } catch {
        // Still writing asynchronously, or the file is gone: nothing more to do.
      }
    },
    close: () =>
      new Promise<void>((done) => {
        if (ended) return done()
        handOver()
        ended = true
        clearInterval(timer)
        open.delete(dest)
        // SonicBoom ends after its writes in flight; it leaves stdout and stderr open.
        boom.once('close', done)
        boom.once('error', () => done())
        boom.end()
      }),
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
