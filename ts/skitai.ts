import { listen } from './engines/select.js'
import { MountTable } from './mounts.js'
import type { Mountable, RunOptions, Server } from './types.js'
import { VERSION } from './version.js'

/**
 * One application server: a mount table and the options to run it with.
 * The package's default export is an instance; `new Skitai()` makes another.
 */
export class Skitai {
  readonly version = VERSION
  private readonly table = new MountTable()

  /** Serve `target` at `prefix`: a (req, res) function or an object with fetch(). */
  mount(prefix: string, target: Mountable): this {
    this.table.add(prefix, target)
    return this
  }

  /** Start serving; resolves once the socket listens. */
  run(options: RunOptions = {}): Promise<Server> {
    return listen(this.table, options)
  }
}
