// Static files side by side: Skitai (native and pure-JS engines), nginx-light
// (1 worker, sendfile on) and @fastify/static serve the same 1 KiB, 64 KiB and 4 MiB
// files; each server pinned to CPU 0, wrk (64 connections) to CPU 1, runs alternated
// across rounds, medians reported. Then 200 clients download the 4 MiB file from the
// native engine while its memory is sampled.
//
//   npm run bench:static          ROUNDS=3 DURATION=10 by default
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildPackage, cpuSeconds, here, hyperFloor, median, need, nginxStatic, servingPid, start, stopAll, writeBenchFile, writeReport, wrk, wrkAlongside, type Peer } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
/** Rounds with skitai native, nginx and hyper alone loaded at the same time. */
const TOGETHER = Number(process.env.TOGETHER ?? 6)
/** The servers loaded at once: what CPU per request compares on a machine whose speed drifts. */
const AT_ONCE = ['skitai native', 'nginx', 'hyper alone']
const DURATION = Number(process.env.DURATION ?? 10)
const CONNECTIONS = 64
const FILES = [
  { name: '1k.bin', size: 1024 },
  { name: '64k.bin', size: 64 * 1024 },
  { name: '4m.bin', size: 4 * 1024 * 1024 },
]
/** The files loaded at once: with three servers on one core, a 4 MiB download can outlast wrk's 2 s timeout. */
const atOnceFiles = FILES.filter((f) => f.name !== '4m.bin')
const tmp = join(here, 'tmp')
const www = join(tmp, 'www')

function prepare(): void {
  need('wrk', 'apt-get install -y wrk')
  need('nginx', 'apt-get install -y nginx-light')
  buildPackage()
  if (!existsSync(join(here, 'node_modules', '@fastify', 'static'))) execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: here, stdio: 'inherit' })
  for (const f of FILES) writeBenchFile(www, f.name, f.size)
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

async function memoryUnderLoad(peer: Peer): Promise<{ before: number; peak: number; after: number; samples: number[] }> {
  const pid = peer.process!.pid!
  const before = rssMiB(pid)
  const samples: number[] = []
  const timer = setInterval(() => samples.push(rssMiB(pid)), 250)
  // wrk runs asynchronously so that the event loop stays free to sample.
  await new Promise<void>((resolve, reject) => {
    execFile('taskset', ['-c', '1', 'wrk', '-t1', '-c200', `-d${DURATION}s`, `http://127.0.0.1:${peer.port}/4m.bin`], (error) =>
      error ? reject(error) : resolve(),
    )
  })
  clearInterval(timer)
  return { before, peak: Math.max(...samples), after: rssMiB(pid), samples }
}

async function main(): Promise<void> {
  prepare()
  const nginxPort = 18104
  const peers: Peer[] = [
    { name: 'skitai native', script: 'skitai-static.mjs', env: { ENGINE: 'native', WWW: www }, port: 18101 },
    { name: 'skitai js', script: 'skitai-static.mjs', env: { ENGINE: 'js', WWW: www }, port: 18102 },
    { name: '@fastify/static', script: 'fastify-static.mjs', env: { WWW: www }, port: 18103 },
    { name: 'nginx', command: ['nginx', '-c', nginxStatic('nginx', nginxPort, www), '-p', tmp], port: nginxPort },
    // Not a contender: what hyper alone costs, the files held in memory.
    { name: 'hyper alone', command: [hyperFloor('floor-static')], env: { WWW: www }, port: 18105 },
  ]
  const runs: Array<{ peer: string; file: string; rps: number; p50: number; p99: number; mibps: number; cpuUs: number }> = []
  const together: Array<{ peer: string; file: string; round: number; cpuUs: number }> = []
  let memory: Awaited<ReturnType<typeof memoryUnderLoad>> | undefined
  try {
    for (const peer of peers) await start(peer)
    for (const peer of peers) for (const f of FILES) wrk(`http://127.0.0.1:${peer.port}/${f.name}`, CONNECTIONS, 1)
    for (let round = 0; round < ROUNDS; round++) {
      const order = peers.map((_, i) => peers[(i + round) % peers.length]!)
      for (const f of FILES) {
        for (const peer of order) {
          const pid = servingPid(peer)
          const before = cpuSeconds(pid)
          const r = wrk(`http://127.0.0.1:${peer.port}/${f.name}`, CONNECTIONS, DURATION)
          const cpuUs = ((cpuSeconds(pid) - before) * 1e6) / r.requests
          runs.push({ peer: peer.name, file: f.name, ...r, cpuUs })
          console.log(
            `round ${round + 1} ${f.name.padEnd(8)} ${peer.name.padEnd(16)} ${r.rps.toFixed(0).padStart(8)} req/s ${r.mibps.toFixed(0).padStart(6)} MiB/s ${cpuUs.toFixed(2).padStart(7)} µs CPU/request`,
          )
        }
      }
    }
    const loaded = peers.filter((p) => AT_ONCE.includes(p.name))
    for (let round = 0; round < TOGETHER; round++) {
      for (const f of atOnceFiles) {
        const results = await Promise.all(
          loaded.map(async (peer) => {
            const pid = servingPid(peer)
            const before = cpuSeconds(pid)
            const r = await wrkAlongside(`http://127.0.0.1:${peer.port}/${f.name}`, CONNECTIONS, DURATION)
            return { peer: peer.name, file: f.name, round, cpuUs: ((cpuSeconds(pid) - before) * 1e6) / r.requests }
          }),
        )
        together.push(...results)
        console.log(`at once ${round + 1} ${f.name.padEnd(8)} ${results.map((r) => `${r.peer} ${r.cpuUs.toFixed(2)}`).join(', ')} µs CPU/request`)
      }
    }
    memory = await memoryUnderLoad(peers[0]!)
  } finally {
    stopAll(peers)
  }

  const rows = [
    '| file | server | req/s (median) | MiB/s | p50 ms | p99 ms | vs nginx | server CPU µs/request | vs nginx by CPU |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const f of FILES) {
    const nginxRuns = runs.filter((r) => r.file === f.name && r.peer === 'nginx')
    const nginx = median(nginxRuns.map((r) => r.rps))
    const nginxCpu = median(nginxRuns.map((r) => r.cpuUs))
    for (const peer of peers) {
      const mine = runs.filter((r) => r.file === f.name && r.peer === peer.name)
      const rps = median(mine.map((r) => r.rps))
      const cpu = median(mine.map((r) => r.cpuUs))
      rows.push(
        `| ${f.name} | ${peer.name} | ${rps.toFixed(0)} | ${median(mine.map((r) => r.mibps)).toFixed(0)} | ` +
          `${median(mine.map((r) => r.p50)).toFixed(2)} | ${median(mine.map((r) => r.p99)).toFixed(2)} | ${(rps / nginx).toFixed(2)}x | ` +
          `${cpu.toFixed(2)} | ${(nginxCpu / cpu).toFixed(2)}x |`,
      )
    }
  }
  const table = rows.join('\n')
  const atOnceRows = ['| file | server | CPU µs/request (median) | nginx / server by CPU (paired, median) | paired range |', '|---|---|---:|---:|---|']
  for (const f of atOnceFiles) {
    const nginxIn = (round: number): number => together.find((r) => r.file === f.name && r.round === round && r.peer === 'nginx')!.cpuUs
    for (const name of AT_ONCE) {
      const mine = together.filter((r) => r.file === f.name && r.peer === name)
      const ratios = mine.map((r) => nginxIn(r.round) / r.cpuUs)
      atOnceRows.push(
        `| ${f.name} | ${name} | ${median(mine.map((r) => r.cpuUs)).toFixed(2)} | ${median(ratios).toFixed(2)}x | ${Math.min(...ratios).toFixed(2)} - ${Math.max(...ratios).toFixed(2)} |`,
      )
    }
  }
  const atOnceTable = atOnceRows.join('\n')
  const mem = memory!
  const memoryLine = `Memory of the native engine while 200 clients download 4m.bin for ${DURATION} s: RSS ${mem.before.toFixed(0)} MiB before, peak ${mem.peak.toFixed(0)} MiB, ${mem.after.toFixed(0)} MiB after (samples every 250 ms: ${mem.samples.map((m) => m.toFixed(0)).join(' ')}).`
  console.log(`\n${table}\n\n${atOnceTable}\n\n${memoryLine}\n`)
  writeReport(
    'static-files',
    [
      `# Static files, side by side (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} TOGETHER=${TOGETHER} DURATION=${DURATION} npm run bench:static\``,
      '',
      `Each server pinned to CPU 0 (\`taskset -c 0\`), wrk pinned to CPU 1: \`wrk -t1 -c${CONNECTIONS} -d${DURATION}s --latency\`,`,
      `keep-alive, no Accept-Encoding, ${ROUNDS} rounds with the order rotated each round, medians shown.`,
      'nginx-light: 1 worker, sendfile on, tcp_nopush on, access_log off. Skitai native: JS thread and one tokio thread on CPU 0.',
      'Server CPU µs/request: the server\'s user + system time over the requests wrk completed (for nginx, its worker\'s);',
      '"vs nginx by CPU" is nginx\'s over the server\'s, so above 1.00x the server spends less per request. Where wrk,',
      'not the server, is what limits a row (large files), requests per second tell the servers apart less than CPU does.',
      '"hyper alone" is not a contender but a floor: bench/hyper-floor\'s bare hyper server (one tokio thread) answering',
      'the same files from memory with the same headers, no file system, routing, conditionals or ranges: what the',
      'hyper stack itself costs, so that the rest of skitai native\'s CPU per request is its own.',
    ],
    [
      '## One server at a time',
      '',
      table,
      '',
      `## Loaded at the same time (${TOGETHER} rounds)`,
      '',
      `${AT_ONCE.join(', ')} on CPU 0, each loaded by its own \`wrk -t1 -c${CONNECTIONS} -d${DURATION}s\` on CPU 1 for the same seconds,`,
      'so each sees the same machine: this VM\'s speed drifts between runs of a few seconds, which moves the ratios above',
      'from one run to the next. Their req/s do not compare (each gets the share of CPU 0 the scheduler gives it); their',
      'CPU per request does. Paired: nginx\'s CPU per request over the server\'s in the same round.',
      '',
      atOnceTable,
      '',
      memoryLine,
    ],
    [...runs.map((r) => ({ ...r, way: 'alone' })), ...together.map((r) => ({ ...r, way: 'at once' }))],
  )
}

await main()
