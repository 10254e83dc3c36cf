import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The pid in the file, or undefined when there is none (or it is not a pid). */
export function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** Write atomically: a reader sees the old file or the whole new one. */
export function writePid(path: string, pid: number): void {
  mkdirSync(dirname(path), { recursive: true })
  const temporary = `${path}.${pid}.tmp`
  writeFileSync(temporary, `${pid}\n`)
  renameSync(temporary, path)
}

/** Remove the file if it still names `pid` (a newer instance may own it). */
export function removePid(path: string, pid: number): void {
  if (readPid(path) === pid) rmSync(path, { force: true })
}
