import { mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { createRequire } from 'node:module'
import type { SonicBoom as SonicBoomClass } from 'sonic-boom'

/** A log file (or stdout/stderr) written asynchronously, whole lines at a time (SonicBoom, pino's destination). */
interface Destination {
  /** After logrotate moved the file: open it again (SIGUSR1). */
  reopen(): void
  flushSync(): void
  /** The server closed: write out what is buffered, wait until it is written, release the file. */
  close(): Promise<void>
  readonly isTTY: boolean
}

/** Where the server log's lines of text go. */
export interface LogDestination extends Destination {
  write(line: string): void
}

/** Where request lines, formatted as bytes, go. */
export interface ByteDestination extends Destination {
  /** Whole lines: bytes[0, length), copied before this returns. */
  writeBytes(bytes: Uint8Array, length: number): void
}

// CommonJS whose module.exports is the class (its types declare it a named export).
const SonicBoom = createRequire(import.meta.url)('sonic-boom') as typeof SonicBoomClass

/** Lines are written in blocks of this much (fewer, larger writes under load). */
const BLOCK = 32 * 1024

const open = new Set<Destination>()
let exitHooked = false

/** A file opened for appending (every worker appends whole lines to the same file), or stdout/stderr. */
function openTarget(target: string | 1 | 2): { fd: number; isTTY: boolean } {
  // Opened here, synchronously: a line written at once is never lost to a file still opening.
  if (typeof target === 'number') {
    return { fd: target, isTTY: Boolean(target === 1 ? process.stdout.isTTY : process.stderr.isTTY) }
  }
  mkdirSync(dirname(target), { recursive: true })
  return { fd: openSync(target, 'a'), isTTY: false }
}

function sonicBoom(target: string | 1 | 2, fd: number, contentMode: 'utf8' | 'buffer'): SonicBoomClass {
  const boom = new SonicBoom({ fd, sync: false, append: true, contentMode })
  // SonicBoom reopens by path: tell it the file behind the descriptor.
  if (typeof target === 'string') (boom as unknown as { file: string }).file = target
  return boom
}

function track(dest: Destination): void {
  open.add(dest)
  if (!exitHooked) {
    exitHooked = true
    process.on('exit', () => {
      for (const d of open) d.flushSync()
    })
  }
}

/** SonicBoom ends after its writes in flight; it leaves stdout and stderr open. */
function closed(boom: SonicBoomClass): Promise<void> {
  return new Promise<void>((done) => {
    boom.once('close', done)
    boom.once('error', () => done())
    boom.end()
  })
}

/** Lines of text as they come: the server log's (pino's). */
export function destination(target: string | 1 | 2): LogDestination {
  const { fd, isTTY } = openTarget(target)
  const boom = sonicBoom(target, fd, 'utf8')
  let ended = false
  const dest: LogDestination = {
    write: (line) => {
      if (!ended) boom.write(line)
    },
    reopen: () => {
      if (typeof target === 'string') boom.reopen(target)
    },
    flushSync: () => {
      if (ended) return
      try {
        boom.flushSync()
      } catch {
        // Still writing asynchronously, or the file is gone: nothing more to do.
      }
    },
    close: () => {
      if (ended) return Promise.resolve()
      ended = true
      open.delete(dest)
      return closed(boom)
    },
    isTTY,
  }
  track(dest)
  return dest
}

/**
 * The request log's destination: bytes gathered into blocks of 32 KiB or more
 * (fewer, larger writes under load), written at least once a second, at exit
 * and when the server closes. On a terminal, each batch of lines at once. The
 * bytes are the request's own (both engines read headers and URLs as latin1,
 * like node:http), so a UTF-8 user agent stays UTF-8.
 */
export function byteDestination(target: string | 1 | 2): ByteDestination {
  const { fd, isTTY } = openTarget(target)
  const boom = sonicBoom(target, fd, 'buffer')
  // SonicBoom keeps what it is given until written: each block is handed over and replaced.
  const writeOut = (bytes: Buffer): void => void (boom as unknown as { write(bytes: Buffer): boolean }).write(bytes)
  let block = isTTY ? Buffer.alloc(0) : Buffer.allocUnsafe(2 * BLOCK)
  let used = 0
  let ended = false
  const handOver = (): void => {
    if (used === 0) return
    writeOut(block.subarray(0, used))
    block = Buffer.allocUnsafe(2 * BLOCK)
    used = 0
  }
  // A quiet server's last lines are not held back for long.
  const timer = isTTY ? undefined : setInterval(handOver, 1000).unref()
  const writeBytes = (bytes: Uint8Array, length: number): void => {
    if (ended || length === 0) return
    if (used + length > block.length) {
      handOver()
      if (length > block.length) return writeOut(Buffer.from(bytes.subarray(0, length)))
    }
    block.set(bytes.subarray(0, length), used)
    used += length
    if (used >= BLOCK) handOver()
  }
  const dest: ByteDestination = {
    writeBytes,
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
    close: () => {
      if (ended) return Promise.resolve()
      handOver()
      ended = true
      clearInterval(timer)
      open.delete(dest)
      return closed(boom)
    },
    isTTY,
  }
  track(dest)
  return dest
}

/** SIGUSR1: reopen every log file of this process. */
export function reopenAll(): void {
  for (const d of open) d.reopen()
}
