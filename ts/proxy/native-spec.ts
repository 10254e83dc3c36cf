import type { Mount } from '../mounts.js'
import type { Alias } from './alias.js'

/** An alias as the native engine takes it (crates/node/src/lib.rs, UpstreamSpec). */
export interface UpstreamSpec {
  name: string
  https: boolean
  members: string[]
  policy: string
  restMs: number
  connectTimeoutMs: number
  timeoutMs: number
  preserveHost: boolean
  ca?: string
}

/** The aliases, and each proxy mount's index into them. */
export function upstreamSpecs(aliases: Map<string, Alias>): { upstreams: UpstreamSpec[]; indexOf: (mount: Mount) => number | undefined } {
  const names = [...aliases.keys()]
  const upstreams = names.map((name): UpstreamSpec => {
    const a = aliases.get(name)!
    return {
      name: a.name,
      https: a.proto === 'https',
      members: a.members.map((m) => m.given),
      policy: a.policy,
      restMs: Math.round(a.rest * 1000),
      connectTimeoutMs: Math.round(a.connectTimeout * 1000),
      timeoutMs: Math.round(a.timeout * 1000),
      preserveHost: a.preserveHost,
      ...(a.ca === undefined ? {} : { ca: a.ca }),
    }
  })
  return { upstreams, indexOf: (mount) => (mount.proxy ? names.indexOf(mount.proxy.alias) : undefined) }
}
