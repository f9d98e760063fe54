//! The sweep's sections: does throughput grow with replicas, how long requests take, where
//! the CPU goes, what each request asks Redis; then the machine and every run.

use std::collections::BTreeSet;

use super::svg::{bar_chart, fmt_num, line_chart_with, LineOptions, Series};
use super::{bottleneck_text, num_or, row, run_name, us, Chart, Section, Table};
use crate::model::{Bottleneck, Mode, Results, Run, Scenario, ServerKind, SweepPoint};

/// Why a sweep point is not a measure of the model's capacity, if it is not.
fn caveat(p: &SweepPoint) -> Option<String> {
    if let Some(b) = p.bound_elsewhere() {
        let rounds = p
            .runs
            .iter()
            .filter(|r| r.bound_elsewhere().is_some())
            .count();
        return Some(format!(
            "at {} replicas, {} of {} rounds were bound by {} ({})",
            p.replicas,
            rounds,
            p.runs.len(),
            b.name(),
            b.explain()
        ));
    }
    if p.oversubscribed() {
        return Some(format!(
            "at {} replicas, the replicas asked for more CPUs than the machine has",
            p.replicas
        ));
    }
    None
}

/// How far the rounds of the points spread around their medians, at most, in percent.
fn widest_spread(points: &[SweepPoint]) -> Option<f64> {
    points
        .iter()
        .filter(|p| p.runs.len() > 1 && p.median_rps() > 0.0)
        .map(|p| (p.max_rps() - p.min_rps()) / p.median_rps() * 100.0)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
}

/// The budget per replica the sweep ran with, as one sentence.
fn budget_sentence(results: &Results) -> String {
    let budget = results.runs.iter().find_map(|r| r.cpus_per_replica);
    match (results.environment.mode, budget, &results.calibration) {
        (_, Some(c), Some(_)) => format!(
            "Each replica was held to {} CPU during the measured window, a budget the calibration chose (see \
             \"How the CPU budget was chosen\"): with it, adding a replica is the only way to add capacity.",
            fmt_num(c)
        ),
        (_, Some(c), None) => format!(
            "Each replica was held to {} CPU during the measured window (given on the command line).",
            fmt_num(c)
        ),
        (Mode::Compose, None, _) => "Each replica container was limited by the compose file's REPLICA_CPUS.".into(),
        (Mode::Existing, None, _) => "The deployment was measured as it ran (loadtest run): whatever CPU limit its replicas \
                                      had is its own (docker-compose.yml sets REPLICA_CPUS) and was not seen from here."
            .into(),
        (_, None, _) => "No CPU budget per replica was set: the replicas shared the machine with the load generator, \
                         nginx and Redis."
            .into(),
    }
}

/// The scaling section, and how the CPU budget it used was chosen (for the appendix).
pub fn scaling(results: &Results) -> (Option<Section>, Option<Section>) {
    let mut series = Vec::new();
    let mut rows = Vec::new();
    let mut reading = Vec::new();
    let mut spreads = Vec::new();
    for s in results.servers() {
        let points = results.sweep_points(s, s.main_scenario());
        if points.is_empty() {
            continue;
        }
        let mut line = Series::line(
            match s {
                ServerKind::Public => s.name().to_string(),
                _ => format!("{} {}", s.name(), s.main_scenario().name()),
            },
            points
                .iter()
                .map(|p| (f64::from(p.replicas), p.median_rps()))
                .collect(),
        );
        line.spread = points.iter().map(|p| (p.min_rps(), p.max_rps())).collect();
        line.marked = points.iter().map(|p| caveat(p).is_some()).collect();
        series.push(line);
        for p in &points {
            rows.push(row(&[
                s.name().into(),
                p.replicas.to_string(),
                fmt_num(p.median_rps()),
                if p.runs.len() > 1 {
                    format!("{} to {}", fmt_num(p.min_rps()), fmt_num(p.max_rps()))
                } else {
                    "-".into()
                },
                p.runs.len().to_string(),
                p.runs
                    .iter()
                    .map(|r| bottleneck_text(r))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join("; "),
            ]));
        }
        spreads.extend(widest_spread(&points));
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            continue;
        };
        if last.replicas <= first.replicas || first.median_rps() <= 0.0 {
            continue;
        }
        let ratio = last.median_rps() / first.median_rps();
        let head = format!(
            "{}: {} to {} req/s from {} to {} replicas, {}x for {}x.",
            s.name(),
            fmt_num(first.median_rps()),
            fmt_num(last.median_rps()),
            first.replicas,
            last.replicas,
            fmt_num(ratio),
            fmt_num(f64::from(last.replicas) / f64::from(first.replicas))
        );
        let caveats: Vec<String> = points.iter().filter_map(caveat).collect();
        let tail = if !caveats.is_empty() {
            format!(
                " Not a scaling figure: {}. Those points show what the machine could give, not the model's limit.",
                caveats.join("; ")
            )
        } else if points.iter().all(SweepPoint::replica_bound) {
            String::new()
        } else if first.runs[0].cpu_us_per_request.replicas.is_none() {
            " The replicas' CPU was not visible from the load generator, so what bound these runs is not known.".into()
        } else {
            let loose: Vec<String> = points
                .iter()
                .filter(|p| !p.replica_bound())
                .map(|p| p.replicas.to_string())
                .collect();
            format!(
                " No bottleneck was found at {} replicas: nothing, the replicas included, used 85% of what it could, so \
                 the load itself ({} users) set those figures, not the model.",
                loose.join(", "),
                first.runs[0].users()
            )
        };
        reading.push(head + &tail);
    }
    if series.is_empty() {
        return (None, calibration(results));
    }
    let all_bound = results.servers().iter().all(|s| {
        results
            .sweep_points(*s, s.main_scenario())
            .iter()
            .all(SweepPoint::replica_bound)
    });
    if all_bound {
        reading.push(
            "Every round at every count was bound by the replicas' own CPU budget, so this is how each model itself \
             scales here; the dotted lines are ideal scaling (the first point times the replicas)."
                .into(),
        );
    }
    if let Some(w) = spreads.iter().copied().reduce(f64::max) {
        let rounds = results
            .runs
            .iter()
            .filter(|r| r.in_sweep())
            .map(|r| r.round)
            .max()
            .unwrap_or(1);
        reading.push(format!(
            "Each point is the median of {rounds} interleaved rounds; the whiskers span the lowest and highest round. \
             The widest spread was {}% of its median.",
            fmt_num(w)
        ));
    }
    let opts = LineOptions {
        marked_means: Some(
            "hollow: bound by something other than the replicas, or oversubscribed".into(),
        ),
        ideal: true,
        ..LineOptions::default()
    };
    let scaling = Section {
        reading,
        method: format!(
            "{} Each group's main scenario (read: GET /api/me and GET /api/items with a credential; public: GET \
             /api/public without one) ran at every replica count, behind nginx.",
            budget_sentence(results)
        ),
        charts: vec![Chart::new(
            "throughput.svg",
            "Look at how close each line stays to its dotted ideal as replicas are added, and at the gap between \
             the models at the same replica count.",
            line_chart_with(
                "Requests per second by replica count (median, whiskers: lowest to highest round)",
                "replicas",
                "requests per second",
                &series,
                &opts,
            ),
        )],
        table: Some(Table::new(
            &["group", "replicas", "req/s (median)", "lowest to highest round", "rounds", "limited by"],
            rows,
        )),
        ..Section::new("scaling", "Does throughput grow with replicas?")
    };
    (Some(scaling), calibration(results))
}

fn calibration(results: &Results) -> Option<Section> {
    let c = results.calibration.as_ref()?;
    let rows = c
        .runs
        .iter()
        .map(|r| {
            let u = &r.cpu_us_per_request;
            row(&[
                r.server.name().into(),
                fmt_num(r.rps),
                us(u.replicas),
                us(u.redis),
                us(u.lb),
                us(u.loadgen),
            ])
        })
        .collect();
    Some(Section {
        reading: vec![format!(
            "Chosen: {} CPU per replica. By the costs below, {} replicas at that budget serve at most about {} {} \
             requests per second, and at that rate the load generator stays under {:.0}% of its thread, nginx and Redis \
             under 60% of theirs, and the whole system under {:.0}% of the {} CPUs. {} is the group that needs the most \
             room per unit of replica CPU, so it sets the budget; the others fit with room to spare.",
            fmt_num(c.cpus_per_replica),
            c.max_replicas,
            fmt_num(c.max_rps),
            c.set_by.name(),
            c.loadgen_share * 100.0,
            c.machine_share * 100.0,
            c.machine_cpus,
            c.set_by.name()
        )],
        method: "Before the sweep, each group ran its main scenario for a few seconds on one replica with no budget. The \
                 table is what one request cost each component then. A smaller budget would make every run slower; a larger \
                 one would let the load generator, nginx or the machine run out before the replicas do, and the sweep would \
                 measure them instead."
            .into(),
        table: Some(Table::new(
            &["group", "req/s", "replica CPU per request", "Redis", "nginx", "load generator"],
            rows,
        )),
        ..Section::new("budget", "How the CPU budget was chosen")
    })
}

/// The median round of the main scenario at each count.
fn medians(results: &Results, s: ServerKind) -> Vec<&Run> {
    results
        .sweep_points(s, s.main_scenario())
        .iter()
        .filter_map(|p| p.median_run())
        .collect()
}

pub fn latency(results: &Results) -> Option<Section> {
    let mut series = Vec::new();
    let mut queue = Vec::new();
    let mut open = true;
    for s in results.servers() {
        let runs = medians(results, s);
        if runs.is_empty() {
            continue;
        }
        open &= runs.iter().all(|r| r.open_model.is_some());
        // At a fixed rate, from each request's slot; in a closed loop, from its send.
        let p = |r: &Run, q: fn(&crate::model::Percentiles) -> u64, closed: f64| {
            r.open_model
                .as_ref()
                .map_or(closed, |o| q(&o.latency_us_intended) as f64 / 1000.0)
        };
        let pts =
            |f: &dyn Fn(&Run) -> f64| runs.iter().map(|r| (f64::from(r.replicas), f(r))).collect();
        series.push(Series::line(
            format!("{} p99", s.name()),
            pts(&|r| p(r, |q| q.p99, r.latency_ms.p99)),
        ));
        series.push(
            Series::line(
                format!("{} p50", s.name()),
                pts(&|r| p(r, |q| q.p50, r.latency_ms.p50)),
            )
            .dashed(),
        );
        if let Some(r) = runs.iter().find(|r| r.open_model.is_none() && r.rps > 0.0) {
            queue.push(format!(
                "{} x{}: p50 {} ms with {} users at {} req/s, and {} / {} = {} ms",
                s.name(),
                r.replicas,
                fmt_num(r.latency_ms.p50),
                r.users(),
                fmt_num(r.rps),
                r.users(),
                fmt_num(r.rps),
                fmt_num(1000.0 * f64::from(r.users()) / r.rps)
            ));
        }
    }
    if series.is_empty() {
        return None;
    }
    let (title, method, reading) = if open {
        (
            "How long a request takes at a fixed arrival rate",
            "Requests started on a schedule that did not wait for answers (`--rate`); each one's latency counts \
             from when it should have started, so a request that waited for a free connection or a stalled \
             server counts its wait (coordinated omission accounted for, as wrk2 does). Median round."
                .to_string(),
            Vec::new(),
        )
    } else {
        (
            "Waiting time in a closed loop: the queue, not the request",
            "Latency measured by the client, from sending a request to reading its whole answer, in the median \
             round. Each simulated user sends its next request only once the last was answered, so the \
             requests queue and a request's time is mostly its wait: p50 is close to users / throughput."
                .to_string(),
            vec![format!(
                "This chart shows queueing, not what one request costs: {}. A model with more capacity \
                 queues less; that is the throughput chart again, not a faster request. For what a request \
                 costs a user, run at a fixed rate (`--rate`).",
                queue.join("; ")
            )],
        )
    };
    Some(Section {
        reading,
        method,
        charts: vec![Chart::new(
            "latency.svg",
            if open {
                "Look at where each line bends upward: past it, requests wait for each other."
            } else {
                "These lines fall as replicas are added because the queue shortens, not because a request got faster."
            },
            line_chart_with(
                "Latency p50 (dashed) and p99 by replica count",
                "replicas",
                "milliseconds",
                &series,
                &LineOptions::default(),
            ),
        )],
        ..Section::new("latency", title)
    })
}

/// Every run at a fixed arrival rate: what was offered and achieved, the late starts, and
/// latency from the slot beside latency from the send.
pub fn open_model(results: &Results) -> Option<Section> {
    let runs: Vec<&Run> = results
        .runs
        .iter()
        // The latency curve's runs have a section of their own.
        .filter(|r| {
            r.open_model.is_some() && r.experiment != Some(crate::model::Experiment::LatencyCurve)
        })
        .collect();
    if runs.is_empty() {
        return None;
    }
    let ms = |us: u64| fmt_num(us as f64 / 1000.0);
    let rows = runs
        .iter()
        .filter_map(|r| {
            let o = r.open_model.as_ref()?;
            let offered = r.setup.open?.offered_rps;
            Some(row(&[
                format!("{} x{}", run_name(r), r.replicas),
                fmt_num(offered),
                fmt_num(o.achieved_rps),
                format!("{} (latest {} ms)", o.late_starts, ms(o.late_by_us.max)),
                format!(
                    "{} / {} / {}",
                    ms(o.latency_us_intended.p50),
                    ms(o.latency_us_intended.p99),
                    ms(o.latency_us_intended.p999)
                ),
                format!(
                    "{} / {} / {}",
                    ms(o.latency_us_actual.p50),
                    ms(o.latency_us_actual.p99),
                    ms(o.latency_us_actual.p999)
                ),
                if r.valid() {
                    "yes".into()
                } else {
                    "no (see below)".into()
                },
            ]))
        })
        .collect();
    let late_after_ms = runs
        .iter()
        .find_map(|r| r.open_model.as_ref())
        .map_or(0.0, |o| o.late_after_us as f64 / 1000.0);
    Some(Section {
        reading: vec![
            "Where latency from the slot is far above latency from the send, requests waited before they \
             could be sent: the server (or the load generator) fell behind the schedule, and a user arriving \
             then would have waited that long."
                .into(),
        ],
        method: format!(
            "Requests started on a fixed schedule (`--rate`), spread over the simulated users' connections. A \
             start more than {} ms after its slot is late (the load generator's timer has 1 ms steps). Latency \
             in ms: p50 / p99 / p99.9.",
            fmt_num(late_after_ms)
        ),
        table: Some(Table::new(
            &[
                "run",
                "offered req/s",
                "achieved req/s",
                "late starts",
                "from the slot",
                "from the send",
                "valid",
            ],
            rows,
        )),
        ..Section::new("open-model", "Runs at a fixed arrival rate")
    })
}

/// The runs that broke a rule of a valid run, and which.
pub fn invalid_runs(results: &Results) -> Option<Section> {
    let rows: Vec<Vec<String>> = results
        .invalid_runs()
        .map(|r| {
            row(&[
                format!("{} {} x{}", run_name(r), r.scenario.name(), r.replicas),
                r.round.to_string(),
                r.invalid
                    .iter()
                    .map(|i| i.explain())
                    .collect::<Vec<_>>()
                    .join("; "),
            ])
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    Some(Section {
        reading: vec![format!(
            "{} run{} broke a rule of a valid run and {} left out of every median and verdict.",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            if rows.len() == 1 { "is" } else { "are" }
        )],
        method: format!(
            "A run is valid when it achieved at least {:.0}% of the rate it was offered (fixed-rate runs), \
             failed at most {:.0}% of its requests (outside fault experiments and the memory store behind round \
             robin, whose refusals are what they measure), and every replica served at least half of its fair \
             share (outside fault experiments and sticky routing).",
            100.0 * crate::model::MIN_ACHIEVED,
            100.0 * crate::model::MAX_ERRORS
        ),
        table: Some(Table::new(&["run", "round", "rule broken"], rows)),
        ..Section::new("invalid-runs", "Runs left out")
    })
}

/// The smallest count's median round of each group's main scenario.
fn baselines(results: &Results) -> Vec<&Run> {
    results
        .servers()
        .into_iter()
        .filter_map(|s| medians(results, s).into_iter().next())
        .collect()
}

pub fn cpu(results: &Results) -> Option<Section> {
    let runs: Vec<&Run> = baselines(results)
        .into_iter()
        .filter(|r| r.cpu_us_per_request.replicas.is_some())
        .collect();
    if runs.is_empty() {
        return None;
    }
    let cats: Vec<String> = runs
        .iter()
        .map(|r| format!("{} x{}", r.server.name(), r.replicas))
        .collect();
    let comp = |f: fn(&Run) -> Option<f64>| {
        runs.iter()
            .map(|r| f(r).unwrap_or(0.0))
            .collect::<Vec<f64>>()
    };
    let series = vec![
        (
            "replicas".to_string(),
            comp(|r| r.cpu_us_per_request.replicas),
        ),
        ("Redis".to_string(), comp(|r| r.cpu_us_per_request.redis)),
        ("nginx".to_string(), comp(|r| r.cpu_us_per_request.lb)),
        (
            "load generator".to_string(),
            comp(|r| r.cpu_us_per_request.loadgen),
        ),
    ];
    // Each figure once: the median over every replica-bound round of the group, with its
    // spread; the chart draws the same medians.
    use super::figures::cpu_us;
    let fig = |s: ServerKind, pick: fn(&crate::model::CpuPerRequest) -> Option<f64>| {
        cpu_us(results, s, pick).map_or("not visible".to_string(), |f| f.cell())
    };
    let rows = runs
        .iter()
        .map(|r| {
            row(&[
                super::group_scenario(r),
                fig(r.server, |c| c.replicas),
                fig(r.server, |c| c.redis),
                fig(r.server, |c| c.lb),
                fig(r.server, |c| c.loadgen),
            ])
        })
        .collect();
    let mut reading = vec![
        "A token read and a public request ask for different routes, so their difference holds checking the token \
         and building the user's answer together; a session read adds Redis's column to its replica's."
            .to_string(),
    ];
    let above: Vec<&str> = runs
        .iter()
        .filter(|r| {
            match (
                cpu_us(results, r.server, |c| c.loadgen),
                cpu_us(results, r.server, |c| c.replicas),
            ) {
                (Some(g), Some(rep)) => g.median > rep.median,
                _ => false,
            }
        })
        .map(|r| r.server.name())
        .collect();
    if !above.is_empty() {
        reading.push(format!(
            "The load generator spent more CPU per request than the replicas it measured ({}): on a small machine \
             the tool measuring can cost more than the thing measured, which is why the CPU budget leaves it room.",
            above.join(", ")
        ));
    }
    Some(Section {
        reading,
        method: format!(
            "CPU microseconds per measured request for each component, {}: the median over every sweep round bound \
             by the replicas alone, with the lowest and highest round, rounded to what that spread supports. The \
             chart draws the median round at the smallest replica count.",
            if super::through_engine(results) {
                "from each container's CPU counter in the Docker Engine's stats (ns; the load generator's own from \
                 getrusage), as its rate between the two readings around the window over the rate of requests \
                 counted in it (the Engine answers up to a second late)"
            } else {
                "from each thread's /proc schedstat (ns)"
            }
        ),
        charts: vec![Chart::new(
            "cpu.svg",
            "Compare the stacks' heights, and what each is made of: the replica, Redis, nginx, the load \
             generator.",
            bar_chart("CPU microseconds per request", "µs per request", &cats, &series, true),
        )],
        table: Some(Table::new(
            &[
                "group (µs of CPU per request: median, lowest to highest round)",
                "replicas",
                "Redis",
                "nginx",
                "load generator",
            ],
            rows,
        )),
        ..Section::new("cpu", "Where the CPU goes per request")
    })
}

pub fn redis_and_bytes(results: &Results) -> Option<Section> {
    let mut runs: Vec<&Run> = Vec::new();
    for s in results.servers() {
        for sc in Scenario::ALL {
            if let Some(r) = results.first_run(s, sc) {
                runs.push(r);
            }
        }
    }
    if runs.is_empty() {
        return None;
    }
    let seen: Vec<&Run> = runs
        .iter()
        .copied()
        .filter(|r| r.redis_commands_per_request.is_some())
        .collect();
    let cats: Vec<String> = seen.iter().map(|r| super::group_scenario(r)).collect();
    let redis: Vec<f64> = seen
        .iter()
        .filter_map(|r| r.redis_commands_per_request)
        .collect();
    let by_server = baselines(results);
    let bytes_cats: Vec<String> = by_server.iter().map(|r| r.server.name().into()).collect();
    let bytes: Vec<f64> = by_server
        .iter()
        .map(|r| r.credential_bytes as f64)
        .collect();
    let mut reading = Vec::new();
    let read = |s: ServerKind| results.first_run(s, Scenario::Read);
    if let (Some(s), Some(t)) = (read(ServerKind::Session), read(ServerKind::Token)) {
        if let (Some(sc), Some(tc)) = (s.redis_commands_per_request, t.redis_commands_per_request) {
            reading.push(format!(
                "Every session read asked Redis {} times per request, every token read {}: the session lives in \
                 Redis, the token carries its own proof.",
                fmt_num(sc),
                fmt_num(tc)
            ));
        }
        reading.push(format!(
            "The price of carrying the proof: a token request sends {} bytes of credentials, a session request {}.",
            t.credential_bytes, s.credential_bytes
        ));
    }
    let mut charts = Vec::new();
    if !seen.is_empty() {
        charts.push(Chart::new(
            "redis.svg",
            "A bar above zero is a request that needs the store.",
            bar_chart(
                "Redis commands per request",
                "commands per request",
                &cats,
                &[("commands".into(), redis)],
                false,
            ),
        ));
    }
    charts.push(Chart::new(
        "credential-bytes.svg",
        "Compare the bars: these bytes travel with every request.",
        bar_chart(
            "Credential bytes per request",
            "bytes per request",
            &bytes_cats,
            &[("bytes".into(), bytes)],
            false,
        ),
    ));
    Some(Section {
        reading,
        method: "Redis commands per request from INFO commandstats over the window (first round, smallest count); \
                 credential bytes are the Cookie or Authorization header a request carries."
            .into(),
        charts,
        ..Section::new("redis", "Redis commands and credential bytes per request")
    })
}

pub fn machine(results: &Results) -> Section {
    let e = &results.environment;
    let mut rows = vec![
        row(&[
            "CPU".into(),
            format!("{} ({} CPUs available)", e.cpu_model, e.cpus),
        ]),
        row(&[
            "memory".into(),
            format!("{:.1} GiB", e.memory_bytes as f64 / (1u64 << 30) as f64),
        ]),
        row(&["kernel".into(), e.kernel.clone()]),
        row(&[
            "CPU budget per replica enforced by".into(),
            e.cpu_budget_method.clone(),
        ]),
        row(&["measured".into(), e.started_at.clone()]),
    ];
    for (k, v) in &e.versions {
        rows.push(row(&[k.clone(), v.clone()]));
    }
    for (k, v) in &e.config {
        rows.push(row(&[k.clone(), v.clone()]));
    }
    let limited: Vec<&Run> = results
        .runs
        .iter()
        .filter(|r| r.bound_elsewhere().is_some())
        .collect();
    let mut reading = Vec::new();
    if e.cpus <= 4 {
        reading.push(format!(
            "This machine has {} CPUs. The load generator, nginx and Redis run on the same cores as the replicas.",
            e.cpus
        ));
    }
    if results
        .runs
        .iter()
        .all(|r| r.cpu_us_per_request.replicas.is_none())
    {
        reading.push(
            "The replicas', Redis's and nginx's CPU were not visible from the load generator in this run, so no run's \
             bottleneck could be named."
                .into(),
        );
    } else if limited.is_empty() {
        reading.push("No run was limited by the load generator, nginx or Redis.".into());
    } else {
        let names: BTreeSet<Bottleneck> =
            limited.iter().filter_map(|r| r.bound_elsewhere()).collect();
        reading.push(format!(
            "In {} of {} runs something other than the replicas was the bottleneck: {}. Those runs show that \
             component's limit, not the servers' capacity; they are marked in every table.",
            limited.len(),
            results.runs.len(),
            names
                .into_iter()
                .map(|b| format!("{} ({})", b.name(), b.explain()))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    for n in &e.notes {
        reading.push(format!("Note from the run: {n}"));
    }
    Section {
        reading,
        method: "Each run starts N replicas behind nginx (round robin, keep-alive to the replicas) and drives them with goose \
                 users through nginx. Users sign up and log in during a warm-up that is never counted; only the measured \
                 window after it is. CPU comes from /proc for every process started here, Redis commands from INFO \
                 commandstats, and the spread over replicas from each replica's /metrics."
            .into(),
        table: Some(Table::new(&["what", "value"], rows)),
        ..Section::new("machine", "The machine and how it was measured")
    }
}

pub fn all_runs(results: &Results) -> Section {
    let rows = results
        .runs
        .iter()
        .map(|r| {
            row(&[
                run_name(r),
                r.scenario.name().into(),
                r.replicas.to_string(),
                if r.in_sweep() {
                    r.round.to_string()
                } else {
                    "-".into()
                },
                fmt_num(r.rps),
                fmt_num(r.latency_ms.p50),
                fmt_num(r.latency_ms.p99),
                r.errors.to_string(),
                num_or(r.redis_commands_per_request, "not seen"),
                us(r.cpu_us_per_request.replicas),
                bottleneck_text(r),
            ])
        })
        .collect();
    // The login runs look broken next to the reads; they are slow on purpose.
    let login = results
        .runs
        .iter()
        .find(|r| r.scenario == Scenario::Login && r.experiment.is_none());
    Section {
        reading: login
            .map(|r| {
                format!(
                    "The login runs are slow by design ({} logins/s, p50 {} ms, for {} at {} replica{}): a login \
                     hashes the password with argon2id, deliberately costly so that a stolen password database is \
                     slow to crack, and each replica has only its small CPU budget for it.",
                    fmt_num(r.rps),
                    fmt_num(r.latency_ms.p50),
                    r.server.name(),
                    r.replicas,
                    if r.replicas == 1 { "" } else { "s" }
                )
            })
            .into_iter()
            .collect(),
        method: "One line per run: requests per second and latency seen by the client in the measured window, errors (any \
                 answer that is not 2xx), Redis commands per request, and the replicas' CPU per request."
            .into(),
        table: Some(Table::new(
            &[
                "server",
                "scenario",
                "replicas",
                "round",
                "req/s",
                "p50 ms",
                "p99 ms",
                "errors",
                "Redis commands per request",
                "replica CPU per request",
                "limited by",
            ],
            rows,
        )),
        ..Section::new("runs", "Every run")
    }
}
