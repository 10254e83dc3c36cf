import { mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { createRequire } from 'node:module'
import type { SonicBoom as SonicBoomClass } from 'sonic-boom'

/** A log file (or stdout/stderr) written asynchronously, whole lines at a time (SonicBoom, pino's destination). */
export interface Destination {
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

// CommonJS whose module.exports is the class (its types declare it a named export).
const SonicBoom = createRequire(import.meta.url)('sonic-boom') as typeof SonicBoomClass

const open = new Set<Destination>()
let exitHooked = false

/** A file opened for appending (every worker appends whole lines to the same file), or stdout/stderr. */
export function openTarget(target: string | 1 | 2): { fd: number; isTTY: boolean } {
  // Opened here, synchronously: a line written at once is never lost to a file still opening.
  if (typeof target === 'number') {
    return { fd: target, isTTY: Boolean(target === 1 ? process.stdout.isTTY : process.stderr.isTTY) }
  }
  mkdirSync(dirname(target), { recursive: true })
  return { fd: openSync(target, 'a'), isTTY: false }
}

function sonicBoom(target: string | 1 | 2, fd: number): SonicBoomClass {
  const boom = new SonicBoom({ fd, sync: false, append: true })
  // SonicBoom reopens by path: tell it the file behind the descriptor.
  if (typeof target === 'string') (boom as unknown as { file: string }).file = target
  return boom
}

/** Written out at exit, reopened on SIGUSR1, until `untrack`. */
export function track(dest: Destination): void {
  open.add(dest)
  if (!exitHooked) {
    exitHooked = true
    process.on('exit', () => {
      for (const d of open) d.flushSync()
    })
  }
}

export function untrack(dest: Destination): void {
  open.delete(dest)
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
  const boom = sonicBoom(target, fd)
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
      untrack(dest)
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
