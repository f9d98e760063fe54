//! The table printed at the end of a measurement.

use crate::model::Run;

pub fn header() -> String {
    format!(
        "{:<8} {:<8} {:>3} {:>9} {:>8} {:>8} {:>7} {:>9} {:>29} {:<14} {}",
        "server",
        "scenario",
        "rep",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "redis/req",
        "CPU µs/req repl/redis/lb/gen",
        "spread",
        "bottleneck"
    )
}

pub fn line(r: &Run) -> String {
    let spread = if r.requests_per_replica.len() > 1 {
        let total: u64 = r.requests_per_replica.iter().sum::<u64>().max(1);
        r.requests_per_replica
            .iter()
            .map(|n| format!("{:.0}", *n as f64 * 100.0 / total as f64))
            .collect::<Vec<_>>()
            .join("/")
            + "%"
    } else {
        "-".into()
    };
    let c = &r.cpu_us_per_request;
    let arm = match r.experiment {
        Some(e) => format!("  [{}: {}]", e.name(), r.variant().describe(r.server)),
        None => String::new(),
    };
    format!(
        "{:<8} {:<8} {:>3} {:>9.0} {:>8.2} {:>8.2} {:>7} {:>9} {:>29} {:<14} {}{}{arm}",
        r.server.name(),
        r.scenario.name(),
        r.replicas,
        r.rps,
        r.latency_ms.p50,
        r.latency_ms.p99,
        r.errors,
        r.redis_commands_per_request
            .map_or("-".into(), |v| format!("{v:.2}")),
        [c.replicas, c.redis, c.lb, c.loadgen]
            .map(|v| v.map_or("?".into(), |v| format!("{v:.1}")))
            .join("/"),
        spread,
        r.bottleneck.map_or("-", |b| b.name()),
        if r.oversubscribed {
            " (oversubscribed)"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_spread_and_marks() {
        let r = Run {
            replicas: 2,
            rps: 1234.4,
            requests_per_replica: vec![300, 100],
            bottleneck: Some(crate::model::Bottleneck::Loadgen),
            oversubscribed: true,
            ..Run::new(
                crate::model::ServerKind::Token,
                crate::model::Scenario::Read,
            )
        };
        let l = line(&r);
        assert!(l.contains("75/25%"), "{l}");
        assert!(l.contains("loadgen (oversubscribed)"), "{l}");
        assert!(l.contains(" 1234 "), "{l}");
    }
}
