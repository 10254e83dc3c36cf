import { realpathSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { chainApps } from './adapters/chain.js'
import { prepareApp, toHandler } from './adapters/detect.js'
import { loadModule, moduleSpec, type ModuleSpec } from './modules.js'
import { applyPreference, type Preference } from './preference.js'
import { defineAlias, proxyTarget, type Alias, type AliasOptions, type Proto, type ProxyTarget } from './proxy/alias.js'
import type { Mountable, NodeHandler } from './types.js'

/** One mount as given: an app (or a module that exports one), or static directories (canonical paths). */
export interface Mount {
  /** Normalised: leading slash, no trailing slash, '/' for the root. */
  prefix: string
  /** Ready to run; for a module mount, once load() has imported it. */
  app?: NodeHandler
  /** What was mounted (or the module's export), before adapting. */
  target?: unknown
  module?: ModuleSpec
  preference?: Preference
  roots?: string[]
  /** A reverse proxy mount (`@alias/path`). */
  proxy?: ProxyTarget
}

/** Everything mounted at one prefix: static sites first for GET/HEAD, then the apps in mount order. */
export interface Group {
  prefix: string
  sites: string[][]
  app?: NodeHandler
  /** The alias that serves what the sites do not (no app shares its prefix). */
  proxy?: { alias: Alias; path: string }
}

export function normalizePrefix(prefix: string): string {
  if (typeof prefix !== 'string') throw new TypeError(`mount point must be a string, got ${typeof prefix}`)
  let end = prefix.length
  while (end > 0 && prefix.charCodeAt(end - 1) === 47 /* / */) end--
  const trimmed = prefix.slice(0, end)
  if (trimmed === '') return '/'
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`
}

function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true
  if (!path.startsWith(prefix)) return false
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 47
}

/** Where a request-target lands below its mount: `url` for the app, `baseUrl` for Express. */
export function splitUrl(prefix: string, originalUrl: string): { url: string; baseUrl: string } {
  if (prefix === '/') return { url: originalUrl, baseUrl: '' }
  const rest = originalUrl.slice(prefix.length)
  return { url: rest === '' || rest.charCodeAt(0) !== 47 ? `/${rest}` : rest, baseUrl: prefix }
}

function directory(prefix: string, dir: string): string {
  if (typeof dir !== 'string') throw new TypeError(`cannot mount ${typeof dir} at '${prefix}' as a directory`)
  const absolute = resolve(dir)
  let isDir = false
  try {
    isDir = statSync(absolute).isDirectory()
  } catch {
    // reported below
  }
  if (!isDir) throw new Error(`cannot mount '${dir}' at '${prefix}': no such directory (${absolute})`)
  return realpathSync(absolute)
}

export class MountTable {
  /** In mount order; the native engine refers to an app by its index here. */
  readonly mounts: Mount[] = []
  /** Cache-Control max-age for static files, by path prefix. */
  readonly maxAges: Array<{ prefix: string; seconds: number }> = []
  /** Upstream aliases by name (`skitai.alias`). */
  readonly aliases = new Map<string, Alias>()

  /** The apps of each prefix, chained; built once everything is loaded. */
  private chains = new Map<string, NodeHandler>()

  add(prefix: string, target: Mountable | string | string[], preference?: Preference): void {
    const normalized = normalizePrefix(prefix)
    const proxy = typeof target === 'string' ? proxyTarget(target) : undefined
    const module = typeof target === 'string' && !proxy ? moduleSpec(target) : undefined
    const others = this.mounts.filter((m) => m.prefix === normalized && !m.roots)
    if (proxy ? others.length > 0 : others.some((m) => m.proxy)) {
      throw new Error(`cannot mount at '${prefix}': an alias mount serves that prefix alone (static directories aside)`)
    }
    if (proxy) {
      this.mounts.push({ prefix: normalized, proxy })
    } else if (module) {
      this.mounts.push({ prefix: normalized, module, preference })
    } else if (typeof target === 'string' || Array.isArray(target)) {
      const dirs = Array.isArray(target) ? target : [target]
      if (dirs.length === 0) throw new TypeError(`cannot mount an empty list of directories at '${prefix}'`)
      this.mounts.push({ prefix: normalized, roots: dirs.map((d) => directory(prefix, d)) })
    } else {
      if (preference) applyPreference(target, preference)
      this.mounts.push({ prefix: normalized, app: toHandler(target, prefix), target, preference })
    }
    this.chains.clear()
  }

  /** Import the module mounts (in the process that serves); errors are AppLoadErrors naming file and export. */
  async load(): Promise<void> {
    for (const mount of this.mounts) {
      if (mount.proxy && !this.aliases.has(mount.proxy.alias)) {
        throw new Error(`skitai: '${mount.prefix}' is mounted on '${mount.proxy.alias}', which no skitai.alias() defines`)
      }
      if (mount.module !== undefined && mount.app === undefined) {
        const target = await loadModule(mount.module, mount.prefix)
        if (mount.preference) applyPreference(target, mount.preference)
        mount.app = toHandler(target as Mountable, mount.prefix)
        mount.target = target
      }
      if (mount.target !== undefined) await prepareApp(mount.target, mount.prefix)
    }
    this.chains.clear()
  }

  /** Files of module mounts, for the reloader. */
  moduleFiles(): string[] {
    return this.mounts.flatMap((m) => (m.module ? [m.module.file] : []))
  }

  /** Some mounted app asked for the reloader (`preference().useReloader`). */
  wantsReloader(): boolean {
    return this.mounts.some((m) => m.preference?.useReloader === true)
  }

  /** The handler serving `prefix`: its apps tried in mount order. */
  appAt(prefix: string): NodeHandler | undefined {
    let chain = this.chains.get(prefix)
    if (chain === undefined) {
      const apps: NodeHandler[] = []
      for (const m of this.mounts) {
        if (m.prefix !== prefix || m.roots || m.proxy) continue
        if (m.app === undefined) throw new Error(`skitai: '${m.module?.given}' at '${prefix}' is not loaded yet`)
        apps.push(m.app)
      }
      if (apps.length === 0) return undefined
      chain = chainApps(apps)
      this.chains.set(prefix, chain)
    }
    return chain
  }

  alias(name: string, proto: Proto, members: string | string[], options?: AliasOptions): void {
    this.aliases.set(name, defineAlias(name, proto, members, options))
  }

  setMaxAge(prefix: string, seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 0) throw new RangeError(`setMaxAge('${prefix}'): seconds must be an integer >= 0`)
    this.maxAges.push({ prefix: normalizePrefix(prefix), seconds })
  }

  /** The group of the longest matching prefix. */
  route(path: string): Group | undefined {
    let best: string | undefined
    for (const m of this.mounts) {
      if (prefixMatches(m.prefix, path) && (best === undefined || m.prefix.length > best.length)) best = m.prefix
    }
    if (best === undefined) return undefined
    const group: Group = { prefix: best, sites: [], app: this.appAt(best) }
    for (const m of this.mounts) {
      if (m.prefix !== best) continue
      if (m.roots) group.sites.push(m.roots)
      const alias = m.proxy && this.aliases.get(m.proxy.alias)
      if (alias) group.proxy = { alias, path: m.proxy!.path }
    }
    return group
  }

  maxAge(path: string): number | undefined {
    let best: { prefix: string; seconds: number } | undefined
    for (const m of this.maxAges) {
      if (prefixMatches(m.prefix, path) && (best === undefined || m.prefix.length > best.prefix.length)) best = m
    }
    return best?.seconds
  }
}

/** The path part of a request-target. */
export function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
