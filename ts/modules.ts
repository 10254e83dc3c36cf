import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

/** `./apps/admin.js:app`: a module file and the export to mount (its default export when none). */
export interface ModuleSpec {
  /** As given to mount(), for messages. */
  given: string
  file: string
  exportName: string | undefined
}

const WITH_EXPORT = /^(.+):([A-Za-z_$][\w$]*)$/
const SCRIPT = /\.(?:[cm]?js|[cm]?ts|jsx|tsx)$/

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/**
 * A mount target string that names a module rather than a directory: one with an
 * `:export` suffix, a script extension, or that is a file. Relative paths are from
 * the working directory, as directory mounts are.
 */
export function moduleSpec(target: string): ModuleSpec | undefined {
  const named = WITH_EXPORT.exec(target)
  if (named) return { given: target, file: resolve(named[1]!), exportName: named[2] }
  if (SCRIPT.test(target) || isFile(resolve(target))) return { given: target, file: resolve(target), exportName: undefined }
  return undefined
}

/** An app failed to load: the worker exits with code 2, which stops the service. */
export class AppLoadError extends Error {
  override readonly name = 'AppLoadError'
  readonly exitCode = 2
}

/** Import the module and pick the export; errors name the file and the export. */
export async function loadModule(spec: ModuleSpec, prefix: string): Promise<unknown> {
  const what = `cannot mount '${spec.given}' at '${prefix}'`
  if (!isFile(spec.file)) throw new AppLoadError(`${what}: no such file ${spec.file}`)
  let namespace: Record<string, unknown>
  try {
    namespace = (await import(pathToFileURL(spec.file).href)) as Record<string, unknown>
  } catch (error) {
    throw new AppLoadError(`${what}: loading ${spec.file} failed: ${(error as Error)?.stack ?? String(error)}`, { cause: error })
  }
  const name = spec.exportName ?? 'default'
  const value = namespace[name]
  if (value === undefined) {
    const names = Object.keys(namespace).join(', ') || 'none'
    throw new AppLoadError(`${what}: ${spec.file} has no export '${name}' (its exports: ${names})`)
  }
  return value
}
