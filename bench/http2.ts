// HTTP/2 (h2c) side by side with h2load: a JS hello on Skitai's native and
// pure-JS engines and on bare node:http2; a 1 KiB static file on the native
// engine and nginx-light (h2c listener). Each server pinned to CPU 0, h2load
// (one thread, 16 connections, 32 streams each) to CPU 1; runs alternated
// across rounds, medians reported.
//
//   npm run bench:http2          ROUNDS=3 DURATION=10 by default
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildPackage, here, median, need, nginxConfig, start, stopAll, writeReport, type Peer } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const DURATION = Number(process.env.DURATION ?? 10)
const CLIENTS = 16
const STREAMS = 32
const tmp = join(here, 'tmp')
const www = join(tmp, 'www-h2')

interface H2Result {
  rps: number
  failed: number
}

/** h2load over h2c; throws when a request failed or was not a 2xx. */
function h2load(url: string, seconds: number): H2Result {
  const args = ['-c', '1', 'h2load', `-c${CLIENTS}`, `-m${STREAMS}`, '-t1', `-D${seconds}`, url]
  const out = execFileSync('taskset', args, { encoding: 'utf8' })
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1])
  const failed = Number(/(\d+) failed/.exec(out)?.[1] ?? 0) + Number(/(\d+) errored/.exec(out)?.[1] ?? 0)
  const non2xx = /status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out)
  if (failed > 0 || (non2xx && non2xx.slice(1).some((n) => Number(n) > 0)) || !(rps > 0)) {
    throw new Error(`h2load saw failures against ${url}:\n${out}`)
  }
  return { rps, failed }
}

/** nginx with a plain listener (for the readiness check) and an h2c one. */
function nginxH2(h1Port: number, h2Port: number): string {
  return nginxConfig(
    'nginx-h2',
    `  keepalive_requests 100000;
  http2_max_requests 1000000;
  http2_max_concurrent_streams 128;
  types { application/octet-stream bin; }
  server { listen 127.0.0.1:${h1Port}; root ${www}; }
  server { listen 127.0.0.1:${h2Port} http2; root ${www}; }`,
  )
}

interface Case {
  name: string
  peer: Peer
  url: string
}

async function main(): Promise<void> {
  need('h2load', 'apt-get install -y nghttp2-client')
  need('nginx', 'apt-get install -y nginx-light')
  buildPackage()
  mkdirSync(www, { recursive: true })
  writeFileSync(join(www, '1k.bin'), Buffer.alloc(1024, 7))
  const native: Peer = { name: 'skitai native', script: 'skitai.mjs', env: { ENGINE: 'native' }, port: 18201 }
  const js: Peer = { name: 'skitai js', script: 'skitai.mjs', env: { ENGINE: 'js' }, port: 18202 }
  const bare: Peer = { name: 'node:http2', script: 'node-http2.mjs', port: 18203 }
  const nativeStatic: Peer = { name: 'skitai native static', script: 'skitai-static.mjs', env: { ENGINE: 'native', WWW: www }, port: 18204 }
  const nginxH2Port = 18206
  const nginx: Peer = { name: 'nginx', command: ['nginx', '-c', nginxH2(18205, nginxH2Port), '-p', tmp], port: 18205 }
  const hello: Case[] = [
    { name: 'skitai native', peer: native, url: `http://127.0.0.1:${native.port}/plaintext` },
    { name: 'skitai js', peer: js, url: `http://127.0.0.1:${js.port}/plaintext` },
    { name: 'node:http2', peer: bare, url: `http://127.0.0.1:${bare.port}/` },
  ]
  const files: Case[] = [
    { name: 'skitai native', peer: nativeStatic, url: `http://127.0.0.1:${nativeStatic.port}/1k.bin` },
    { name: 'nginx', peer: nginx, url: `http://127.0.0.1:${nginxH2Port}/1k.bin` },
  ]
  const peers = [native, js, bare, nativeStatic, nginx]
  const runs: Array<{ test: string; server: string; rps: number }> = []
  try {
    for (const peer of peers) await start(peer)
    for (const c of [...hello, ...files]) h2load(c.url, 1)
    for (let round = 0; round < ROUNDS; round++) {
      for (const [test, cases] of [['JS hello', hello], ['1 KiB static file', files]] as const) {
        const order = cases.map((_, i) => cases[(i + round) % cases.length]!)
        for (const c of order) {
          const r = h2load(c.url, DURATION)
          runs.push({ test, server: c.name, rps: r.rps })
          console.log(`round ${round + 1} ${test.padEnd(18)} ${c.name.padEnd(14)} ${r.rps.toFixed(0).padStart(8)} req/s`)
        }
      }
    }
  } finally {
    stopAll(peers)
  }
  const rows = ['| test | server | req/s (median) | vs baseline |', '|---|---|---:|---:|']
  for (const [test, cases, baseline] of [['JS hello', hello, 'node:http2'], ['1 KiB static file', files, 'nginx']] as const) {
    const base = median(runs.filter((r) => r.test === test && r.server === baseline).map((r) => r.rps))
    for (const c of cases) {
      const rps = median(runs.filter((r) => r.test === test && r.server === c.name).map((r) => r.rps))
      rows.push(`| ${test} | ${c.name} | ${rps.toFixed(0)} | ${(rps / base).toFixed(2)}x ${baseline} |`)
    }
  }
  const table = rows.join('\n')
  console.log(`\n${table}\n`)
  writeReport(
    'http2',
    [
      `# HTTP/2 (h2c), side by side (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} DURATION=${DURATION} npm run bench:http2\``,
      '',
      `Each server pinned to CPU 0 (\`taskset -c 0\`), h2load pinned to CPU 1: \`h2load -c${CLIENTS} -m${STREAMS} -t1 -D${DURATION}\`,`,
      `${ROUNDS} rounds with the order rotated each round, medians shown. The JS hello answers "Hello World" as text/plain;`,
      'Skitai runs one tokio thread. nginx-light 1.22: 1 worker, an h2c listener (`listen ... http2`), sendfile on, access_log off.',
    ],
    [table],
    runs,
  )
}

await main()
