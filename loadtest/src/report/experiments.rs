//! Report sections for the experiments that show what the throughput numbers hide. Each
//! says what it found first, then how.

use std::collections::BTreeMap;

use super::figures::{FaultImpact, BACK_SHARE};
use super::svg::{bar_chart, fmt_num, line_chart_with, LineOptions, Series};
use super::{bottleneck_text, row, us, Chart, Section, Table};
use crate::model::{
    Bottleneck, Experiment, MemoryPoint, Mode, Phase, Results, Run, Scenario, ServerKind, Variant,
};

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

/// Failed requests, in percent.
fn error_rate(r: &Run) -> f64 {
    r.error_rate() * 100.0
}

/// The arm with the server named.
pub(super) fn server_arm(r: &Run) -> String {
    format!("{}, {}", r.server.name(), r.variant().describe(r.server))
}

/// Whether two runs were bound by the same thing, so their throughputs compare.
fn comparable(a: &Run, b: &Run) -> bool {
    a.bottleneck == b.bottleneck && a.cpus_per_replica == b.cpus_per_replica
}

/// Why two runs' throughputs do not compare, if they do not.
fn not_comparable(a: &Run, b: &Run) -> Option<String> {
    (!comparable(a, b)).then(|| {
        format!(
            "the two runs were not bound by the same thing ({} against {}), so their throughputs are not compared",
            bottleneck_text(a),
            bottleneck_text(b)
        )
    })
}

/// Users still logged in at the end of a run, of those who started it.
pub(super) fn users_kept(r: &Run) -> Option<(u32, u32)> {
    r.users_logged_out
        .map(|out| (r.users().saturating_sub(out), r.users()))
}

pub(super) fn kept_text(r: &Run) -> String {
    users_kept(r).map_or("not counted".into(), |(k, n)| format!("{k} of {n}"))
}

pub fn store_bound(results: &Results) -> Option<Section> {
    let e = Experiment::StoreBound;
    let mut by_server: BTreeMap<ServerKind, Vec<&Run>> = BTreeMap::new();
    for r in results.experiment(e) {
        by_server.entry(r.server).or_default().push(r);
    }
    if by_server.is_empty() {
        return None;
    }
    for runs in by_server.values_mut() {
        runs.sort_by_key(|r| r.replicas);
    }
    let budget = results
        .experiment(e)
        .iter()
        .find_map(|r| r.setup.redis_cpus);
    let mut series = Vec::new();
    let mut rows = Vec::new();
    let mut reading = Vec::new();
    for (server, runs) in &by_server {
        let mut line = Series::line(
            format!("{} read", server.name()),
            runs.iter()
                .map(|r| (f64::from(r.replicas), r.rps))
                .collect(),
        );
        line.marked = runs
            .iter()
            .map(|r| r.bottleneck == Some(Bottleneck::Redis))
            .collect();
        series.push(line);
        for r in runs {
            rows.push(row(&[
                server.name().into(),
                r.replicas.to_string(),
                fmt_num(r.rps),
                super::num_or(r.redis_commands_per_request, "not seen"),
                r.cpu_cores_used.redis.map_or("not visible".into(), fmt_num),
                r.redis_throttled
                    .map_or("-".into(), |t| format!("{}%", fmt_num(t * 100.0))),
                bottleneck_text(r),
            ]));
        }
        let (first, last) = (runs[0], runs[runs.len() - 1]);
        if last.replicas > first.replicas && first.rps > 0.0 {
            let redis_bound: Vec<String> = runs
                .iter()
                .filter(|r| r.bottleneck == Some(Bottleneck::Redis))
                .map(|r| r.replicas.to_string())
                .collect();
            // A peak before the last count: say so, the ratio alone would hide it.
            let peak = runs
                .iter()
                .copied()
                .max_by(|a, b| a.rps.total_cmp(&b.rps))
                .filter(|p| p.replicas != last.replicas && p.replicas != first.replicas)
                .map_or(String::new(), |p| {
                    format!(
                        " It peaked at {} replicas ({} req/s) and fell after.",
                        p.replicas,
                        fmt_num(p.rps)
                    )
                });
            reading.push(format!(
                "{}: {} req/s with {} replica{}, {} with {} ({}x).{peak}{}",
                server.name(),
                fmt_num(first.rps),
                first.replicas,
                if first.replicas == 1 { "" } else { "s" },
                fmt_num(last.rps),
                last.replicas,
                fmt_num(last.rps / first.rps),
                if redis_bound.is_empty() {
                    " Redis was never its bottleneck.".to_string()
                } else {
                    format!(
                        " Redis, on its budget, was the bottleneck at {} replicas: every request waited for the one \
                         store.",
                        redis_bound.join(", ")
                    )
                }
            ));
        }
    }
    // In scale: what one whole Redis core serves of session reads, from the sweep (the
    // same figure the CPU section gives, with its spread).
    if let Some(redis_us) =
        super::figures::cpu_us(results, ServerKind::Session, |c| c.redis).filter(|f| f.lo > 0.0)
    {
        let core = redis_us.map(|us| 1e6 / us);
        let best = results
            .sweep(ServerKind::Session, Scenario::Read)
            .iter()
            .map(|r| r.rps)
            .fold(0.0, f64::max);
        reading.push(format!(
            "With no budget (the sweep), Redis spent {} per session read: one Redis core would serve about {} \
             session reads/s{}. {}",
            redis_us.text("µs"),
            core.text(""),
            budget.map_or(String::new(), |b| format!(
                ", and about {} at the {} CPU it had here",
                core.map(|c| c * b).text(""),
                fmt_num(b)
            )),
            if core.lo > 2.0 * best {
                format!(
                    "The sweep reached {} req/s: without a budget the store would not be the limit here.",
                    fmt_num(best)
                )
            } else {
                format!(
                    "The sweep's replicas reached {} req/s, close to that: the store is near its limit here even \
                     without a budget.",
                    fmt_num(best)
                )
            }
        ));
    }
    let opts = LineOptions {
        marked_means: Some("hollow: Redis saturated (at its budget)".into()),
        ..LineOptions::default()
    };
    Some(Section {
        reading,
        method: format!(
            "The read scenario of both models at every swept replica count, with Redis held to {} CPU during the \
             window (a cgroup quota, like the replicas' budget) so that the store, not the machine, runs out first. The \
             replicas keep the sweep's budget.",
            budget.map_or("a small share of a".into(), fmt_num)
        ),
        charts: vec![Chart::new(
            "store-bound.svg",
            "Look for a line that flattens as replicas are added: that model's store ran out.",
            line_chart_with(
                "Requests per second with Redis on a small CPU budget",
                "replicas",
                "requests per second",
                &series,
                &opts,
            ),
        )],
        table: Some(Table::new(
            &[
                "model",
                "replicas",
                "req/s",
                "Redis commands per request",
                "Redis CPUs busy",
                "quota periods Redis was held back in",
                "limited by",
            ],
            rows,
        )),
        ..Section::new("store-bound", "When the session store is the limit")
    })
}

pub fn shared_store(results: &Results) -> Option<Section> {
    let runs = results.experiment(Experiment::SharedStore);
    if runs.is_empty() {
        return None;
    }
    let arm = |r: &Run| r.variant().describe(r.server).to_string();
    let rows = runs
        .iter()
        .map(|r| {
            row(&[
                arm(r),
                r.replicas.to_string(),
                r.requests.to_string(),
                r.errors.to_string(),
                format!("{}%", fmt_num(error_rate(r))),
                spread_text(r),
            ])
        })
        .collect();
    let cats: Vec<String> = runs.iter().map(|r| arm(r)).collect();
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
    let find = |v| results.arm(Experiment::SharedStore, ServerKind::Session, v);
    let mut reading = Vec::new();
    if let Some(r) = find(Variant::MemoryStore) {
        reading.push(format!(
            "Sessions in each replica's memory, round robin: {}% of requests failed (a request on another replica \
             than the login's finds no session).",
            fmt_num(error_rate(r))
        ));
    }
    if let Some(r) = find(Variant::MemoryStoreSticky) {
        reading.push(format!(
            "Sticky routing (a client always on the same replica): {}% failed, the replicas got {} of the requests; \
             a replica that goes away takes its users' sessions with it.",
            fmt_num(error_rate(r)),
            spread_text(r)
        ));
    }
    if let Some(r) = find(Variant::Standard) {
        reading.push(format!(
            "Sessions in Redis, round robin: {}% failed; any replica serves any session, for {} Redis commands per \
             request.",
            fmt_num(error_rate(r)),
            super::num_or(r.redis_commands_per_request, "not seen")
        ));
    }
    Some(Section {
        reading,
        method: format!(
            "The session server's read scenario three times behind nginx: sessions kept in each replica's memory with \
             round-robin routing; the same with sticky routing ({} on a per-client id the load generator sends); and \
             sessions in Redis with round robin.",
            results
                .environment
                .config
                .get("sticky_routing")
                .map_or("nginx hashing", String::as_str)
        ),
        charts: vec![Chart::new(
            "shared-store.svg",
            "Compare the failed share of each set-up.",
            chart,
        )],
        table: Some(Table::new(
            &["variant", "replicas", "requests", "failed", "failed %", "requests per replica"],
            rows,
        )),
        ..Section::new("shared-store", "Why replicas need a shared session store")
    })
}

/// Requests answered and failed per second of one run's timeline, at the timeline's own
/// resolution, named by the run's model so that it keeps the model's colour.
fn timeline_series(r: &Run) -> Vec<Series> {
    let step = if r.timeline_step_s > 0.0 {
        r.timeline_step_s
    } else {
        1.0
    };
    let mut per: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for p in &r.timeline {
        let e = per.entry((p.t_s / step).round() as i64).or_default();
        e.0 += p.ok;
        e.1 += p.failed;
    }
    // Every step of the window, a step in which nothing was sent drawn as 0.
    let steps = ((r.duration_s / step).round() as i64).max(per.keys().max().map_or(0, |k| k + 1));
    let pts = |failed: bool| -> Vec<(f64, f64)> {
        (0..steps)
            .map(|k| {
                let (ok, f) = per.get(&k).copied().unwrap_or_default();
                let n = if failed { f } else { ok };
                (k as f64 * step, n as f64 / step)
            })
            .collect()
    };
    vec![
        Series::line(format!("{}: answered", server_arm(r)), pts(false)),
        Series::line(format!("{}: failed", server_arm(r)), pts(true)).dashed(),
    ]
}

/// "back after 3.1 s", or that it never was.
pub(super) fn back_text(f: &FaultImpact) -> String {
    match f.back_after_s {
        Some(s) if s < f.run.timeline_step_s => "never down".into(),
        Some(s) => format!("{} s", fmt_num(s)),
        None => "not by the end".into(),
    }
}

/// Which model kept serving, per set-up: the answered rate during the fault as a share of
/// before, side by side.
fn kept_serving(impacts: &[FaultImpact]) -> Option<String> {
    let parts: Vec<String> = impacts
        .iter()
        .map(|f| {
            // Under a tenth of the rate before, users saw a service that had stopped.
            let verb = match f.during_share {
                Some(s) if s < 0.1 => "stopped serving",
                Some(_) => "kept serving",
                None => "not seen",
            };
            format!(
                "{} {verb} ({})",
                server_arm(f.run),
                FaultImpact::share_text(f.during_share),
            )
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "During the fault (answered, share of before): {}.",
            parts.join("; ")
        )
    })
}

/// A section for runs with a fault: what users lived (answered requests per second before,
/// during and after, as a share of before; who stayed logged in; how long until service
/// was back), and a timeline per set-up with both models on one chart, at the timeline's
/// resolution, every chart on the same y axis.
pub(super) fn fault_section(
    runs: Vec<&Run>,
    id: &'static str,
    title: &str,
    method: &str,
    read: impl Fn(&Run) -> Option<String>,
) -> Option<Section> {
    if runs.is_empty() {
        return None;
    }
    let impacts: Vec<FaultImpact> = runs.iter().filter_map(|r| FaultImpact::of(r)).collect();
    // One chart per set-up (variant), the models side by side on it.
    let mut groups: Vec<(crate::model::Variant, Vec<&Run>)> = Vec::new();
    for r in &runs {
        match groups.iter_mut().find(|(v, _)| *v == r.variant()) {
            Some((_, g)) => g.push(r),
            None => groups.push((r.variant(), vec![r])),
        }
    }
    let series: Vec<Vec<Series>> = groups
        .iter()
        .map(|(_, g)| g.iter().flat_map(|r| timeline_series(r)).collect())
        .collect();
    let y_max = super::svg::nice_max(
        series
            .iter()
            .map(|s| super::svg::max_y(s))
            .fold(0.0, f64::max),
    );
    let charts = groups
        .iter()
        .zip(&series)
        .enumerate()
        .map(|(i, ((v, g), series))| {
            let fault = g[0].fault.map(|f| f.describe()).unwrap_or_default();
            let opts = LineOptions {
                numeric_x: true,
                band: g[0].fault.map(|f| (f.at_s, f.ended_s(), fault.clone())),
                y_max: Some(y_max),
                ..LineOptions::default()
            };
            Chart::new(
                format!("{id}-{}.svg", i + 1),
                format!(
                    "{}: look at the solid lines in the shaded span; one that drops to zero stopped serving, one \
                     that dips kept serving (same y axis on every chart here).",
                    v.describe(g[0].server)
                ),
                line_chart_with(
                    &format!("{}: requests per second, in steps of {} s", v.describe(g[0].server), fmt_num(g[0].timeline_step_s)),
                    "seconds into the window (by when each request was sent)",
                    "requests per second",
                    series,
                    &opts,
                ),
            )
        })
        .collect();
    let rows = impacts
        .iter()
        .map(|f| {
            let r = f.run;
            row(&[
                server_arm(r),
                fmt_num(f.before_rps),
                FaultImpact::share_text(f.during_share),
                FaultImpact::share_text(f.after_share),
                r.failed_in(None, Phase::During).to_string(),
                kept_text(r),
                back_text(f),
            ])
        })
        .collect();
    // The fault as it happened, once (every arm's is in its chart).
    let mut reading: Vec<String> = runs
        .first()
        .and_then(|r| r.fault)
        .map(|f| format!("Fault (first arm): {}.", f.describe()))
        .into_iter()
        .collect();
    reading.extend(kept_serving(&impacts));
    reading.extend(runs.iter().filter_map(|r| read(r)));
    Some(Section {
        reading,
        method: format!(
            "{method} Before, during and after are by when each request was sent, in steps of the timeline (0.1 s), \
             against the times the fault was really injected and lifted; a request sent just before the fault can \
             still fail, because it was in flight when the fault hit. \"Answered\" counts successful answers per \
             second; \"back\" is the first moment from the fault on after which half a second ran at {}% of the rate \
             before. A user counts as logged out once a request with their credential was answered 401: their app \
             would have to ask them to log in again.",
            (BACK_SHARE * 100.0).round()
        ),
        charts,
        table: Some(Table::new(
            &[
                "arm",
                "answered/s before",
                "during, share of before",
                "after, share of before",
                "failed, sent during",
                "users still logged in",
                "back after",
            ],
            rows,
        )),
        ..Section::new(id, title)
    })
}

pub fn redis_outage(results: &Results) -> Option<Section> {
    fault_section(
        results.experiment(Experiment::RedisOutage),
        "redis-outage",
        "When Redis stops answering",
        &format!(
            "The refresh scenario (reads, and a refresh every K requests) while Redis is frozen ({}) for a third of \
             the window and then thawed; nothing is restarted. Each arm ran with the contract's retry grace \
             (REFRESH_REUSE_INTERVAL, a retried credential is answered as its successor) and without it.",
            match results.environment.mode {
                Mode::Compose => "its container paused by the Docker Engine, which freezes its cgroup as SIGSTOP \
                                  freezes a process, then unpaused",
                _ => "SIGSTOP, then SIGCONT",
            }
        ),
        |r| {
            let refused = r.refused_in(None, Phase::After);
            let slowed = FaultImpact::of(r)
                .and_then(|f| f.during_share)
                .is_some_and(|s| s < BACK_SHARE);
            let mut text = Vec::new();
            if r.server == ServerKind::Token && slowed && r.variant() == Variant::Standard {
                text.push(format!(
                    "{}: a token read never asks Redis ({} of them failed), yet fewer were answered, because each user \
                     whose access token expired waited on a refresh, which does ({} refreshes failed).",
                    server_arm(r),
                    r.failed_in(Some("/api/me"), Phase::During) + r.failed_in(Some("/api/items"), Phase::During),
                    r.failed_in(Some("/auth/refresh"), Phase::During)
                ));
            }
            if refused > 0 {
                text.push(format!(
                    "{}: {refused} requests were refused with 401 after Redis came back: a refresh cut off by the freeze \
                     had been rotated in Redis, but its answer never reached the client, which retried with the \
                     credential just replaced{}.",
                    server_arm(r),
                    if r.variant() == Variant::NoRetryGrace {
                        "; without the retry grace, that retry is reuse, and the login ends"
                    } else {
                        ""
                    }
                ));
            }
            (!text.is_empty()).then(|| text.join(" "))
        },
    )
}

pub fn replica_loss(results: &Results) -> Option<Section> {
    fault_section(
        results.experiment(Experiment::ReplicaLoss),
        "replica-loss",
        "When a replica dies",
        &format!(
            "The refresh scenario on two replicas; a third of the way in, replica 1 is killed ({}) and stays dead. \
             nginx sends its traffic to the survivor. (requests_per_replica counts nothing for the dead replica: it \
             can no longer be asked.)",
            match results.environment.mode {
                Mode::Compose => "its container killed by the Docker Engine, SIGKILL, its restart policy switched off \
                                  first",
                _ => "SIGKILL",
            }
        ),
        |r| {
            let (kept, n) = users_kept(r)?;
            let refused = r.refused_in(None, Phase::During);
            if kept < n {
                return Some(format!(
                    "{}: {} of {n} users were logged out when replica 1 died ({refused} answers 401): their sessions \
                     lived in its memory.",
                    server_arm(r),
                    n - kept
                ));
            }
            // Said once, on the token arm: what every arm that kept its users shows.
            (r.server == ServerKind::Token && r.variant() == Variant::Standard).then(|| {
                let kept_all: Vec<&Run> = results
                    .experiment(Experiment::ReplicaLoss)
                    .into_iter()
                    .filter(|x| users_kept(x).is_some_and(|(k, n)| k == n))
                    .collect();
                let shares: Vec<f64> = kept_all
                    .iter()
                    .filter_map(|x| FaultImpact::of(x)?.during_share)
                    .collect();
                let lo = shares.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = shares.iter().copied().fold(0.0, f64::max);
                let range = format!(
                    "With one of two replicas gone, the arms that kept every user answered {} to {} of their rate \
                     before",
                    FaultImpact::share_text(Some(lo)),
                    FaultImpact::share_text(Some(hi))
                );
                if hi >= WAITED_ON_THE_DEAD {
                    return format!(
                        "{range}: capacity falls with the servers, and service does not come back to its old rate \
                         until a replica is added."
                    );
                }
                let p99: Vec<f64> = kept_all.iter().map(|x| x.latency_ms.p99 / 1000.0).collect();
                format!(
                    "{range}, far below the survivor's half: the balancer kept sending requests to the dead replica \
                     and each waited there before going on to the survivor (these runs' p99 latency: {} to {} s). {}",
                    fmt_num(p99.iter().copied().fold(f64::INFINITY, f64::min)),
                    fmt_num(p99.iter().copied().fold(0.0, f64::max)),
                    match results.environment.mode {
                        Mode::Compose => "A killed container's address stops answering instead of refusing: nginx, \
                                          which never takes a replica out of rotation (max_fails=0), waited its 1 s \
                                          connect timeout (proxy_connect_timeout) on it each time. A killed process \
                                          on one machine refuses at once, so a local run shows the survivor's \
                                          capacity instead. What users felt here is the balancer's, not the auth \
                                          model's: both models alike.",
                        _ => "What users felt here is the balancer's, not the auth model's: both models alike.",
                    }
                )
            })
        },
    )
}

/// Below this share of the rate before, a replica loss with one survivor of two says more
/// about the balancer (it waited on the dead replica) than about the lost capacity.
pub(super) const WAITED_ON_THE_DEAD: f64 = 0.25;

fn ms_text(v: Option<f64>, limit_s: u64) -> String {
    match v {
        Some(ms) if ms < 1000.0 => {
            format!("refused at once (first check, {} ms after)", fmt_num(ms))
        }
        Some(ms) => format!("still accepted for {} s", fmt_num(ms / 1000.0)),
        None => format!("still accepted when the probe gave up after {limit_s} s"),
    }
}

pub fn revocation(results: &Results) -> Option<Section> {
    let r = results.revocation.as_ref()?;
    let limit = r.access_token_ttl_s + r.leeway_s + 5;
    let mut rows = vec![
        row(&[
            "session id (cookie)".into(),
            ms_text(r.session_refused_after_ms, limit),
        ]),
        row(&[
            "access token".into(),
            ms_text(r.token_refused_after_ms, limit),
        ]),
        row(&[
            "access token, ACCESS_DENYLIST=true".into(),
            ms_text(r.denylist_refused_after_ms, limit),
        ]),
    ];
    let plain = results.first_run(ServerKind::Token, Scenario::Read);
    let deny = results.arm(Experiment::Revocation, ServerKind::Token, Variant::Denylist);
    let mut reading = vec![format!(
        "Logout deletes a session on the server, so the next request with its cookie fails. An access token is \
         checked with the key alone, so logout cannot reach it: it works until its lifetime ({} s here) plus the \
         leeway for clocks that disagree ({} s, this project's setting) have passed.",
        r.access_token_ttl_s, r.leeway_s
    )];
    if let (Some(p), Some(d)) = (plain, deny) {
        rows.push(row(&[
            "Redis commands per request, without / with denylist".into(),
            format!(
                "{} / {}",
                super::num_or(p.redis_commands_per_request, "not seen"),
                super::num_or(d.redis_commands_per_request, "not seen")
            ),
        ]));
        let mut text = format!(
            "The denylist closes the window by asking Redis on every request, as sessions do: {} Redis commands per \
             request instead of {}.",
            super::num_or(d.redis_commands_per_request, "not seen"),
            super::num_or(p.redis_commands_per_request, "not seen")
        );
        match not_comparable(p, d) {
            None => text.push_str(&format!(
                " Both runs were bound by the same thing ({}): {} req/s without it, {} with it.",
                bottleneck_text(p),
                fmt_num(p.rps),
                fmt_num(d.rps)
            )),
            Some(why) => text.push_str(&format!(" Throughput: {why}.")),
        }
        reading.push(text);
    }
    Some(Section {
        reading,
        method: format!(
            "Log in, log out, then ask GET /api/me with the old credential every 100 ms until it is refused. Access \
             tokens were issued with ACCESS_TOKEN_TTL={} s for this.",
            r.access_token_ttl_s
        ),
        table: Some(Table::new(&["credential", "after logout"], rows)),
        ..Section::new("revocation", "How long a credential works after logout")
    })
}

pub fn authority(results: &Results) -> Option<Section> {
    let a = results.authority.as_ref()?;
    let limit = a.limit_s;
    let status = |s: u16| match s {
        200 => "200 (allowed)".to_string(),
        401 => "401 (not logged in)".into(),
        403 => "403 (refused)".into(),
        0 => "-".into(),
        s => s.to_string(),
    };
    let rows = vec![
        row(&[
            "an admin demoted: the old credential on GET /api/admin/stats".into(),
            ms_text(a.demoted_session_ms, limit),
            ms_text(a.demoted_token_ms, limit),
        ]),
        row(&[
            "the same, after one refresh".into(),
            "-".into(),
            status(a.demoted_token_after_refresh_status),
        ]),
        row(&[
            "POST /auth/logout-all from another login: the first login's credential".into(),
            ms_text(a.logout_all_session_ms, limit),
            format!(
                "{}; with ACCESS_DENYLIST=true: {}",
                ms_text(a.logout_all_token_ms, limit),
                ms_text(a.logout_all_denylist_ms, limit)
            ),
        ]),
        row(&[
            "an admin's read-scoped credential: GET /api/me".into(),
            status(a.read_scope_session.read_status),
            status(a.read_scope_token.read_status),
        ]),
        row(&[
            "the read-scoped credential: GET /api/admin/stats".into(),
            status(a.read_scope_session.admin_status),
            status(a.read_scope_token.admin_status),
        ]),
        row(&[
            "the same admin's full credential: GET /api/admin/stats".into(),
            status(a.read_scope_session.full_scope_admin_status),
            status(a.read_scope_token.full_scope_admin_status),
        ]),
    ];
    let mut reading = vec![format!(
        "A session is looked up on every request, so a demotion or a logout everywhere acts on the next one. An \
         access token keeps the roles and login it was signed with until it expires ({} s lifetime + {} s leeway), \
         unless the denylist is on.",
        a.access_token_ttl_s, a.leeway_s
    )];
    let (s, t) = (
        a.read_scope_session.admin_status,
        a.read_scope_token.admin_status,
    );
    reading.push(if s == 403 && t == 403 {
        format!(
            "Limited credentials: both models' read-only credential was refused on the admin route (403). What a \
             token adds is that the limit travels inside it (scope \"{}\"), for other services to check offline.",
            a.read_scope_token_claim
        )
    } else {
        format!(
            "Limited credentials: the admin route answered the admin's read-only credential {s} on the session \
             server and {t} on the token server (scope claim \"{}\").",
            a.read_scope_token_claim
        )
    });
    Some(Section {
        reading,
        method: format!(
            "One replica of each model with an admin created at start. An admin promotes a user, the user logs in, the \
             admin demotes the user (PUT /api/admin/users/{{name}}/roles); the user's credential is then tried on the \
             admin route every 100 ms. Then a user logs in twice and the second login calls POST /auth/logout-all; the \
             first login's credential is tried on GET /api/me. Access tokens lived {} s; the probe gave up after {} s.",
            a.access_token_ttl_s, a.limit_s
        ),
        table: Some(Table::new(&["what happened", "session", "token"], rows)),
        ..Section::new("authority", "Stale roles, logging out everywhere, limited credentials")
    })
}

/// The token server's leeway, as the run recorded it.
pub(super) fn leeway_s(results: &Results) -> Option<u64> {
    results
        .revocation
        .as_ref()
        .map(|r| r.leeway_s)
        .or(results.authority.as_ref().map(|a| a.leeway_s))
        .or_else(|| results.environment.config.get("JWT_LEEWAY_S")?.parse().ok())
}

/// The lifetime runs, shortest token first.
pub(super) fn lifetime_runs(results: &Results) -> Vec<&Run> {
    let mut runs = results.experiment(Experiment::AccessTokenLifetime);
    runs.sort_by_key(|r| r.setup.access_token_ttl_s);
    runs
}

/// Refreshes per second per 1000 users.
pub(super) fn refreshes_per_1000(r: &Run) -> Option<f64> {
    Some(r.route_rps("/auth/refresh").unwrap_or(0.0) * 1000.0 / f64::from(r.users().max(1)))
        .filter(|_| !r.requests_by_route.is_empty())
}

pub fn access_token_lifetime(results: &Results) -> Option<Section> {
    let runs = lifetime_runs(results);
    if runs.is_empty() {
        return None;
    }
    let leeway = leeway_s(results);
    // Without a recorded leeway the window is not known: "-", never the lifetime alone.
    let window = |r: &Run| Some(r.setup.access_token_ttl_s? + leeway?);
    let rows = runs
        .iter()
        .map(|r| {
            row(&[
                r.setup
                    .access_token_ttl_s
                    .map_or("-".into(), |t| t.to_string()),
                window(r).map_or("-".into(), |w| w.to_string()),
                refreshes_per_1000(r).map_or("-".into(), fmt_num),
                super::num_or(r.redis_commands_per_request, "not seen"),
                kept_text(r),
            ])
        })
        .collect();
    let points: Vec<(f64, f64)> = runs
        .iter()
        .filter_map(|r| Some((window(r)? as f64, refreshes_per_1000(r)?)))
        .collect();
    let mut reading = Vec::new();
    if let (Some(short), Some(long)) = (runs.first(), runs.last()) {
        if let (Some(a), Some(b), Some(ta), Some(tb)) = (
            refreshes_per_1000(short),
            refreshes_per_1000(long),
            short.setup.access_token_ttl_s,
            long.setup.access_token_ttl_s,
        ) {
            reading.push(format!(
                "The trade-off as a curve: access tokens of {ta} s cost {} refreshes per second per 1000 users and {} \
                 Redis commands per request; tokens of {tb} s, {} refreshes and {} commands. A stolen access token \
                 works for its lifetime plus {} s of leeway, so shortening it closes the window only down to the \
                 leeway, while the refreshes (each a Redis round trip, and each a trip of the refresh token over the \
                 network) grow as one over the lifetime.",
                fmt_num(a),
                super::num_or(short.redis_commands_per_request, "not seen"),
                fmt_num(b),
                super::num_or(long.redis_commands_per_request, "not seen"),
                leeway.map_or("the server's".into(), |l| l.to_string())
            ));
        }
    }
    let out: u32 = runs.iter().filter_map(|r| r.users_logged_out).sum();
    reading.push(format!(
        "{} users were logged out across these runs: the refresh token kept every user logged in however short the \
         access token was.",
        out
    ));
    Some(Section {
        reading,
        method: format!(
            "The token refresh scenario with ACCESS_TOKEN_TTL set to {} s in turn; each user refreshes when 80% of its \
             access token's lifetime has passed (as a client watching expires_in does) and reads otherwise. The window \
             lasted at least two lifetimes of the longest token.",
            runs.iter()
                .filter_map(|r| r.setup.access_token_ttl_s)
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        charts: vec![Chart::new(
            "access-token-lifetime.svg",
            match leeway {
                Some(l) if l > 0 => format!(
                    "Read from left to right: what each shorter window costs in refreshes; no point can sit left \
                     of {l} s, the leeway."
                ),
                _ => "Read from left to right: what each shorter window costs in refreshes.".to_string(),
            },
            line_chart_with(
                "Refreshes against the revocation window",
                "seconds a stolen access token keeps working (lifetime + leeway)",
                "refreshes per second per 1000 users",
                &[Series::line("token refresh scenario", points)],
                &LineOptions {
                    numeric_x: true,
                    ..LineOptions::default()
                },
            ),
        )],
        table: Some(Table::new(
            &[
                "access-token lifetime (s)",
                "revocation window (s)",
                "refreshes per second per 1000 users",
                "Redis commands per request",
                "users still logged in",
            ],
            rows,
        )),
        ..Section::new("access-token-lifetime", "How long should an access token live?")
    })
}

/// Bytes per logged-in user between the two measured user counts, of one arm: (replica,
/// Redis).
pub(super) fn memory_slope(
    points: &[MemoryPoint],
    server: ServerKind,
    v: Variant,
) -> Option<(f64, f64)> {
    let mut arm: Vec<&MemoryPoint> = points
        .iter()
        .filter(|p| p.server == server && p.variant == v && p.logged_in > 0)
        .collect();
    arm.sort_by_key(|p| p.logged_in);
    let (a, b) = (arm.first()?, arm.last()?);
    let users = f64::from(b.logged_in.checked_sub(a.logged_in).filter(|n| *n > 0)?);
    Some((
        (b.replica_rss_bytes as f64 - a.replica_rss_bytes as f64) / users,
        (b.redis_used_bytes as f64 - a.redis_used_bytes as f64) / users,
    ))
}

/// A per-user figure, or a note that nothing grew.
fn per_user(bytes: f64) -> String {
    if bytes <= 0.0 {
        "no growth measured".into()
    } else {
        format!("{} bytes", fmt_num(bytes))
    }
}

pub(super) fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{} {}", fmt_num(v), UNITS[u])
}

pub fn server_memory(results: &Results) -> Option<Section> {
    let m = results.server_memory.as_ref()?;
    let arms = [
        (
            ServerKind::Session,
            Variant::MemoryStore,
            "session, sessions in the replica's memory",
        ),
        (
            ServerKind::Session,
            Variant::Standard,
            "session, sessions in Redis",
        ),
        (
            ServerKind::Token,
            Variant::Standard,
            "token (refresh families in Redis)",
        ),
    ];
    let mut rows = Vec::new();
    let mut reading = Vec::new();
    for (server, v, name) in arms {
        let Some((replica, redis)) = memory_slope(&m.points, server, v) else {
            continue;
        };
        let counts: Vec<String> = m
            .points
            .iter()
            .filter(|p| p.server == server && p.variant == v && p.logged_in > 0)
            .map(|p| p.logged_in.to_string())
            .collect();
        rows.push(row(&[
            name.into(),
            counts.join(" and "),
            per_user(replica),
            per_user(redis),
            human_bytes(replica.max(0.0) * 1e6),
            human_bytes(redis.max(0.0) * 1e6),
        ]));
    }
    if rows.is_empty() {
        return None;
    }
    reading.push(
        "Where a logged-in user's state lives: sessions in the replica's memory or in Redis, a token's refresh \
         family in Redis. Each figure is the growth per user, the memory a process holds anyway left out."
            .to_string(),
    );
    Some(Section {
        reading,
        method: format!(
            "One replica of each arm; users log in (eight at a time, each once), and the replica's resident memory ({}) \
             and Redis's used_memory are read with none, then two numbers of users logged in. The per-user figure is \
             the slope between the two counts, so what a process holds anyway does not count. The replica's figure is \
             noisier: allocators keep memory in chunks.",
            match results.environment.mode {
                Mode::Compose => "its container's rss or anon from the Docker Engine's memory stats",
                _ => "VmRSS",
            }
        ),
        table: Some(Table::new(
            &[
                "arm",
                "users logged in",
                "replica memory per user",
                "Redis memory per user",
                "replica, per million users",
                "Redis, per million users",
            ],
            rows,
        )),
        ..Section::new("server-memory", "Memory per logged-in user")
    })
}

pub fn token_anatomy(results: &Results) -> Option<Section> {
    let a = results.token_anatomy.as_ref()?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let mut code = vec![
        (
            "the access token as sent".to_string(),
            a.access_token.clone(),
        ),
        ("its header, decoded by anyone".into(), pretty(&a.header)),
        ("its payload, decoded by anyone".into(), pretty(&a.payload)),
    ];
    if let Some(p) = &a.refresh_payload {
        code.push((
            "the refresh token's payload (it is a JWT too)".into(),
            pretty(p),
        ));
    }
    code.push(("a session cookie as sent".into(), a.session_cookie.clone()));
    let mut reading = vec![
        format!(
            "The header names the signing algorithm ({}) and the key; it encrypts nothing. The header and payload are \
             only base64url-encoded: anyone holding the token reads the user id, name, roles, scope and expiry. Never \
             put secrets in a token.",
            a.header["alg"].as_str().unwrap_or("?")
        ),
        format!(
            "The last part is a {}-byte signature: HMAC-SHA256(server key, base64url(header) \".\" base64url(payload)) \
             for HS256{}. The table shows what the server answers when either is changed.",
            a.signature_bytes,
            match a.signature_recomputed {
                Some(true) => "; recomputed here with the run's key, it matched byte for byte",
                Some(false) => "; recomputed here with the run's key, it did NOT match",
                None => "",
            }
        ),
    ];
    if let Some(found) = a.password_in_token {
        reading.push(format!(
            "The user's password {} in any part of the access or refresh token, raw or decoded.",
            if found {
                "WAS FOUND"
            } else {
                "appears nowhere"
            }
        ));
    }
    reading.push(format!(
        "The session cookie is an opaque, signed id: it says nothing about the user, and the server looks it up in \
         Redis. Altered, it is refused ({}).",
        a.altered_cookie_status
    ));
    Some(Section {
        reading,
        method: "A real access token from this run's token server, split at its dots and base64url-decoded. No key is \
                 needed to read it."
            .into(),
        code,
        table: Some(Table::new(
            &["request to GET /api/me with", "status"],
            vec![
                row(&["the token as issued".into(), a.original_status.to_string()]),
                row(&[
                    "the payload changed to roles [user, admin], signature kept".into(),
                    a.tampered_payload_status.to_string(),
                ]),
                row(&[
                    "one bit of the signature flipped".into(),
                    a.tampered_signature_status.to_string(),
                ]),
                row(&["the session cookie as issued".into(), a.session_cookie_status.to_string()]),
                row(&[
                    "the cookie with one character changed".into(),
                    a.altered_cookie_status.to_string(),
                ]),
            ],
        )),
        ..Section::new("token-anatomy", "What is inside a token, and inside a session cookie")
    })
}

/// Requests each active user is assumed to make per second in the projection.
pub const REQUESTS_PER_USER_PER_S: f64 = 0.1;

/// An access token's lifetime in the projection: the token server's default.
const PROJECTED_ACCESS_TTL_S: f64 = 900.0;
/// How often an active user logs in, in the projection: once a working day.
const PROJECTED_LOGIN_EVERY_S: f64 = 8.0 * 3600.0;

/// Redis commands one refresh (or one login) costs, from its scenario's run: the run's
/// commands less those of its reads, per refresh.
fn commands_per(
    results: &Results,
    server: ServerKind,
    scenario: Scenario,
    route: &str,
    read_cmds: f64,
) -> Option<f64> {
    let r = results.first_run(server, scenario)?;
    let total = r.redis_commands_per_request? * r.requests as f64;
    let of_route = *r.requests_by_route.get(route)? as f64;
    let reads = r.requests as f64 - of_route;
    (of_route > 0.0).then(|| ((total - reads * read_cmds) / of_route).max(0.0))
}

pub fn cost_projection(results: &Results) -> Option<Section> {
    use super::figures::{cpu_us, redis_commands};
    let memory = results.server_memory.as_ref();
    let mut rows = Vec::new();
    for server in [ServerKind::Session, ServerKind::Token] {
        let (Some(replica_us), Some(redis_us), Some(cmds)) = (
            cpu_us(results, server, |c| c.replicas).map(|f| f.median),
            cpu_us(results, server, |c| c.redis).map(|f| f.median),
            redis_commands(results, server).map(|f| f.median),
        ) else {
            continue;
        };
        let bytes = results.first_run(server, Scenario::Read)?.credential_bytes as f64;
        let per_user = memory
            .and_then(|m| memory_slope(&m.points, server, Variant::Standard))
            .map(|(_, redis)| redis.max(0.0));
        // Sessions are not refreshed (the cookie lives until logout or idle expiry); a
        // token is, once per lifetime.
        let per_refresh = (server == ServerKind::Token)
            .then(|| commands_per(results, server, Scenario::Refresh, "/auth/refresh", cmds))
            .flatten();
        let per_login = commands_per(results, server, Scenario::Login, "/auth/login", cmds);
        for users in [10_000f64, 100_000.0, 1_000_000.0] {
            let rps = users * REQUESTS_PER_USER_PER_S;
            let refreshes = per_refresh.map(|_| users / PROJECTED_ACCESS_TTL_S);
            let logins = users / PROJECTED_LOGIN_EVERY_S;
            let commands = rps * cmds
                + refreshes.unwrap_or(0.0) * per_refresh.unwrap_or(0.0)
                + logins * per_login.unwrap_or(0.0);
            rows.push(row(&[
                format!("{users:.0}"),
                server.name().into(),
                format!("{rps:.0}"),
                refreshes.map_or("none".into(), |r| format!("{r:.0}")),
                format!("{logins:.1}"),
                fmt_num(rps * replica_us / 1e6),
                fmt_num(rps * redis_us / 1e6),
                format!(
                    "{commands:.0}{}",
                    if per_login.is_none() {
                        " (logins not measured)"
                    } else {
                        ""
                    }
                ),
                per_user.map_or("not measured".into(), |b| human_bytes(b * users)),
                human_bytes(rps * bytes) + "/s",
            ]));
        }
    }
    if rows.is_empty() {
        return None;
    }
    let reading = vec![format!(
        "Assumptions, next to the numbers: every active user makes {} reads per second (one every {} s), logs in once \
         every {} hours, and, with tokens, refreshes once per access-token lifetime of {} s (the server's default); \
         sessions are not refreshed. Redis commands count reads, refreshes and logins, each at what it cost in this \
         run; CPU counts reads only (a login's password hash is deliberately slow, which is why the login runs \
         managed only a few logins per second on a small CPU budget). Balancers, TLS and the network are not \
         included.",
        REQUESTS_PER_USER_PER_S,
        fmt_num(1.0 / REQUESTS_PER_USER_PER_S),
        fmt_num(PROJECTED_LOGIN_EVERY_S / 3600.0),
        fmt_num(PROJECTED_ACCESS_TTL_S)
    )];
    Some(Section {
        reading,
        method: "A projection, not a measurement: the measured per-request and per-user costs multiplied out. CPU per \
                 request is the median over every sweep run bound by the replicas (the CPU section's table); Redis \
                 commands per refresh and per login come from the refresh and login scenarios (their runs' commands \
                 less those of their reads); Redis memory is the per-user slope of the memory experiment."
            .into(),
        table: Some(Table::new(
            &[
                "active users",
                "model",
                "reads/s",
                "refreshes/s",
                "logins/s",
                "replica CPUs (reads)",
                "Redis CPUs (reads)",
                "Redis commands/s",
                "Redis memory",
                "credential bytes",
            ],
            rows,
        )),
        ..Section::new("cost", "What 10k, 100k and 1M active users would need")
    })
}

pub fn signing(results: &Results) -> Option<Section> {
    let eddsa = results.arm(Experiment::Signing, ServerKind::Token, Variant::Eddsa)?;
    let hs256 = results
        .sweep(ServerKind::Token, Scenario::Read)
        .into_iter()
        .find(|r| r.replicas == eddsa.replicas);
    let mut rows = Vec::new();
    let mut reading = Vec::new();
    for (name, r) in [
        ("HS256 (shared secret)", hs256),
        ("EdDSA (Ed25519 key pair)", Some(eddsa)),
    ] {
        if let Some(r) = r {
            rows.push(row(&[
                name.into(),
                r.replicas.to_string(),
                fmt_num(r.rps),
                us(r.cpu_us_per_request.replicas),
                r.credential_bytes.to_string(),
                bottleneck_text(r),
            ]));
        }
    }
    if let Some(h) = hs256 {
        if let (Some(e), Some(hh)) = (
            eddsa.cpu_us_per_request.replicas,
            h.cpu_us_per_request.replicas,
        ) {
            reading.push(format!(
                "Verifying an EdDSA token cost the replicas {} of CPU per request against {} with HS256: checking a \
                 public-key signature is more work than recomputing a keyed hash.",
                us(Some(e)),
                us(Some(hh))
            ));
        }
        if let Some(why) = not_comparable(h, eddsa) {
            reading.push(format!("Throughput: {why}."));
        }
    }
    reading.push(
        "What the key pair buys: only the token server holds the private key; other services verify with the public \
         key it publishes at /.well-known/jwks.json, and cannot mint tokens."
            .into(),
    );
    if eddsa.errors == 0 && eddsa.redis_commands_per_request == Some(0.0) {
        reading.push(format!(
            "All {} EdDSA-authenticated requests were verified with no Redis command.",
            eddsa.requests
        ));
    }
    Some(Section {
        reading,
        method: "The token read scenario with HS256 access tokens (the sweep's first round) and again with JWT_ALG=EdDSA, at \
                 the same replica count."
            .into(),
        table: Some(Table::new(
            &["algorithm", "replicas", "req/s", "replica CPU per request", "credential bytes", "limited by"],
            rows,
        )),
        ..Section::new("signing", "Signing algorithms: HS256 against EdDSA")
    })
}
