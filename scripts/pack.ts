// Pack the main package and this machine's platform package (napi-rs layout:
// npm/<triple>/ named skitai-<triple>, listed in the main package's
// optionalDependencies) into a directory, and report what they hold.
//
//   npm run pack:all [-- <out-dir>]      (default: ./packages)
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { platformTriple } from '../ts/engines/native/addon.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

export interface Packed {
  /** Path of the tarball. */
  tarball: string
  files: string[]
  size: number
  unpackedSize: number
}

function pack(dir: string, out: string): Packed {
  // Scripts are skipped: `prepare` would rebuild what `npm run build` already built.
  const json = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  const [info] = JSON.parse(json) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>
  return { tarball: join(out, info!.filename), files: info!.files.map((f) => f.path), size: info!.size, unpackedSize: info!.unpackedSize }
}

export function packAll(out: string): { main: Packed; platform: Packed } {
  mkdirSync(out, { recursive: true })
  const triple = platformTriple()
  const binary = join(root, 'native', `skitai.${triple}.node`)
  if (!existsSync(binary) || !existsSync(join(root, 'dist', 'index.js'))) {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
  }
  const platformDir = join(root, 'npm', triple)
  if (!existsSync(join(platformDir, 'package.json'))) {
    throw new Error(`no platform package for ${triple} under npm/ (add its target to package.json "napi.targets")`)
  }
  copyFileSync(binary, join(platformDir, `skitai.${triple}.node`))
  return { main: pack(root, out), platform: pack(platformDir, out) }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? join(root, 'packages'))
  const { main, platform } = packAll(out)
  for (const p of [main, platform]) {
    console.log(`${p.tarball}: ${(p.size / 1024).toFixed(1)} KiB packed, ${(p.unpackedSize / 1024).toFixed(1)} KiB unpacked`)
    for (const f of p.files) console.log(`  ${f}`)
  }
}
