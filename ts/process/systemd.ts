import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

export interface UnitPlan {
  name: string
  script: string
  execArgv: string[]
  /** Options baked into ExecStart (the command line of `install`, minus the command). */
  args: string[]
}

/** Where units go: /etc/systemd/system, or SKITAI_SYSTEMD_DIR (tests, staging). */
export function unitDir(): string {
  return process.env.SKITAI_SYSTEMD_DIR || '/etc/systemd/system'
}

function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `"${word.replace(/(["\\$`])/g, '\\$1')}"`
}

/** The unit: the master under systemd, READY=1 once the workers serve, HUP to reload. */
export function unitText(plan: UnitPlan): string {
  const exec = [process.execPath, ...plan.execArgv, plan.script, ...plan.args].map(quote).join(' ')
  return [
    '[Unit]',
    `Description=${plan.name} (Skitai)`,
    'After=network.target',
    '',
    '[Service]',
    'Type=notify',
    'NotifyAccess=all',
    `ExecStart=${exec}`,
    'ExecReload=/bin/kill -s HUP $MAINPID',
    'Restart=on-failure',
    'RestartSec=2s',
    'KillMode=mixed',
    'TimeoutStopSec=40s',
    `WorkingDirectory=${dirname(plan.script)}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n')
}

function systemctl(...args: string[]): void {
  if (process.env.SKITAI_SYSTEMD_DIR) return // a redirected unit is not the system's business
  try {
    execFileSync('systemctl', args, { stdio: 'inherit' })
  } catch (error) {
    console.error(`systemctl ${args.join(' ')}: ${(error as Error).message}`)
  }
}

/** `install` (refuses when the unit exists: "use update") and `update`. */
export function install(plan: UnitPlan, replace: boolean): number {
  const path = join(unitDir(), `${plan.name}.service`)
  if (!replace && existsSync(path)) {
    console.error(`${path} exists already: use update`)
    return 1
  }
  if (replace && !existsSync(path)) {
    console.error(`${path} is not installed: use install`)
    return 1
  }
  const text = unitText(plan)
  mkdirSync(unitDir(), { recursive: true })
  writeFileSync(path, text)
  console.log(`# ${path}\n${text}`)
  systemctl('daemon-reload')
  if (!replace) systemctl('enable', `${plan.name}.service`)
  return 0
}

/** `uninstall` / `remove`. */
export function uninstall(name: string): number {
  const path = join(unitDir(), `${name}.service`)
  if (!existsSync(path)) {
    console.error(`${path} is not installed`)
    return 1
  }
  systemctl('disable', `${name}.service`)
  rmSync(path)
  systemctl('daemon-reload')
  console.log(`removed ${path}`)
  return 0
}
