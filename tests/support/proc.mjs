// Reading a process tree's resources from /proc (Linux): the workerd
// processes a `wrangler dev` started, their resident memory and CPU time.
import { readdirSync, readFileSync } from 'node:fs'

/** PIDs of processes named `name` in process group `pgid`. */
export function processesInGroup(pgid, name = 'workerd') {
  const out = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[2]) === pgid && comm === name) out.push(Number(entry))
    } catch {
      // the process exited while we looked
    }
  }
  return out
}

/** Resident set size of `pid`, in bytes. */
export function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
}

/** User + system CPU time of `pid`, in milliseconds. */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime
  return (ticks * 1000) / 100 // USER_HZ is 100 on Linux
}
