import { closeSync, openSync, write, writeSync } from 'node:fs'
import { openTarget, track, untrack, type Destination } from './destination.js'
import { LineWriter } from './line-writer.js'

/** Where request lines go: they are formatted straight into the block that will be written. */
export interface ByteDestination extends Destination {
  /** The writer lines are formatted with: its buffer is the block being filled. */
  readonly lines: LineWriter
  /** Room in `lines` for `n` more bytes; a block that has lines is handed over to be written first, when it can be. */
  reserve(n: number): void
  /** The lines formatted since the last call are whole: they are written when due. */
  written(): void
}

/** Lines are written once a block holds this much (fewer, larger writes under load). */
const BLOCK = 512 * 1024

/**
 * The request log's destination: lines formatted straight into a block (no
 * copy between the formatting and the write), written asynchronously
 * (fs.write) when it holds about BLOCK bytes, at least once a second,
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
  /** Its buffer is the block being filled, `used` its bytes so far. */
  const lines = new LineWriter(BLOCK)
  let spare: Buffer = Buffer.allocUnsafe(BLOCK)
  let writing = false
  let reopenWanted = false
  let ended = false
  let failed = false
  /** Set by close(): called once everything is written. */
  let whenWritten: (() => void) | undefined

  const writeOut = (): void => {
    if (writing || lines.used === 0) return
    const block = lines.buffer
    const length = lines.used
    lines.use(spare)
    spare = block
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
    if (lines.used > 0 && (lines.used >= BLOCK || ended || isTTY)) return writeOut()
    if (lines.used === 0) whenWritten?.()
  }

  // A quiet server's last lines are not held back for long.
  const timer = isTTY ? undefined : setInterval(writeOut, 1000).unref()

  const dest: ByteDestination = {
    lines,
    reserve: (n) => {
      if (lines.used + n + 3 > lines.buffer.length && !ended) writeOut()
      // Still no room (the other block is being written, or a line is that long): the block grows.
      lines.reserve(n)
    },
    written: () => {
      // After close, lines are never written to the closed descriptor.
      if ((lines.used >= BLOCK || isTTY) && !ended) writeOut()
    },
    reopen: () => {
      // The lines gathered so far go to the file they were written for, then the new one opens.
      reopenWanted = true
      if (!writing) {
        if (lines.used > 0) writeOut()
        else settle()
      }
    },
    flushSync: () => {
      // At exit: what is gathered, synchronously (a write in flight finishes on its own thread).
      if (ended || lines.used === 0) return
      try {
        writeSync(fd, lines.buffer, 0, lines.used)
      } catch {
        // The file is gone or full: nothing more to do at exit.
      }
      lines.used = 0
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
