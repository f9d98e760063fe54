//! Report sections for the store beyond one machine: a Redis Cluster instead of one Redis
//! (`store-cluster`: where the plateau moves, what a failover costs) and the store behind a
//! network round trip (`store-latency`). The verdicts on S3, S4 and T1 read the same
//! figures through the helpers here.

use std::collections::BTreeMap;

use super::experiments::{fault_section, kept_text, server_arm};
use super::svg::{fmt_num, line_chart_with, LineOptions, Series};
use super::{bottleneck_text, num_or, row, us, Chart, Section, Table};
use crate::model::{Bottleneck, Experiment, Results, Run, ServerKind};

/// One model's best run with one Redis on a budget (`store-bound`) and with the cluster
/// whose primaries each had that budget (`store-cluster`, no fault).
pub(super) struct Plateau<'a> {
    pub single: &'a Run,
    pub cluster: &'a Run,
}

fn best<'a>(runs: impl Iterator<Item = &'a Run>) -> Option<&'a Run> {
    runs.max_by(|a, b| a.rps.total_cmp(&b.rps))
}

fn cluster_sweep(results: &Results, server: ServerKind) -> Vec<&Run> {
    let mut v: Vec<&Run> = results
        .experiment(Experiment::StoreCluster)
        .into_iter()
        .filter(|r| r.server == server && r.fault.is_none())
        .collect();
    v.sort_by_key(|r| r.replicas);
    v
}

fn single_sweep(results: &Results, server: ServerKind) -> Vec<&Run> {
    let mut v: Vec<&Run> = results
        .experiment(Experiment::StoreBound)
        .into_iter()
        .filter(|r| r.server == server)
        .collect();
    v.sort_by_key(|r| r.replicas);
    v
}

pub(super) fn plateau(results: &Results, server: ServerKind) -> Option<Plateau<'_>> {
    Some(Plateau {
        single: best(single_sweep(results, server).into_iter())?,
        cluster: best(cluster_sweep(results, server).into_iter())?,
    })
}

/// The failover runs (a primary killed), in the order they ran.
pub(super) fn failovers(results: &Results) -> Vec<&Run> {
    results
        .experiment(Experiment::StoreCluster)
        .into_iter()
        .filter(|r| r.fault.is_some())
        .collect()
}

/// One model's `store-latency` runs with the least and the most delay.
pub(super) fn latency_ends(results: &Results, server: ServerKind) -> Option<(&Run, &Run)> {
    let mut v: Vec<&Run> = results
        .experiment(Experiment::StoreLatency)
        .into_iter()
        .filter(|r| r.server == server && r.setup.store_delay_ms.is_some())
        .collect();
    v.sort_by(|a, b| {
        a.setup
            .store_delay_ms
            .unwrap_or(0.0)
            .total_cmp(&b.setup.store_delay_ms.unwrap_or(0.0))
    });
    let (near, far) = (*v.first()?, *v.last()?);
    (far.setup.store_delay_ms > near.setup.store_delay_ms).then_some((near, far))
}

/// How much longer a median request took with the store far away than near.
pub(super) fn p50_added_ms(near: &Run, far: &Run) -> f64 {
    far.latency_ms.p50 - near.latency_ms.p50
}

/// Where a plateau went: "moved from A to B req/s (Nx)", or "stayed at about A req/s" when
/// the two are within a tenth of each other (a round's spread is larger than that).
fn moved(from: f64, to: f64) -> String {
    if from > 0.0 && (to / from - 1.0).abs() < 0.1 {
        format!(
            "stayed where it was ({} req/s with one Redis, {} with the cluster)",
            fmt_num(from),
            fmt_num(to)
        )
    } else {
        format!(
            "moved from {} req/s with one Redis to {} with the cluster ({}x)",
            fmt_num(from),
            fmt_num(to),
            fmt_num(to / from.max(f64::MIN_POSITIVE))
        )
    }
}

fn redis_bound(r: &Run) -> bool {
    r.bottleneck == Some(Bottleneck::Redis)
}

pub fn store_cluster(results: &Results) -> Option<Section> {
    let servers = [ServerKind::Session, ServerKind::Token];
    if servers
        .iter()
        .all(|s| cluster_sweep(results, *s).is_empty())
    {
        return None;
    }
    let primaries = results
        .experiment(Experiment::StoreCluster)
        .iter()
        .find_map(|r| r.setup.redis_primaries)
        .unwrap_or(3);
    let budget = results
        .experiment(Experiment::StoreCluster)
        .iter()
        .find_map(|r| r.setup.redis_cpus);
    let mut series = Vec::new();
    let mut rows = Vec::new();
    let mut reading = Vec::new();
    for server in servers {
        let (single, cluster) = (
            single_sweep(results, server),
            cluster_sweep(results, server),
        );
        for (runs, store) in [(&single, "one Redis"), (&cluster, "cluster")] {
            if runs.is_empty() {
                continue;
            }
            let mut line = Series::line(
                format!("{} read, {store}", server.name()),
                runs.iter()
                    .map(|r| (f64::from(r.replicas), r.rps))
                    .collect(),
            );
            if store == "cluster" {
                line = line.dashed();
            }
            line.marked = runs.iter().map(|r| redis_bound(r)).collect();
            series.push(line);
            for r in runs.iter() {
                rows.push(row(&[
                    server.name().into(),
                    if store == "cluster" {
                        format!(
                            "Redis Cluster, {} primaries",
                            r.setup.redis_primaries.unwrap_or(primaries)
                        )
                    } else {
                        "one Redis".into()
                    },
                    r.replicas.to_string(),
                    fmt_num(r.rps),
                    num_or(r.redis_commands_per_request, "not seen"),
                    us(r.cpu_us_per_request.redis),
                    r.cpu_cores_used.redis.map_or("not visible".into(), fmt_num),
                    bottleneck_text(r),
                ]));
            }
        }
        let Some(p) = plateau(results, server) else {
            continue;
        };
        let (s, c) = (p.single, p.cluster);
        // Where one Redis ran out, at any replica count, is what the cluster is for; the
        // best run itself may be from before that point.
        let single_ran_out: Vec<String> = single
            .iter()
            .filter(|r| redis_bound(r))
            .map(|r| r.replicas.to_string())
            .collect();
        let verdict = match (
            !single_ran_out.is_empty(),
            cluster.iter().any(|r| redis_bound(r)),
        ) {
            (true, false) => format!(
                "One Redis was the bottleneck (at {} replicas); the cluster never was (its best run was limited by: \
                 {}): the ceiling rose from {} req/s to at least {} ({}x; how high the cluster goes was not \
                 reached here).",
                single_ran_out.join(", "),
                bottleneck_text(c),
                fmt_num(s.rps),
                fmt_num(c.rps),
                fmt_num(c.rps / s.rps.max(f64::MIN_POSITIVE))
            ),
            (true, true) => format!(
                "Both stores ran out: the plateau {} with {primaries} primaries.",
                moved(s.rps, c.rps)
            ),
            (false, _) => format!(
                "One Redis was never its bottleneck here (its best run was limited by: {}), so the cluster had no \
                 plateau to move: {} req/s with one Redis, {} with the cluster.",
                bottleneck_text(s),
                fmt_num(s.rps),
                fmt_num(c.rps)
            ),
        };
        // The best runs can be at different replica counts: the largest count both ran
        // says what the cluster did for the same servers.
        let same_count = single
            .iter()
            .rev()
            .find_map(|a| Some((*a, *cluster.iter().find(|b| b.replicas == a.replicas)?)))
            .filter(|(a, b)| (a.replicas, b.replicas) != (s.replicas, c.replicas))
            .map_or(String::new(), |(a, b)| {
                format!(
                    " With {} replicas: {} req/s with one Redis (limited by: {}), {} with the cluster (limited by: {}).",
                    a.replicas,
                    fmt_num(a.rps),
                    bottleneck_text(a),
                    fmt_num(b.rps),
                    bottleneck_text(b)
                )
            });
        // The cluster client is not free for the replicas either.
        let replica_cost = match (s.cpu_us_per_request.replicas, c.cpu_us_per_request.replicas) {
            (Some(a), Some(b)) if a > 0.0 => format!(
                " The replicas spent {} per request with one Redis and {} with the cluster{}.",
                us(Some(a)),
                us(Some(b)),
                if b > 1.1 * a {
                    ": the cluster's client, which routes every command by its key's hash slot, costs them more"
                } else {
                    ""
                }
            ),
            _ => String::new(),
        };
        let asks_store = s.redis_commands_per_request.unwrap_or(0.0) >= 0.01;
        let cost = match (s.cpu_us_per_request.redis, c.cpu_us_per_request.redis) {
            (Some(a), Some(b)) if a > 0.0 && asks_store => format!(
                " Per request, the store spent {} of CPU with one Redis and {} summed over the cluster's primaries \
                 ({}x): a request still asks one primary, and the cluster adds its own bookkeeping.",
                us(Some(a)),
                us(Some(b)),
                fmt_num(b / a)
            ),
            (Some(a), Some(b)) => format!(
                " These reads never ask the store: what it spent ({} per request with one Redis, {} over the \
                 cluster's primaries) is its own upkeep, such as the primaries' messages to each other.",
                us(Some(a)),
                us(Some(b))
            ),
            _ => String::new(),
        };
        reading.push(format!(
            "{} reads: best {} req/s at {} replicas with one Redis, {} at {} replicas with the cluster. \
             {verdict}{same_count}{cost}{replica_cost}",
            server.name(),
            fmt_num(s.rps),
            s.replicas,
            fmt_num(c.rps),
            c.replicas,
        ));
    }
    let opts = LineOptions {
        marked_means: Some("hollow: Redis saturated (at its budget)".into()),
        ..LineOptions::default()
    };
    Some(Section {
        reading,
        method: format!(
            "The store-bound sweep (the read scenario at every swept replica count) again, with the single Redis \
             replaced by a Redis Cluster of {primaries} primaries: real redis-server processes on this machine, joined \
             by `redis-cli --cluster create`; the servers reach it through REDIS_CLUSTER_NODES. Each primary was held \
             to {} CPU during the window, the single Redis's budget, so the cluster had {primaries} times the store's \
             CPU. Every key of a user is in the user's hash slot (README, \"Redis Cluster\"), so users spread over the \
             primaries. Both runs happened on one machine: the cluster's primaries share its CPUs with everything else, \
             which a cluster of separate machines would not.",
            budget.map_or("a small share of a".into(), fmt_num)
        ),
        charts: vec![Chart::new(
            "store-cluster.svg",
            "Compare each model's solid line (one Redis) with its dashed line (a cluster).",
            line_chart_with(
                "Requests per second: one Redis (solid) against a Redis Cluster (dashed), each primary on the same budget",
                "replicas",
                "requests per second",
                &series,
                &opts,
            ),
        )],
        table: Some(Table::new(
            &[
                "model",
                "store",
                "replicas",
                "req/s",
                "Redis commands per request",
                "store CPU per request",
                "store CPUs busy",
                "limited by",
            ],
            rows,
        )),
        ..Section::new("store-cluster", "When one Redis is not enough: a Redis Cluster")
    })
}

pub fn store_failover(results: &Results) -> Option<Section> {
    let mut section = fault_section(
        failovers(results),
        "store-failover",
        "When a Redis Cluster primary dies",
        "The refresh scenario (reads, and a refresh every K requests) on a Redis Cluster of three primaries, each \
         with a replica. A third of the way in, the first primary is killed (SIGKILL) and its replica, seeing it gone \
         for the cluster's node timeout (1 s here), takes over its slots; the time it said it was a primary is \
         recorded as it happened (asked every 50 ms). Just before the kill, 60 logins made for this purpose are \
         refreshed all at once, each a write of its session or refresh-token family; once the replica has taken \
         over, each new credential is used again (asked again while the store still answers \"unavailable\", for \
         up to 10 s): refused means lost. Redis replicates asynchronously: a write the primary acknowledged but \
         had not yet passed on is gone.",
        |r| {
            let f = r.fault?;
            let mut text = format!(
                "{}: {}; {} users still logged in at the end.",
                server_arm(r),
                f.describe(),
                kept_text(r)
            );
            if let Some(fo) = r.failover {
                text.push_str(&format!(
                    " Of {} logins written {} ms before the kill ({} of them on the killed primary), {} {} lost \
                     (refused once the replica had taken over){}.",
                    fo.written,
                    fo.last_write_before_kill_ms,
                    fo.on_killed_primary,
                    fo.lost,
                    if fo.lost == 1 { "was" } else { "were" },
                    if fo.unanswered > 0 {
                        format!("; {} still got no answer 10 s after the takeover", fo.unanswered)
                    } else {
                        String::new()
                    }
                ));
            }
            Some(text)
        },
    )?;
    if let Some(t) = section.table.as_mut() {
        t.headers
            .push("logins lost / written before the kill".into());
        for (row, r) in t.rows.iter_mut().zip(failovers(results)) {
            row.push(r.failover.map_or("not counted".into(), |f| {
                format!("{} / {}", f.lost, f.written)
            }));
        }
    }
    Some(section)
}

pub fn store_latency(results: &Results) -> Option<Section> {
    let runs = results.experiment(Experiment::StoreLatency);
    if runs.is_empty() {
        return None;
    }
    let mut by_server: BTreeMap<ServerKind, Vec<&Run>> = BTreeMap::new();
    for r in &runs {
        by_server.entry(r.server).or_default().push(r);
    }
    let mut series = Vec::new();
    let mut rows = Vec::new();
    for (server, v) in by_server.iter_mut() {
        v.sort_by(|a, b| {
            a.setup
                .store_delay_ms
                .unwrap_or(0.0)
                .total_cmp(&b.setup.store_delay_ms.unwrap_or(0.0))
        });
        series.push(Series::line(
            format!("{} read, median", server.name()),
            v.iter()
                .map(|r| (r.setup.store_delay_ms.unwrap_or(0.0), r.latency_ms.p50))
                .collect(),
        ));
        for r in v.iter() {
            rows.push(row(&[
                server.name().into(),
                num_or(r.setup.store_delay_ms, "-"),
                num_or(r.store_rtt_ms, "not measured"),
                r.users().to_string(),
                fmt_num(r.rps),
                fmt_num(r.latency_ms.p50),
                fmt_num(r.latency_ms.p99),
                num_or(r.redis_commands_per_request, "not seen"),
                bottleneck_text(r),
            ]));
        }
    }
    let mut reading = Vec::new();
    for server in [ServerKind::Session, ServerKind::Token] {
        let Some((near, far)) = latency_ends(results, server) else {
            continue;
        };
        reading.push(format!(
            "{} reads: with the store {} ms away each way (a measured round trip of {} ms), the median request took {} \
             ms against {} ms with the proxy adding nothing ({}{} ms); {} against {} req/s with {} users. Each read \
             asked the store {} times.",
            server.name(),
            fmt_num(far.setup.store_delay_ms.unwrap_or(0.0)),
            num_or(far.store_rtt_ms, "?"),
            fmt_num(far.latency_ms.p50),
            fmt_num(near.latency_ms.p50),
            if p50_added_ms(near, far) >= 0.0 { "+" } else { "" },
            fmt_num(p50_added_ms(near, far)),
            fmt_num(far.rps),
            fmt_num(near.rps),
            far.users(),
            num_or(far.redis_commands_per_request, "an unseen number of")
        ));
    }
    Some(Section {
        reading,
        method: "The read scenario of both models at the sweep's smallest replica count with few users and no CPU \
                 budget (so that a request's time is its work and its round trips, not a queue or a quota period), \
                 the replicas reaching Redis through a TCP proxy of this \
                 project's own that holds every chunk of bytes for the given time in each direction. It stands in for \
                 a network: this machine's kernel has no netem, and all processes run on one machine. The proxy loses \
                 and reorders nothing, and its own cost is in every arm (0 ms is the proxy alone). The round trip is a \
                 Redis PING through the proxy, measured before each run (median of 50). A token read never asks the \
                 store; only login and refresh do."
            .into(),
        charts: vec![Chart::new(
            "store-latency.svg",
            "Compare the slopes: how much a read slows per millisecond of distance to the store.",
            line_chart_with(
                "Median read latency against the store's distance",
                "delay added each way (ms)",
                "median latency (ms)",
                &series,
                &LineOptions {
                    numeric_x: true,
                    ..LineOptions::default()
                },
            ),
        )],
        table: Some(Table::new(
            &[
                "model",
                "delay each way (ms)",
                "measured round trip (ms)",
                "users",
                "req/s",
                "p50 ms",
                "p99 ms",
                "Redis commands per request",
                "limited by",
            ],
            rows,
        )),
        ..Section::new("store-latency", "When the store is across a network")
    })
}
