import { existsSync } from 'node:fs'
import { resolve } from 'node:path'

/** Upstream protocols for `skitai.alias`. */
export const PROTO_HTTP = 'http'
export const PROTO_HTTPS = 'https'
export type Proto = typeof PROTO_HTTP | typeof PROTO_HTTPS

/** How an alias picks a member per request. */
export type BalancePolicy = 'round-robin' | 'least-conn'

export interface AliasOptions {
  /** 'round-robin' (default) or 'least-conn' (the member answering the fewest requests now). */
  policy?: BalancePolicy
  /** Seconds a member that failed to connect or timed out is left out; default 60. */
  rest?: number
  /** Seconds to connect to a member; default 5. */
  connectTimeout?: number
  /** Seconds to wait for a member's response, and between reads of it; default 60. */
  timeout?: number
  /** Send the client's Host header instead of the member's; default false. */
  preserveHost?: boolean
  /** HTTPS: a PEM file of CA certificates to trust instead of the public roots. */
  ca?: string
}

export interface Member {
  host: string
  port: number
  /** `host[:port]` as given, for the native engine. */
  given: string
  /** The Host header the member is sent (its port only when not the default). */
  hostHeader: string
}

/** An alias with every default filled in. */
export interface Alias {
  name: string
  proto: Proto
  members: Member[]
  policy: BalancePolicy
  rest: number
  connectTimeout: number
  timeout: number
  preserveHost: boolean
  ca?: string
}

/** Where a proxy mount sends requests: `@users/api` is the alias `@users`, path `/api`. */
export interface ProxyTarget {
  alias: string
  /** No trailing slash; '' for none. */
  path: string
}

const NAME = /^@[A-Za-z0-9_.-]+$/

function seconds(name: string, what: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`alias('${name}'): ${what} must be a number of seconds > 0, got ${String(value)}`)
  }
  return value
}

function member(name: string, proto: Proto, given: string): Member {
  if (typeof given !== 'string') throw new TypeError(`alias('${name}'): members are 'host[:port]' strings, got ${typeof given}`)
  let url: URL
  try {
    url = new URL(`${proto}://${given}`)
  } catch {
    throw new TypeError(`alias('${name}'): '${given}' is not host[:port]`)
  }
  if (url.username || url.password || url.pathname !== '/' || url.search || url.hash || given.includes('/')) {
    throw new TypeError(`alias('${name}'): '${given}' is not host[:port]`)
  }
  const port = url.port === '' ? (proto === PROTO_HTTPS ? 443 : 80) : Number(url.port)
  // URL keeps IPv6 brackets in hostname; node:net wants them off.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  return { host, port, given, hostHeader: url.host }
}

export function defineAlias(name: string, proto: Proto, members: string | string[], options: AliasOptions = {}): Alias {
  if (typeof name !== 'string' || !NAME.test(name)) throw new TypeError(`alias: the name must look like '@name', got '${String(name)}'`)
  if (proto !== PROTO_HTTP && proto !== PROTO_HTTPS) throw new TypeError(`alias('${name}'): proto must be skitai.PROTO_HTTP or skitai.PROTO_HTTPS, got '${String(proto)}'`)
  const list = typeof members === 'string' ? [members] : members
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`alias('${name}'): give at least one member`)
  const policy = options.policy ?? 'round-robin'
  if (policy !== 'round-robin' && policy !== 'least-conn') throw new RangeError(`alias('${name}'): policy must be 'round-robin' or 'least-conn', got '${String(policy)}'`)
  let ca: string | undefined
  if (options.ca !== undefined) {
    if (proto !== PROTO_HTTPS) throw new TypeError(`alias('${name}'): ca is for HTTPS upstreams`)
    ca = resolve(options.ca)
    if (!existsSync(ca)) throw new Error(`alias('${name}'): no CA file ${ca}`)
  }
  return {
    name,
    proto,
    members: list.map((m) => member(name, proto, m)),
    policy,
    rest: seconds(name, 'rest', options.rest, 60),
    connectTimeout: seconds(name, 'connectTimeout', options.connectTimeout, 5),
    timeout: seconds(name, 'timeout', options.timeout, 60),
    preserveHost: options.preserveHost === true,
    ca,
  }
}

/** A mount target naming an alias (`@name` or `@name/path`), else undefined. */
export function proxyTarget(target: string): ProxyTarget | undefined {
  if (!target.startsWith('@')) return undefined
  const slash = target.indexOf('/')
  const alias = slash === -1 ? target : target.slice(0, slash)
  if (!NAME.test(alias)) return undefined
  let path = slash === -1 ? '' : target.slice(slash)
  while (path.endsWith('/')) path = path.slice(0, -1)
  return { alias, path }
}
