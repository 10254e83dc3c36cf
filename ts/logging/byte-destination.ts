import { closeSync, openSync, write, writeSync } from 'node:fs'
import { openTarget, track, untrack, type Destination } from './destination.js'

/** Where request lines, formatted as bytes, go. */
export interface ByteDestination extends Destination {
  /** Whole lines: bytes[0, length), copied before this returns. */
  writeBytes(bytes: Uint8Array, length: number): void
}

/** Lines are written once a block holds this much (fewer, larger writes under load). */
const BLOCK = 512 * 1024

/**
 * The request log's destination: lines gathered into a block, written
 * asynchronously (fs.write) when it holds BLOCK bytes, at least once a second,
 * and when the server closes; on a terminal, each batch of lines at once. Two
 * blocks take turns, one filling while the other is written, so none is
 * allocated per write. While a write is slow, the filling block grows rather
 * than drop lines. The bytes are the request's own (both engines read headers
 * and URLs as latin1, like node:http), so a UTF-8 user agent stays UTF-8.
 */
export function byteDestination(target: string | 1 | 2): ByteDestination {
  const opened = openTarget(target)
  const isTTY = opened.isTTY
  let fd = opened.fd
  let filling = Buffer.allocUnsafe(BLOCK)
  let spare = Buffer.allocUnsafe(BLOCK)
  let used = 0
  let writing = false
  let reopenWanted = false
  let ended = false
  let failed = false
  /** Set by close(): called once everything is written. */
  let whenWritten: (() => void) | undefined

  const writeOut = (): void => {
    if (writing || used === 0) return
    const block = filling
    const length = used
    filling = spare
    spare = block
    used = 0
    writing = true
    writeFrom(block, 0, length)
  }

  const writeFrom = (block: Buffer, from: number, to: number): void => {
    write(fd, block, from, to - from, null, (error, written) => {
      if (error) {
        // A full pipe: try again shortly. Anything else: the block's lines are lost, said once.
        if (error.code === 'EAGAIN') return void setTimeout(() => writeFrom(block, from, to), 10)
        if (!failed) process.emitWarning(`skitai: request log ${String(target)}: ${error.message}`)
        failed = true
      } else if (from + written < to) {
        return writeFrom(block, from + written, to)
      }
      writing = false
      settle()
    })
  }

  /** Nothing is being written: reopen if asked, write what is due, or tell close() callers it is done. */
  const settle = (): void => {
    if (reopenWanted) {
      reopenWanted = false
      fd = reopened(fd, target)
    }
    if (used > 0 && (used >= BLOCK || ended || isTTY)) return writeOut()
    if (used === 0) whenWritten?.()
  }

  // A quiet server's last lines are not held back for long.
  const timer = isTTY ? undefined : setInterval(writeOut, 1000).unref()

  const dest: ByteDestination = {
    writeBytes: (bytes, length) => {
      if (ended || length === 0) return
      if (used + length > filling.length) {
        const bigger = Buffer.allocUnsafe(Math.max(2 * filling.length, used + length))
        filling.copy(bigger, 0, 0, used)
        filling = bigger
      }
      filling.set(length === bytes.length ? bytes : bytes.subarray(0, length), used)
      used += length
      if (used >= BLOCK || isTTY) writeOut()
    },
    reopen: () => {
      // The lines gathered so far go to the file they were written for, then the new one opens.
      reopenWanted = true
      if (!writing) {
        if (used > 0) writeOut()
        else settle()
      }
    },
    flushSync: () => {
      // At exit: what is gathered, synchronously (a write in flight finishes on its own thread).
      if (ended || used === 0) return
      try {
        writeSync(fd, filling, 0, used)
      } catch {
        // The file is gone or full: nothing more to do at exit.
      }
      used = 0
    },
    close: () => {
      if (ended) return Promise.resolve()
      ended = true
      clearInterval(timer)
      untrack(dest)
      return new Promise<void>((done) => {
        whenWritten = () => {
          whenWritten = undefined
          if (typeof target === 'string') closeSync(fd)
          done()
        }
        if (!writing) settle()
      })
    },
    isTTY,
  }
  track(dest)
  return dest
}

/** The log file opened again by its path (logrotate moved the old one); stdout and stderr stay. */
function reopened(fd: number, target: string | 1 | 2): number {
  if (typeof target !== 'string') return fd
  try {
    const again = openSync(target, 'a')
    closeSync(fd)
    return again
  } catch (error) {
    process.emitWarning(`skitai: could not reopen ${target}: ${(error as Error).message}`)
    return fd
  }
}
