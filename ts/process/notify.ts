import { execFile } from 'node:child_process'
import { loadAddon } from '../engines/native/addon.js'

/**
 * Tell systemd about the service's state (`Type=notify` units): READY=1 once
 * the workers serve, RELOADING=1, STOPPING=1. A no-op without NOTIFY_SOCKET.
 * Through the addon (node has no unix datagram sockets), else `systemd-notify`.
 */
export function notifySystemd(state: string): void {
  if (!process.env.NOTIFY_SOCKET) return
  try {
    loadAddon().notifySystemd(state)
  } catch {
    execFile('systemd-notify', state.split('\n'), () => {})
  }
}
