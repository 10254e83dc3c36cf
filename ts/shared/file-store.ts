import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { SharedStore } from './store.js'
import { checkIncrement, encode } from './values.js'

const NAMES = 'names.json'
/** A lock older than this whose holder still lives is an error, not a wait. */
const LOCK_TIMEOUT_MS = 5000
const pause = new Int32Array(new SharedArrayBuffer(4))

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/**
 * `skitai.g` where the native addon is missing: a file per value in a directory
 * (in /dev/shm where there is one). A write goes to a temporary file renamed over
 * the value, so a reader, or a writer that dies, never leaves half a value;
 * writes and increments take a lock file holding the writer's pid, taken over
 * when that process is gone.
 */
export class FileStore implements SharedStore {
  readonly kind = 'files'
  readonly sync = true
  private readonly names: Set<string>

  private constructor(
    private readonly dir: string,
    names: readonly string[],
    private readonly maxSize: number,
  ) {
    this.names = new Set(names)
  }

  static create(dir: string, names: readonly string[], maxSize: number): FileStore {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    writeFileSync(join(dir, NAMES), JSON.stringify({ names, maxSize }))
    return new FileStore(dir, names, maxSize)
  }

  static open(dir: string): FileStore {
    const { names, maxSize } = JSON.parse(readFileSync(join(dir, NAMES), 'utf8')) as { names: string[]; maxSize: number }
    return new FileStore(dir, names, maxSize)
  }

  has(name: string): boolean {
    return this.names.has(name)
  }

  read(name: string): unknown {
    const text = this.text(name)
    return text === undefined ? undefined : JSON.parse(text)
  }

  write(name: string, value: unknown): void {
    const text = encode(name, value, this.maxSize)
    this.locked(name, () => this.replace(name, text))
  }

  incr(name: string, by: number): number {
    const increment = checkIncrement(name, by)
    return this.locked(name, () => {
      const current = this.read(name) ?? 0
      if (typeof current !== 'number') throw new TypeError(`g.incr('${name}'): the value is not a number`)
      const sum = current + increment
      this.replace(name, JSON.stringify(sum))
      return sum
    })
  }

  private path(name: string): string {
    return join(this.dir, `v-${encodeURIComponent(name)}`)
  }

  private text(name: string): string | undefined {
    try {
      return readFileSync(this.path(name), 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  }

  private replace(name: string, text: string | undefined): void {
    const path = this.path(name)
    if (text === undefined) {
      try {
        unlinkSync(path)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      }
      return
    }
    const temporary = `${path}.${process.pid}`
    writeFileSync(temporary, text)
    renameSync(temporary, path)
  }

  private locked<T>(name: string, work: () => T): T {
    const lock = `${this.path(name)}.lock`
    const started = Date.now()
    // The lock appears with its holder's pid already in it (a hard link of a
    // written file), so a holder killed at any point leaves a lock naming it.
    const claim = `${lock}.${process.pid}`
    writeFileSync(claim, String(process.pid))
    for (;;) {
      try {
        linkSync(claim, lock)
        unlinkSync(claim)
        break
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          unlinkSync(claim)
          throw error
        }
      }
      let holder = NaN
      try {
        holder = Number(readFileSync(lock, 'utf8'))
      } catch {
        continue // released meanwhile
      }
      // A dead holder's lock is taken over.
      if (holder > 0 && holder !== process.pid && !alive(holder)) {
        try {
          unlinkSync(lock)
        } catch {
          // someone else took it over first
        }
        continue
      }
      if (Date.now() - started > LOCK_TIMEOUT_MS) {
        unlinkSync(claim)
        throw new Error(`g.${name}: process ${holder} has held the value's lock for over ${LOCK_TIMEOUT_MS / 1000}s`)
      }
      Atomics.wait(pause, 0, 0, 0.05)
    }
    try {
      return work()
    } finally {
      unlinkSync(lock)
    }
  }
}
