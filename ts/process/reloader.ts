import { readdirSync, watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'

const SOURCE = /\.(?:[cm]?[jt]sx?|json)$/
const SKIP = new Set(['node_modules', 'dist', 'coverage'])

function directories(root: string, into: string[], depth = 0): void {
  into.push(root)
  if (depth > 8) return
  let entries
  try {
    entries = readdirSync(root, { withFileTypes: true })
  } catch {
    return
  }
  for (const entry of entries) {
    if (entry.isDirectory() && !entry.name.startsWith('.') && !SKIP.has(entry.name)) directories(join(root, entry.name), into, depth + 1)
  }
}

/**
 * The reloader (`--devel`, `useReloader`): watch the app's source files (the
 * script's and the mounted modules' directories, not node_modules) and call
 * `onChange` once per burst of changes.
 */
export function watchSources(roots: readonly string[], onChange: (file: string) => void): () => void {
  const dirs: string[] = []
  for (const root of new Set(roots)) directories(root, dirs)
  let timer: NodeJS.Timeout | undefined
  const watchers: FSWatcher[] = []
  for (const dir of new Set(dirs)) {
    try {
      const watcher = watch(dir, (_event, file) => {
        if (file === null || !SOURCE.test(String(file))) return
        clearTimeout(timer)
        timer = setTimeout(() => onChange(join(dir, String(file))), 150)
      })
      watcher.unref()
      watchers.push(watcher)
    } catch {
      // A directory that vanished meanwhile: nothing to watch.
    }
  }
  return () => {
    clearTimeout(timer)
    for (const w of watchers) w.close()
  }
}
