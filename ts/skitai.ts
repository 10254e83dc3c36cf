import { listen } from './engines/select.js'
import { MountTable } from './mounts.js'
import { Preference } from './preference.js'
import type { Mountable, RunOptions, Server } from './types.js'
import { SERVER_NAME, VERSION } from './version.js'

/**
 * One application server: a mount table and the options to run it with.
 * The package's default export is an instance; `new Skitai()` makes another.
 */
export class Skitai {
  readonly version = VERSION
  private readonly table = new MountTable()

  /**
   * Serve `target` at `prefix`: a (req, res) function, an Express or Koa app, an
   * object with fetch(), a module `path[:export]` (imported where it is served), or
   * a directory (or a list of them, searched in order) of static files. Apps
   * mounted at the same prefix are tried in mount order. `preference` settings
   * are set on the app.
   */
  mount(prefix: string, target: Mountable | string | string[], preference?: Preference): this {
    this.table.add(prefix, target, preference)
    return this
  }

  /**
   * Settings for an app, given to mount(): `debug`, `useReloader` and `config`.
   * With a callback, it runs with the new preference (the seed's scope form).
   */
  preference(scope?: (pref: Preference) => void): Preference {
    const pref = new Preference()
    scope?.(pref)
    return pref
  }

  /** `Cache-Control: max-age=<seconds>` on static files under `prefix`. */
  setMaxAge(prefix: string, seconds: number): this {
    this.table.setMaxAge(prefix, seconds)
    return this
  }

  /** Start serving; resolves once the socket listens. */
  async run(options: RunOptions = {}): Promise<Server> {
    const server = await listen(this.table, options)
    if (options.log !== false) {
      const { address, port } = server.address()
      const host = address.includes(':') ? `[${address}]` : address
      console.log(`skitai: ${SERVER_NAME} serving http://${host}:${port} with the ${server.engine} engine`)
    }
    return server
  }
}
