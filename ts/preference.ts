import { appKind } from './adapters/detect.js'

/**
 * Settings for one mounted app (the seed's `skitai.preference()`): they are set on
 * the app when it is mounted (for a module mount, when the module is loaded).
 */
export class Preference {
  debug = false
  useReloader = false
  /** Merged into the app's config: `app.locals.config` (Express), `app.context.config` (Koa), `app.config` (others). */
  config: Record<string, unknown> = {}
}

type Bag = Record<string, unknown>

function merged(prior: unknown, config: Bag): Bag {
  return { ...(typeof prior === 'object' && prior !== null ? (prior as Bag) : {}), ...config }
}

/** Set `pref`'s attributes where each kind of app keeps its settings. */
export function applyPreference(app: unknown, pref: Preference): void {
  const kind = appKind(app)
  const holder =
    kind === 'express' ? ((app as { locals: Bag }).locals ??= {}) : kind === 'koa' ? (app as { context: Bag }).context : (app as Bag)
  holder.config = merged(holder.config, pref.config)
  holder.debug = pref.debug
  holder.useReloader = pref.useReloader
}
