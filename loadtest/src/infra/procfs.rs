//! CPU time and peak memory of a process, from `/proc`.

use std::time::Duration;

/// CPU time of `pid` so far, to the nanosecond: the sum of its threads' `schedstat`. A
/// window of a few seconds holds a handful of the 10 ms ticks `/proc/PID/stat` counts in
/// (a token read's Redis CPU was one tick), so those are only the fallback where
/// `schedstat` cannot be read. A thread that exits takes its time with it: the processes
/// measured here (replicas, Redis, nginx's workers) keep their threads for their life.
/// This process itself is read with `getrusage`, which keeps exited threads' time.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    if pid == std::process::id() {
        if let Some(t) = own_cpu_time() {
            return Ok(t);
        }
    }
    match threads_cpu_ns(pid) {
        Some(ns) => Ok(Duration::from_nanos(ns)),
        None => ticks_cpu_time(pid),
    }
}

/// User plus system time of this process, threads that exited included, in µs steps.
fn own_cpu_time() -> Option<Duration> {
    // SAFETY: getrusage writes one `rusage` into the zeroed value it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Some(tv(usage.ru_utime) + tv(usage.ru_stime))
}

/// The sum of the first field (ns on a CPU) of every thread's `schedstat`.
fn threads_cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut sum = 0;
    let mut any = false;
    for task in tasks.flatten() {
        // A thread that exited since the listing is simply not counted.
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            sum += parse_schedstat_ns(&text)?;
            any = true;
        }
    }
    any.then_some(sum)
}

/// The time on a CPU, in ns, of a `schedstat` line (`<on cpu ns> <waiting ns> <slices>`).
pub fn parse_schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// User plus system CPU time of `pid` so far, in 10 ms ticks.
fn ticks_cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_cpu_ticks(&stat)?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second(),
    ))
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field
/// 2) is in parentheses and may itself hold spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| anyhow::anyhow!("no `)` in /proc stat line"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name, field 3 (state) is index 0, so field N is index N - 3.
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .ok_or_else(|| anyhow::anyhow!("/proc stat line has no field {n}"))?
            .parse()
            .map_err(|e| anyhow::anyhow!("/proc stat field {n}: {e}"))
    };
    Ok(field(14)? + field(15)?)
}

/// The parent pid (field 4) of a stat line.
pub fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Peak resident memory (`VmHWM`) of `pid`, in bytes.
pub fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_hwm(&status).ok_or_else(|| anyhow::anyhow!("no VmHWM for pid {pid}"))
}

pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    status_kib(status, "VmHWM:")
}

/// Resident memory now (`VmRSS`) of `pid`, in bytes.
pub fn rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status_kib(&status, "VmRSS:").ok_or_else(|| anyhow::anyhow!("no VmRSS for pid {pid}"))
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The children of `pid` (nginx's workers).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| parse_stat_ppid(&s))
                == Some(pid)
        })
        .collect()
}

fn clock_ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux architecture this runs on; `getconf CLK_TCK` would say
    // so too, but asking needs libc.
    100.0
}

/// CPUs this process may run on (the affinity mask, as `nproc` counts).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_survive_odd_command_names() {
        let line = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(line).unwrap(), 325);
        assert_eq!(parse_stat_ppid(line), Some(1));
    }

    #[test]
    fn a_truncated_stat_line_is_an_error_not_a_panic() {
        assert!(parse_stat_cpu_ticks("1 (x) S 1 2").is_err());
        assert!(parse_stat_cpu_ticks("garbage").is_err());
        assert!(parse_stat_cpu_ticks("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 2").is_err());
    }

    #[test]
    fn peak_memory_is_read_in_bytes() {
        let status = "Name:\tredis\nVmPeak:\t  20000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1234 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let me = std::process::id();
        assert!(cpu_time(me).is_ok());
        assert!(peak_rss(me).unwrap() > 0);
    }

    #[test]
    fn cpu_time_is_finer_than_a_tick() {
        assert_eq!(parse_schedstat_ns("748127 260203 4\n"), Some(748_127));
        assert_eq!(parse_schedstat_ns(""), None);
        // A child that spins for about 3 ms: ticks would say 0 or 10 ms.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 5",
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let ns = threads_cpu_ns(child.id()).expect("schedstat is readable");
        let _ = child.kill();
        let _ = child.wait();
        assert!(ns > 0 && !ns.is_multiple_of(10_000_000), "{ns} ns");
        // This process, threads that exited included, in µs steps.
        let before = cpu_time(std::process::id()).unwrap();
        // Spin until the thread itself has had 30 ms of CPU (by wall time, a busy machine
        // could give it less).
        std::thread::spawn(|| {
            let own = || {
                let mut t = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: `t` is a valid timespec for the call to fill.
                unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
                Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
            };
            while own() < Duration::from_millis(30) {}
        })
        .join()
        .unwrap();
        let spent = cpu_time(std::process::id()).unwrap() - before;
        assert!(spent >= Duration::from_millis(20), "{spent:?}");
    }
}
