//! CPU time and peak memory of a process, from `/proc`.

use std::time::Duration;

/// User plus system CPU time of `pid` so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
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
}
