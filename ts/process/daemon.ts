import { spawn } from 'node:child_process'
import { mkdirSync, openSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { logDir, pidFilePath } from './paths.js'
import { isAlive, readPid } from './pidfile.js'

/** How a daemon is started again: the same node, loaders and script, without the command. */
export interface DaemonPlan {
  name: string
  script: string
  execArgv: string[]
  args: string[]
  /** Seconds `stop` waits for a graceful exit before it kills. */
  grace: number
}

/** Poll `check` every 50 ms until it holds or `ms` pass. */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) return true
    await sleep(50)
  }
  return check()
}

/** `status`: prints `[running:<pid>]` or `[stopped]`; LSB exit codes 0, 3, or 1 for a stale pid file. */
export function status(plan: DaemonPlan): number {
  const file = pidFilePath(plan.name)
  const pid = readPid(file)
  if (pid === undefined) {
    console.log(`${plan.name} [stopped]`)
    return 3
  }
  if (!isAlive(pid)) {
    rmSync(file, { force: true })
    console.log(`${plan.name} [stopped] (removed a stale pid file of ${pid})`)
    return 1
  }
  console.log(`${plan.name} [running:${pid}]`)
  return 0
}

/** `start`: detach into a session of its own, output to log files; waits until it serves. */
export async function start(plan: DaemonPlan): Promise<number> {
  const file = pidFilePath(plan.name)
  const running = readPid(file)
  if (running !== undefined && isAlive(running)) {
    console.log(`${plan.name} [already running:${running}]`)
    return 1
  }
  if (running !== undefined) rmSync(file, { force: true })
  const logs = logDir(plan.name)
  mkdirSync(logs, { recursive: true })
  const out = openSync(join(logs, 'stdout.log'), 'a')
  const child = spawn(process.execPath, [...plan.execArgv, plan.script, ...plan.args], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, SKITAI_DAEMON: '1' },
  })
  let ended: number | null | undefined
  child.on('exit', (code) => (ended = code))
  child.unref()
  const up = await until(() => ended !== undefined || readPid(file) === child.pid, 30_000)
  if (!up || ended !== undefined) {
    console.error(`${plan.name}: the daemon did not start (exit code ${ended ?? 'none'}); see ${join(logs, 'stdout.log')}`)
    return 1
  }
  console.log(`${plan.name} [running:${child.pid}]`)
  return 0
}

/** `stop`: TERM, wait for the graceful exit, KILL after the grace time. */
export async function stop(plan: DaemonPlan): Promise<number> {
  const file = pidFilePath(plan.name)
  const pid = readPid(file)
  if (pid === undefined || !isAlive(pid)) {
    rmSync(file, { force: true })
    console.log(`${plan.name} [stopped]`)
    return 0
  }
  process.kill(pid, 'SIGTERM')
  if (!(await until(() => !isAlive(pid), (plan.grace + 5) * 1000))) {
    process.kill(pid, 'SIGKILL')
    await until(() => !isAlive(pid), 5000)
  }
  rmSync(file, { force: true })
  console.log(`${plan.name} [stopped]`)
  return 0
}

export async function restart(plan: DaemonPlan): Promise<number> {
  await stop(plan)
  return start(plan)
}
