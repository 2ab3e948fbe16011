// Reading a process tree's resources from /proc (Linux): the workerd
// processes a `wrangler dev` started, their resident memory and CPU time;
// and stopping a process group a test started.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/** PIDs of processes whose name starts with `name`, in process group `pgid`. */
export function processesInGroup(pgid, name = 'workerd') {
  const out = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[2]) === pgid && comm.startsWith(name)) out.push(Number(entry)) // fields[2]: pgrp
    } catch {
      // the process exited while we looked
    }
  }
  return out
}

/** Resident set size of `pid`, in bytes (0 once it exited). */
export function rssBytes(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
  } catch {
    return 0
  }
}

/** User + system CPU time of `pid`, in milliseconds (0 once it exited). */
export function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime
    return (ticks * 1000) / 100 // USER_HZ is 100 on Linux
  } catch {
    return 0
  }
}

/** The command line of `pid` ('' once it exited). */
export function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return ''
  }
}

/** TCP ports `pid` listens on (IPv4), from /proc/net/tcp and its socket fds. */
export function listeningPorts(pid) {
  const inodes = new Set()
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
        if (m) inodes.add(m[1])
      } catch {
        // closed while we looked
      }
    }
  } catch {
    return []
  }
  const ports = []
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f[3] === '0A' && inodes.has(f[9])) ports.push(parseInt(f[1].split(':')[1], 16)) // 0A: LISTEN
  }
  return ports
}

/**
 * Stops `child`, started with `detached: true` (its own process group), and
 * everything it started: SIGTERM to the group, SIGKILL after `graceMs`.
 * Resolves once it exited.
 */
export async function stopProcessGroup(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  try { process.kill(-child.pid, 'SIGTERM') } catch { /* gone */ }
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL') } catch { /* gone */ } }, graceMs)
  await exited
  clearTimeout(timer)
}
