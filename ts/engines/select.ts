import type { RequestLogSettings } from '../logging/request-log.js'
import type { MountTable } from '../mounts.js'
import type { RunOptions, Server } from '../types.js'
import { listenNative } from './native/engine.js'
import { requestedEngine, resolveSettings, type EngineSettings } from './settings.js'

let warned = false

/** The pure-JS engine (and its static file code) loads only when it is used. */
async function listenJs(table: MountTable, settings: EngineSettings): Promise<Server> {
  const { listenJs: start } = await import('./js/engine.js')
  return start(table, settings)
}

/** Start the engine asked for; without a choice, native where its addon loads. */
export async function listen(table: MountTable, options: RunOptions, accessLog?: RequestLogSettings): Promise<Server> {
  const settings = resolveSettings(options, accessLog)
  const engine = requestedEngine(options)
  await table.load()
  if (engine === 'js') return listenJs(table, settings)
  if (engine === 'native') return listenNative(table, settings)
  try {
    return await listenNative(table, settings)
  } catch (error) {
    if (!/no native engine/.test((error as Error).message)) throw error
    if (!warned) {
      warned = true
      console.warn(`skitai: ${(error as Error).message}; using the pure-JS engine`)
    }
    return listenJs(table, settings)
  }
}
