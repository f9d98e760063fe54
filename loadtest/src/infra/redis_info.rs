//! Figures from Redis `INFO`: commands executed and memory used.

use std::collections::BTreeMap;
use std::time::Duration;

/// `INFO <section>` from the Redis at `url`, within 2 s for the connection and 2 s for the
/// answer (a frozen Redis must not stall a measurement).
pub async fn query(url: &str, section: &str) -> anyhow::Result<String> {
    let client = redis::Client::open(url)?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection(),
    )
    .await??;
    Ok(tokio::time::timeout(
        Duration::from_secs(2),
        redis::cmd("INFO").arg(section).query_async(&mut conn),
    )
    .await??)
}

/// Calls per command from `INFO commandstats` (`cmdstat_get:calls=12,usec=...`).
pub fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// All calls except the ones the measurement itself makes (`INFO`, `PING`, `CONFIG`, ...).
pub fn workload_calls(stats: &BTreeMap<String, u64>) -> u64 {
    const OURS: [&str; 6] = [
        "info",
        "ping",
        "config|set",
        "config|get",
        "flushall",
        "dbsize",
    ];
    stats
        .iter()
        .filter(|(name, _)| !OURS.contains(&name.as_str()))
        .map(|(_, calls)| calls)
        .sum()
}

/// A field such as `used_memory` from `INFO memory`.
pub fn field(info: &str, name: &str) -> Option<u64> {
    info.lines().find_map(|l| {
        l.trim()
            .strip_prefix(name)?
            .strip_prefix(':')?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Commandstats\r\ncmdstat_get:calls=120,usec=300,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\ncmdstat_set:calls=7,usec=20,usec_per_call=2.86\r\ncmdstat_info:calls=3,usec=90,usec_per_call=30.00\r\ncmdstat_evalsha:calls=5,usec=100\r\ncmdstat_broken:usec=1\r\n";

    #[test]
    fn commandstats_are_parsed_per_command() {
        let s = parse_commandstats(SAMPLE);
        assert_eq!(s["get"], 120);
        assert_eq!(s["set"], 7);
        assert_eq!(s["evalsha"], 5);
        assert!(!s.contains_key("broken"), "a line without calls is skipped");
    }

    #[test]
    fn the_measurements_own_commands_do_not_count() {
        assert_eq!(workload_calls(&parse_commandstats(SAMPLE)), 132);
    }

    #[test]
    fn memory_fields_are_read() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n";
        assert_eq!(field(info, "used_memory"), Some(1_048_576));
        assert_eq!(field(info, "used_memory_peak"), None);
    }
}
