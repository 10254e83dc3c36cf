import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Agent, request } from 'undici'
import { ENGINES } from './helpers.js'
import { exited, SERVICE, startService, track, waitFor, type Reply } from './services.js'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

for (const engine of ENGINES) {
  describe(`workers (${engine})`, () => {
    test('workers are separate processes with titles and ids; a killed one is replaced', async () => {
      const s = await startService(engine, ['--workers', '2', '--name', 'svc'])
      const seen = new Map<string, Reply>()
      await waitFor('both workers answering', async () => {
        const reply = await s.get()
        seen.set(reply.worker, reply)
        return seen.size === 2 ? true : undefined
      })
      const [one, two] = [seen.get('1')!, seen.get('2')!]
      assert.notEqual(one.pid, two.pid)
      assert.equal(one.title, 'skitai:svc/1')
      assert.equal(two.workers, '2')
      assert.equal(readFileSync(`/proc/${s.master.pid}/cmdline`, 'utf8').split('\0')[0], 'skitai:svc/m')
      process.kill(one.pid, 'SIGKILL')
      const replacement = await waitFor('a new worker 1', async () => {
        const reply = await s.get()
        return reply.worker === '1' && reply.pid !== one.pid ? reply : undefined
      })
      assert.ok(alive(replacement.pid))
      s.master.kill('SIGTERM')
      assert.equal(await exited(s.master), 0)
      assert.ok(!alive(two.pid) && !alive(replacement.pid))
    })

    test('SIGHUP under load: no failed request, and the new code answers', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'skitai-reload-'))
      const versionFile = join(dir, 'version')
      writeFileSync(versionFile, 'one')
      const s = await startService(engine, ['--workers', '2'], { VERSION_FILE: versionFile })
      let running = true
      let load: Promise<unknown> = Promise.resolve()
      try {
        assert.equal((await s.get()).version, 'one')
        let failures = 0
        let answered = 0
        const agent = new Agent({ connections: 8 })
        load = Promise.all(
          Array.from({ length: 8 }, async () => {
            while (running) {
              try {
                const res = await request(`http://127.0.0.1:${s.port}/`, { dispatcher: agent })
                await res.body.json()
                if (res.statusCode === 200) answered++
                else failures++
              } catch {
                failures++
              }
            }
          }),
        )
        await waitFor('load running', () => (answered > 50 ? true : undefined))
        writeFileSync(versionFile, 'two')
        s.master.kill('SIGHUP')
        await waitFor('the new code answering on every worker', async () => {
          const replies = await Promise.all([s.get(), s.get(), s.get(), s.get()])
          return replies.every((r) => r.version === 'two') ? true : undefined
        })
        const before = answered
        await waitFor('more load after the reload', () => (answered > before + 50 ? true : undefined))
        running = false
        await load
        await agent.close()
        assert.equal(failures, 0, `${failures} failed requests of ${answered + failures}`)
      } finally {
        // Also when a wait above failed: the load loops would spin on refused connections.
        running = false
        await load
        s.master.kill('SIGTERM')
        await exited(s.master)
        rmSync(dir, { recursive: true, force: true })
      }
    })

    test('SIGTERM lets a slow request in flight finish', async () => {
      const s = await startService(engine, ['--workers', '1'])
      const slow = s.get('/?delay=1500')
      await waitFor('the slow request in the worker', () => (/slow request started/.test(s.output()) ? true : undefined))
      s.master.kill('SIGTERM')
      const reply = await slow
      assert.equal(reply.worker, '1')
      assert.equal(await exited(s.master), 0)
    })

    test('a worker whose app cannot load (exit code 2) stops the service with a clear message', async () => {
      const master = spawn(process.execPath, ['--import', 'tsx', SERVICE, '--port', '0', '--workers', '2'], {
        env: { ...process.env, SKITAI_ENGINE: engine, APP_MODULE: './no/such/app.mjs:app' },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      track(master)
      let output = ''
      master.stderr!.on('data', (d: Buffer) => (output += d.toString()))
      assert.equal(await exited(master), 2)
      assert.match(output, /could not start: cannot mount '\.\/no\/such\/app\.mjs:app' at '\/mod': no such file/)
      assert.match(output, /failed to start \(exit code 2\); stopping/)
    })

    test('--devel reloads the workers when a mounted module changes; a broken edit keeps the old ones', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'skitai-devel-'))
      const module = join(dir, 'app.mjs')
      const write = (text: string): void => writeFileSync(module, `export default (req, res) => res.end(${JSON.stringify(text)})\n`)
      write('first')
      const s = await startService(engine, ['--workers', '1', '--devel'], { APP_MODULE: module })
      const text = async (): Promise<string> => (await request(`http://127.0.0.1:${s.port}/mod`)).body.text()
      try {
        assert.equal(await text(), 'first')
        write('second')
        await waitFor('the edited module answering', async () => ((await text()) === 'second' ? true : undefined))
        writeFileSync(module, 'export default (req, res) => { syntax error here\n')
        await waitFor('the failed reload reported', () => (/reload failed/.test(s.output()) ? true : undefined))
        assert.equal(await text(), 'second')
      } finally {
        s.master.kill('SIGTERM')
        await exited(s.master)
        rmSync(dir, { recursive: true, force: true })
      }
    })

    test('TTIN adds a worker, TTOU removes one', async () => {
      const s = await startService(engine, ['--workers', '1'])
      try {
        s.master.kill('SIGTTIN')
        await waitFor('worker 2', async () => ((await s.get()).worker === '2' ? true : undefined))
        s.master.kill('SIGTTOU')
        await waitFor('the startup count back to one', () => (/: 1 worker\(s\)/.test(s.output()) ? true : undefined))
      } finally {
        s.master.kill('SIGTERM')
        await exited(s.master)
      }
    })
  })
}

describe('privileges and systemd notification', () => {
  const nobodyCanRead = (): boolean => {
    const nobody = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' })
    if (nobody.status !== 0) return false
    const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(SERVICE)}); require.resolve('tsx')`], {
      uid: Number(nobody.stdout.trim()),
      cwd: process.cwd(),
    })
    return probe.status === 0
  }
  const privilegeSkip = process.getuid?.() !== 0 ? 'needs root' : !nobodyCanRead() ? 'the checkout is not readable by nobody' : false

  test('--user nobody: the workers run as nobody, the master stays root', { skip: privilegeSkip }, async () => {
    const s = await startService('native', ['--workers', '1', '--user', 'nobody'])
    try {
      const reply = await s.get()
      const uid = (pid: number): number => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])
      const nobody = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim())
      assert.equal(uid(reply.pid), nobody)
      assert.equal(uid(s.master.pid!), 0)
    } finally {
      s.master.kill('SIGTERM')
      await exited(s.master)
    }
  })

  test('READY=1 reaches NOTIFY_SOCKET once the workers serve', { skip: spawnSync('python3', ['--version']).error ? 'needs python3 for a unix datagram socket' : false }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skitai-notify-'))
    const socketPath = join(dir, 'notify.sock')
    const receiver = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound", flush=True)\nprint(s.recv(4096).decode().replace("\\n", " "), flush=True)', socketPath], { stdio: ['ignore', 'pipe', 'inherit'] })
    track(receiver)
    let received = ''
    receiver.stdout!.on('data', (d: Buffer) => (received += d.toString()))
    await waitFor('the receiving socket', () => (received.includes('bound') ? true : undefined))
    const s = await startService('native', ['--workers', '1'], { NOTIFY_SOCKET: socketPath })
    try {
      await waitFor('READY=1', () => (/READY=1/.test(received) ? true : undefined))
      assert.match(received, new RegExp(`MAINPID=${s.master.pid}`))
    } finally {
      s.master.kill('SIGTERM')
      await exited(s.master)
      receiver.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('command line', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', SERVICE, ...args], { encoding: 'utf8', timeout: 30_000 })

  test('--help lists commands and every option, custom ones included', () => {
    const help = run('--help')
    assert.equal(help.status, 0)
    assert.match(help.stdout, /^Usage: service\.ts \[OPTION\]\.\.\. \[COMMAND\]/)
    for (const command of ['start', 'stop', 'status', 'restart', 'install', 'update', 'uninstall', 'remove']) {
      assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'))
    }
    assert.match(help.stdout, /^  -q, --qtran +start queued transaction service$/m)
    assert.match(help.stdout, /^ {6}--temp-dir=TEMP_DIR +temp directory \(default \/var\/tmp\/myservice\)$/m)
    assert.match(help.stdout, /^ {6}--workers=N +worker processes/m)
    // One column for all descriptions.
    const rows = help.stdout.split('\n').filter((l) => /^ {2}(-\w, |    )--/.test(l))
    assert.ok(rows.length > 10)
    // Every description starts in the same column.
    assert.equal(new Set(rows.map((l) => l.length - /\S {2,}(\S.*)$/.exec(l)![1]!.length)).size, 1)
  })

  test('an unknown option or command is an error on stderr with exit status 2', () => {
    const option = run('--bogus')
    assert.equal(option.status, 2)
    assert.match(option.stderr, /unknown option '--bogus'/)
    assert.equal(option.stdout, '')
    const command = run('launch')
    assert.equal(command.status, 2)
    assert.match(command.stderr, /unknown command 'launch'/)
    assert.equal(run('--workers', 'many').status, 2)
    const user = run('--user', 'no-such-user-here')
    assert.equal(user.status, 2)
    assert.match(user.stderr, /no such user 'no-such-user-here'/)
  })
})

describe('daemon', () => {
  test('start, status, second start, stop, stale pid file', async () => {
    const home = mkdtempSync(join(tmpdir(), 'skitai-home-'))
    const env = { ...process.env, HOME: home }
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', SERVICE, ...args, '--name', 'daemontest', '--port', '0'], { encoding: 'utf8', env, timeout: 60_000 })
    const pidFile = join(home, '.skitai', 'daemontest', 'skitai.pid')
    try {
      assert.equal(cli('status').status, 3)
      const started = cli('start')
      assert.equal(started.status, 0, started.stderr)
      const pid = Number(readFileSync(pidFile, 'utf8'))
      assert.equal(started.stdout.trim(), `daemontest [running:${pid}]`)
      assert.ok(alive(pid))
      const status = cli('status')
      assert.equal(status.status, 0)
      assert.equal(status.stdout.trim(), `daemontest [running:${pid}]`)
      const again = cli('start')
      assert.equal(again.stdout.trim(), `daemontest [already running:${pid}]`)
      assert.notEqual(again.status, 0)
      const restarted = cli('restart')
      assert.equal(restarted.status, 0, restarted.stderr)
      const newPid = Number(readFileSync(pidFile, 'utf8'))
      assert.notEqual(newPid, pid)
      assert.ok(!alive(pid))
      const stopped = cli('stop')
      assert.equal(stopped.stdout.trim(), 'daemontest [stopped]')
      assert.ok(!alive(newPid))
      assert.ok(!existsSync(pidFile))
      // A pid file whose process is gone: status 1 and the file is cleaned.
      writeFileSync(pidFile, '999999\n')
      const stale = cli('status')
      assert.equal(stale.status, 1)
      assert.match(stale.stdout, /\[stopped\].*stale/)
      assert.ok(!existsSync(pidFile))
    } finally {
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL')
      rmSync(home, { recursive: true, force: true })
    }
  })
})

describe('systemd', () => {
  test('install, update, uninstall a unit in SKITAI_SYSTEMD_DIR', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skitai-units-'))
    const env = { ...process.env, SKITAI_SYSTEMD_DIR: dir, SUDO_USER: '' }
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', SERVICE, ...args], { encoding: 'utf8', env, timeout: 30_000 })
    try {
      const installed = cli('install', '--name', 'unittest', '--workers', '2', '--port', '38000')
      assert.equal(installed.status, 0, installed.stderr)
      const unit = readFileSync(join(dir, 'unittest.service'), 'utf8')
      assert.match(unit, /^Type=notify$/m)
      assert.match(unit, new RegExp(`^ExecStart=${process.execPath} --import tsx ${SERVICE} --name unittest --workers 2 --port 38000$`, 'm'))
      assert.match(unit, /^ExecReload=\/bin\/kill -s HUP \$MAINPID$/m)
      assert.match(unit, /^Restart=on-failure$/m)
      assert.match(unit, /^RestartSec=2s$/m)
      assert.match(unit, /^KillMode=mixed$/m)
      assert.match(unit, new RegExp(`^WorkingDirectory=${join(import.meta.dirname, 'fixtures')}$`, 'm'))
      assert.match(unit, /^WantedBy=multi-user\.target$/m)
      assert.ok(installed.stdout.includes(unit))
      const twice = cli('install', '--name', 'unittest')
      assert.equal(twice.status, 1)
      assert.match(twice.stderr, /use update/)
      assert.equal(cli('update', '--name', 'unittest', '--workers', '4').status, 0)
      assert.match(readFileSync(join(dir, 'unittest.service'), 'utf8'), /--workers 4/)
      const verify = spawnSync('systemd-analyze', ['verify', join(dir, 'unittest.service')], { encoding: 'utf8' })
      if (verify.error === undefined) assert.doesNotMatch(verify.stderr, /unittest\.service:.*(invalid|unknown|bad)/i)
      assert.equal(cli('uninstall', '--name', 'unittest').status, 0)
      assert.ok(!existsSync(join(dir, 'unittest.service')))
      assert.equal(cli('remove', '--name', 'unittest').status, 1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
