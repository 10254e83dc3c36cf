// Two versions of the TypeScript, loaded at the same time: an earlier commit's
// (BASE) and the working tree's, on the same native addon, both on CPU 0 with a
// wrk each on CPU 1, compared by CPU time per request (all the server's threads,
// /proc). Loading both at once cancels this machine's drift between runs, which
// is larger than the sub-µs changes this is for; CONTROL=1 runs the working tree
// against itself, to show what a difference of nothing looks like.
//
//   BASE=HEAD~3 ACCESS_LOG=json npm run bench:paired
//
// BASE_NATIVE=<dir> gives the base side an addon of its own (a copy of an
// earlier build's native/ directory), to compare changes to the Rust as well.
// URL_PATH=/async loads the handler that answers after an await.
// WWW=<dir> mounts that directory at /plaintext too (the handler behind a
// directory) and at /www (URL_PATH=/www/<file>: static files).
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildPackage, cpuSeconds, here, median, need, start, stopAll, warmPageCache, warmUpLine, writeReport, wrkAlongside, type Peer } from './lib.js'

const BASE = process.env.BASE ?? 'HEAD'
const CONTROL = process.env.CONTROL === '1'
const ROUNDS = Number(process.env.ROUNDS ?? 6)
const DURATION = Number(process.env.DURATION ?? 4)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50)
const ACCESS_LOG = process.env.ACCESS_LOG ?? ''
const BASE_NATIVE = process.env.BASE_NATIVE
/** The route loaded: /plaintext (answered in the batch) or /async (after an await). */
const URL_PATH = process.env.URL_PATH ?? '/plaintext'
const WWW = process.env.WWW
/** The path is the directory's own mount, /www. */
const STATIC = WWW !== undefined && (URL_PATH === '/www' || URL_PATH.startsWith('/www/'))

const root = join(here, '..')

/** BASE's TypeScript compiled into a package of its own under bench/tmp that shares this one's addon and modules. */
function baseBuild(): string {
  const dir = join(here, 'tmp', 'paired-base')
  const tree = join(here, 'tmp', 'paired-tree')
  rmSync(dir, { recursive: true, force: true })
  rmSync(tree, { recursive: true, force: true })
  // A run cut short leaves its worktree registered: forget it first.
  execFileSync('git', ['worktree', 'prune'], { cwd: root, stdio: 'ignore' })
  execFileSync('git', ['worktree', 'add', '--detach', tree, BASE], { cwd: root, stdio: 'ignore' })
  try {
    symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'))
    execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--outDir', join(dir, 'dist')], { cwd: tree, stdio: 'inherit' })
  } finally {
    execFileSync('git', ['worktree', 'remove', '--force', tree], { cwd: root, stdio: 'ignore' })
  }
  symlinkSync(BASE_NATIVE ?? join(root, 'native'), join(dir, 'native'))
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  cpSync(join(root, 'package.json'), join(dir, 'package.json'))
  mkdirSync(join(dir, 'bench', 'servers'), { recursive: true })
  cpSync(join(here, 'servers', 'skitai.mjs'), join(dir, 'bench', 'servers', 'skitai.mjs'))
  return join(dir, 'bench', 'servers', 'skitai.mjs')
}

async function main(): Promise<void> {
  need('wrk', 'apt-get install -y wrk')
  need('taskset', 'apt-get install -y util-linux')
  buildPackage()
  const baseScript = CONTROL ? join(here, 'servers', 'skitai.mjs') : baseBuild()
  // Both write logs: their pages come from memory already used (see warmPageCache).
  const warm = ACCESS_LOG === '' ? undefined : warmPageCache(Number(process.env.WARM_MIB ?? 2048))
  const logDirs: string[] = []
  const env = (): Record<string, string> => {
    const www: Record<string, string> = WWW ? { WWW } : {}
    if (ACCESS_LOG === '') return { ENGINE: 'native', ...www }
    const dir = mkdtempSync(join(tmpdir(), 'bench-paired-'))
    logDirs.push(dir)
    return { ENGINE: 'native', ACCESS_LOG, LOG_DIR: dir, ...www }
  }
  const baseName = CONTROL ? 'working tree (control)' : `base ${BASE}`
  const peers: Peer[] = [
    { name: baseName, command: [process.execPath, baseScript], env: env(), port: 18501 },
    { name: 'working tree', script: 'skitai.mjs', env: env(), port: 18502 },
  ]
  const runs: Array<{ round: number; base: number; tree: number }> = []
  try {
    for (const peer of peers) await start(peer)
    const load = async (peer: Peer): Promise<number> => {
      const pid = peer.process!.pid!
      const before = cpuSeconds(pid)
      const { requests } = await wrkAlongside(`http://127.0.0.1:${peer.port}${URL_PATH}`, CONNECTIONS, DURATION)
      return ((cpuSeconds(pid) - before) * 1e6) / requests
    }
    await Promise.all(peers.map((peer) => wrkAlongside(`http://127.0.0.1:${peer.port}${URL_PATH}`, CONNECTIONS, 2)))
    for (let round = 0; round < ROUNDS; round++) {
      const [base, tree] = await Promise.all(peers.map(load))
      runs.push({ round, base: base!, tree: tree! })
      console.log(`round ${round + 1}: ${base!.toFixed(2)} / ${tree!.toFixed(2)} µs per request, ${(tree! - base!).toFixed(2)}`)
    }
  } finally {
    stopAll(peers)
    for (const dir of logDirs) rmSync(dir, { recursive: true, force: true })
  }
  const differences = runs.map((r) => r.tree - r.base)
  const row = `| ${median(runs.map((r) => r.base)).toFixed(2)} | ${median(runs.map((r) => r.tree)).toFixed(2)} | ${median(differences).toFixed(2)} | ${Math.min(...differences).toFixed(2)} to ${Math.max(...differences).toFixed(2)} |`
  const table = [`| ${baseName}, CPU µs/request | working tree, CPU µs/request | difference (median) | difference (range) |`, '|---:|---:|---:|---|', row].join('\n')
  console.log(`\n${table}\n`)
  writeReport(
    `paired-${CONTROL ? 'control' : 'base'}${ACCESS_LOG ? `-${ACCESS_LOG}` : ''}${WWW ? '-www' : ''}${URL_PATH === '/plaintext' ? '' : `-${URL_PATH.slice(1).replace(/[^A-Za-z0-9]+/g, '-')}`}`,
    [
      `# Two versions side by side, by CPU per request (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`${CONTROL ? 'CONTROL=1' : `BASE=${BASE}`}${BASE_NATIVE ? ` BASE_NATIVE=${BASE_NATIVE}` : ''} ROUNDS=${ROUNDS} DURATION=${DURATION} CONNECTIONS=${CONNECTIONS}${ACCESS_LOG ? ` ACCESS_LOG=${ACCESS_LOG}` : ''}${WWW ? ` WWW=${WWW}` : ''}${URL_PATH === '/plaintext' ? '' : ` URL_PATH=${URL_PATH}`} npm run bench:paired\``,
      '',
      `bench/servers/skitai.mjs (native engine, one engine thread, ${STATIC ? `the static mount at ${URL_PATH}` : `the hello handler at ${URL_PATH}`}` +
        (WWW && !STATIC ? ', behind a directory mounted at the same prefix' : '') +
        (ACCESS_LOG ? `, the request log in the ${ACCESS_LOG} format to a file` : '') +
        '),',
      `as of ${CONTROL ? 'the working tree, twice' : `\`${BASE}\` and as of the working tree`}, ${BASE_NATIVE ? 'the base on an earlier build of the addon' : 'on the same addon'}; both on CPU 0 and loaded at the same`,
      `time by a \`wrk -t1 -c${CONNECTIONS}\` each on CPU 1. CPU µs/request: the server's user + system time (all its threads) over the`,
      'requests its wrk completed. A negative difference: the working tree costs less.',
      ...(warm ? ['', warmUpLine(warm)] : []),
    ],
    [table],
    runs,
  )
}

await main()
