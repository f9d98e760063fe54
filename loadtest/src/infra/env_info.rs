//! The environment a result was measured in.

use std::collections::BTreeMap;
use std::process::Command;

use crate::model::{Environment, Mode};

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
}

pub fn collect(mode: Mode, started_at: &str) -> Environment {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(0, |k| k * 1024);
    let mut versions = BTreeMap::new();
    versions.insert("loadtest".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(v) = first_line("redis-server", &["--version"]) {
        versions.insert("redis-server".into(), v);
    }
    if let Ok(nginx) = super::topology::find_tool("nginx", "nginx") {
        if let Some(v) = first_line(&nginx.to_string_lossy(), &["-v"]) {
            versions.insert("nginx".into(), v);
        }
    }
    Environment {
        mode,
        started_at: started_at.into(),
        cpu_model,
        cpus: super::procfs::available_cpus(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .into(),
        memory_bytes,
        versions,
        ..Environment::default()
    }
}

/// `2026-11-27T02-55-03Z`: sortable, and safe in a path.
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    stamp_of(secs)
}

pub fn stamp_of(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(stamp_of(0), "1970-01-01T00-00-00Z");
        assert_eq!(stamp_of(951_782_400), "2000-02-29T00-00-00Z");
        assert_eq!(stamp_of(1_795_744_503), "2026-11-27T01-55-03Z");
    }

    #[test]
    fn the_environment_names_this_machine() {
        let e = collect(Mode::Local, "now");
        assert!(e.cpus >= 1);
        assert!(!e.kernel.is_empty());
        assert!(e.memory_bytes > 0);
    }
}
