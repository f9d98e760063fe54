//! Report sections for the experiments that show what the throughput numbers hide.

use super::svg::{bar_chart, fmt_num};
use super::{row, Section, Table};
use crate::results::{Results, Run};

fn spread_text(r: &Run) -> String {
    let total: u64 = r.requests_per_replica.iter().sum();
    if total == 0 {
        return "-".into();
    }
    r.requests_per_replica
        .iter()
        .map(|n| format!("{:.0}%", *n as f64 * 100.0 / total as f64))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn error_rate(r: &Run) -> f64 {
    if r.requests == 0 {
        0.0
    } else {
        r.errors as f64 * 100.0 / r.requests as f64
    }
}

pub fn shared_store(results: &Results) -> Option<Section> {
    let runs: Vec<&Run> = results
        .runs
        .iter()
        .filter(|r| r.experiment.as_deref() == Some("shared-store"))
        .collect();
    if runs.is_empty() {
        return None;
    }
    let rows = runs
        .iter()
        .map(|r| {
            row(&[
                r.variant.clone().unwrap_or_default(),
                r.replicas.to_string(),
                r.requests.to_string(),
                r.errors.to_string(),
                format!("{}%", fmt_num(error_rate(r))),
                spread_text(r),
            ])
        })
        .collect();
    let cats: Vec<String> = runs
        .iter()
        .map(|r| r.variant.clone().unwrap_or_default())
        .collect();
    let chart = bar_chart(
        "Failed requests by session store and routing",
        "% of requests",
        &cats,
        &[(
            "failed %".into(),
            runs.iter().map(|r| error_rate(r)).collect(),
        )],
        false,
    );
    let find = |v: &str| {
        runs.iter()
            .find(|r| r.variant.as_deref() == Some(v))
            .copied()
    };
    let mut reading = Vec::new();
    if let Some(r) = find("memory store, round robin") {
        reading.push(format!(
            "With sessions in each replica's memory and round-robin balancing, {}% of requests failed: a request \
             that lands on a replica other than the one where its user logged in finds no session there.",
            fmt_num(error_rate(r))
        ));
    }
    if let Some(r) = find("memory store, sticky") {
        reading.push(format!(
            "Sticky routing (every request of a client goes to the same replica) brought failures to {}%, and the \
             replicas got {} of the requests: stickiness works, but the load is only as even as the hash of the \
             clients, and a replica that goes away takes its users' sessions with it.",
            fmt_num(error_rate(r)),
            spread_text(r)
        ));
    }
    if let Some(r) = find("Redis store, round robin") {
        reading.push(format!(
            "With the sessions in Redis, round robin worked with {}% failures: any replica can serve any session, \
             at the price of one Redis read per request ({} measured).",
            fmt_num(error_rate(r)),
            r.redis_commands_per_request.map_or("-".into(), fmt_num)
        ));
    }
    Some(Section {
        id: "shared-store",
        title: "Why replicas need a shared session store".into(),
        method: format!(
            "The session server's read scenario three times behind nginx: sessions kept in each replica's memory with \
             round-robin routing; the same with sticky routing (nginx `{}` on a per-client id the load generator \
             sends); and sessions in Redis with round robin.",
            crate::compare::STICKY
        ),
        charts: vec![("shared-store.svg".into(), chart)],
        table: Some(Table {
            headers: ["variant", "replicas", "requests", "failed", "failed %", "requests per replica"]
                .map(String::from)
                .to_vec(),
            rows,
        }),
        reading,
    })
}
