// What the kernel says of a process (/proc/PID/stat), for the tests' and the
// benchmarks' watchers of brokers and server processes.
import fs from 'node:fs';

// The fields of /proc/PID/stat after the command (which is in parentheses
// and may hold spaces and parentheses), so [0] is the state (field 3 of
// proc(5)), [2] the process group, [11] and [12] utime and stime in clock
// ticks; null when the process is gone.
export function procStat(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

// The pids of the processes in process group `pgid` (a detached child's pid).
export function processGroup(pgid) {
  return fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))
    .filter((pid) => procStat(pid)?.[2] === String(pgid)).map(Number);
}
