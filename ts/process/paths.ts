import { homedir } from 'node:os'
import { join } from 'node:path'

/** `~/.skitai/<name>/`: the daemon's pid file and console output live here. */
export function serviceDir(name: string): string {
  return join(process.env.HOME || homedir(), '.skitai', name)
}

export function pidFilePath(name: string): string {
  return join(serviceDir(name), 'skitai.pid')
}

/** Where a daemon's stdout/stderr go: `/var/log/skitai/<name>/` as root, else `~/.skitai/<name>/log/`. */
export function logDir(name: string): string {
  return process.getuid?.() === 0 ? join('/var/log/skitai', name) : join(serviceDir(name), 'log')
}
