import { basename } from 'node:path'

/** The commands of a serving script, as `node serve.js [COMMAND]`. */
export const COMMANDS = {
  start: 'start as a daemon (pid file and logs under ~/.skitai/<name>/)',
  stop: 'stop the daemon gracefully (forced after a timeout)',
  status: 'say whether the daemon runs: [running:<pid>] or [stopped]',
  restart: 'stop, then start the daemon',
  install: 'install a systemd unit for this script (then enable it)',
  update: 'rewrite the installed systemd unit',
  uninstall: 'remove the systemd unit',
  remove: 'the same as uninstall',
} as const

export type Command = keyof typeof COMMANDS

/** An option added with `skitai.addOption(short, long, description, { default })`. */
export interface CustomOption {
  short?: string
  /** `--name`, without the `=METAVAR` part. */
  long: string
  /** Set when the option takes a value (`--temp-dir=TEMP_DIR`). */
  metavar?: string
  description: string
  default?: string
}

export interface CommandLine {
  command?: Command
  help: boolean
  version: boolean
  devel: boolean
  port?: number
  address?: string
  workers?: number
  threads?: number
  name?: string
  user?: string
  group?: string
  /** Custom options by their long name (`--temp-dir`): value, true for a flag, or the default. */
  options: Record<string, string | boolean | undefined>
  /** The arguments a worker or a daemon gets: everything but the command. */
  passOn: string[]
}

/** A bad command line: reported on stderr, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

interface Builtin {
  short?: string
  long: string
  metavar?: string
  description: string
}

const BUILTINS: Builtin[] = [
  { short: '-h', long: '--help', description: 'show this help and exit' },
  { long: '--version', description: 'print the version and exit' },
  { long: '--address', metavar: 'ADDRESS', description: 'listening address (default 0.0.0.0)' },
  { long: '--port', metavar: 'PORT', description: 'listening port (default 5000)' },
  { long: '--workers', metavar: 'N', description: 'worker processes (default 1)' },
  { long: '--threads', metavar: 'N', description: 'engine threads per worker (default 1)' },
  { long: '--name', metavar: 'NAME', description: 'service name (default: the script name)' },
  { long: '--user', metavar: 'USER', description: 'run the workers as USER (the master binds first)' },
  { long: '--group', metavar: 'GROUP', description: 'run the workers with GROUP' },
  { long: '--devel', description: 'development mode: reload the workers when app files change' },
]

function integer(option: string, text: string, min: number, max: number): number {
  const value = Number(text)
  if (!/^\d+$/.test(text) || value < min || value > max) throw new UsageError(`${option} needs an integer ${min}-${max}, got '${text}'`)
  return value
}

/** Parse `node serve.js [COMMAND] [OPTION]...`; throws UsageError naming what is wrong. */
export function parseCommandLine(argv: readonly string[], custom: readonly CustomOption[]): CommandLine {
  const line: CommandLine = { help: false, version: false, devel: false, options: {}, passOn: [] }
  for (const option of custom) line.options[option.long] = option.metavar ? option.default : false
  const known = [...BUILTINS, ...custom]
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith('-') || arg === '-') {
      if (arg in COMMANDS && line.command === undefined) {
        line.command = arg as Command
        continue
      }
      throw new UsageError(line.command ? `unexpected argument '${arg}'` : `unknown command '${arg}' (commands: ${Object.keys(COMMANDS).join(', ')})`)
    }
    const eq = arg.indexOf('=')
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    const spec = known.find((o) => o.long === flag || o.short === flag)
    if (spec === undefined) throw new UsageError(`unknown option '${flag}'`)
    let value: string | undefined
    if (spec.metavar) {
      if (eq !== -1) value = arg.slice(eq + 1)
      else if (i + 1 < argv.length) value = argv[++i]
      else throw new UsageError(`${spec.long} needs a value (${spec.long}=${spec.metavar})`)
      line.passOn.push(spec.long, value!)
    } else {
      if (eq !== -1) throw new UsageError(`${spec.long} takes no value`)
      line.passOn.push(spec.long)
    }
    switch (spec.long) {
      case '--help': line.help = true; break
      case '--version': line.version = true; break
      case '--devel': line.devel = true; break
      case '--address': line.address = value; break
      case '--port': line.port = integer('--port', value!, 0, 65535); break
      case '--workers': line.workers = integer('--workers', value!, 1, 1024); break
      case '--threads': line.threads = integer('--threads', value!, 1, 1024); break
      case '--name':
        if (!/^[\w.-]+$/.test(value!)) throw new UsageError(`--name may hold letters, digits, '.', '_' and '-', got '${value}'`)
        line.name = value
        break
      case '--user': line.user = value; break
      case '--group': line.group = value; break
      default: line.options[spec.long] = spec.metavar ? value : true
    }
  }
  return line
}

/** `--help`: usage, the commands, and one aligned table of every option. */
export function helpText(script: string, custom: readonly CustomOption[]): string {
  const rows = [...BUILTINS, ...custom].map((o) => {
    const names = `${o.short ? `${o.short}, ` : '    '}${o.long}${o.metavar ? `=${o.metavar}` : ''}`
    const fallback = 'default' in o && o.default !== undefined ? ` (default ${o.default})` : ''
    return [names, o.description + fallback] as const
  })
  const width = Math.max(...rows.map(([names]) => names.length)) + 2
  const commandWidth = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2
  return [
    `Usage: ${basename(script)} [OPTION]... [COMMAND]`,
    '',
    'Without a command, serve in the console (Ctrl-C stops).',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, text]) => `  ${name.padEnd(commandWidth)}${text}`),
    '',
    'Options:',
    ...rows.map(([names, text]) => `  ${names.padEnd(width)}${text}`),
    '',
  ].join('\n')
}

/** Check an addOption() call; returns the option as the parser keeps it. */
export function customOption(short: string | null | undefined, long: string, description: string, fallback?: string): CustomOption {
  const match = /^(--[a-zA-Z][\w-]*)(?:=([A-Z][A-Z0-9_]*))?$/.exec(long)
  if (!match) throw new TypeError(`addOption: '${long}' is not a long option (--name or --name=METAVAR)`)
  if (short && !/^-[a-zA-Z]$/.test(short)) throw new TypeError(`addOption: '${short}' is not a short option (-x)`)
  const clash = BUILTINS.find((o) => o.long === match[1] || (short && o.short === short))
  if (clash) throw new TypeError(`addOption: ${clash.long} is a built-in option`)
  return { short: short ?? undefined, long: match[1]!, metavar: match[2], description, default: fallback }
}
