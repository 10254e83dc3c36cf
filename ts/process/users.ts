import { execFileSync } from 'node:child_process'

export interface Identity {
  uid: number
  gid: number
}

function lookup(database: 'passwd' | 'group', key: string): string[] | undefined {
  try {
    return execFileSync('getent', [database, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split(':')
  } catch {
    return undefined
  }
}

/**
 * The uid/gid workers run as for `--user`/`--group` (through NSS, as `getent`
 * sees them); undefined when neither was given. An unknown name is an error
 * before anything starts.
 */
export function resolveIdentity(user: string | undefined, group: string | undefined): Identity | undefined {
  if (user === undefined && group === undefined) return undefined
  let uid = process.getuid?.() ?? 0
  let gid = process.getgid?.() ?? 0
  if (user !== undefined) {
    const entry = lookup('passwd', user)
    if (entry === undefined) throw new Error(`--user: no such user '${user}'`)
    uid = Number(entry[2])
    gid = Number(entry[3])
  }
  if (group !== undefined) {
    const entry = lookup('group', group)
    if (entry === undefined) throw new Error(`--group: no such group '${group}'`)
    gid = Number(entry[2])
  }
  return { uid, gid }
}
