//! The report's first screen: what was compared, the findings that matter with their
//! figures, which model to choose when, and the caveats a reader needs before trusting any
//! of it. The figures come from `Headline`, computed once; this file only words them.

use super::curve::{curves, Curve};
use super::figures::{FaultImpact, Growth};
use super::svg::fmt_num;
use super::Section;
use crate::model::{Experiment, Mode, Results, ServerKind, Variant};

/// Latency at light load and a point of the sweep, for one model.
#[derive(Debug, Clone, Copy)]
pub struct ModelFigures {
    /// Median latency from the send at the lightest fixed rate, µs (one replica, a whole core).
    pub unloaded_us: Option<u64>,
    /// p50 from the slot at the middle fraction of capacity, ms, and that fraction in %.
    pub loaded_p50_ms: Option<(f64, u32)>,
    /// Requests per second of one replica in the sweep (its median round), and the CPU budget.
    pub per_replica_rps: Option<f64>,
    pub growth: Option<Growth>,
}

/// Every figure the first screen quotes, computed once.
pub struct Headline<'a> {
    pub session: ModelFigures,
    pub token: ModelFigures,
    pub budget_cpus: Option<f64>,
    /// Redis frozen: the session and token arms (with the retry grace).
    pub outage: Option<(FaultImpact<'a>, FaultImpact<'a>)>,
    /// A replica killed: sessions in Redis, and tokens.
    pub loss: Option<(FaultImpact<'a>, FaultImpact<'a>)>,
    /// Seconds a token worked after logout, and its lifetime and leeway; the session's ms.
    pub revocation: Option<(f64, u64, u64, Option<f64>)>,
}

fn model(results: &Results, curves: &[Curve], server: ServerKind) -> ModelFigures {
    let curve = curves
        .iter()
        .find(|c| c.server == server && c.variant == Variant::Standard);
    let loaded = curve.and_then(|c| {
        let mid = c.points.get(c.points.len() / 2)?;
        let o = mid.open_model.as_ref()?;
        let offered = mid.setup.open?.offered_rps;
        let pct = (100.0 * offered / c.capacity.rps).round() as u32;
        Some((o.latency_us_intended.p50 as f64 / 1000.0, pct))
    });
    let points = results.sweep_points(server, server.main_scenario());
    ModelFigures {
        unloaded_us: curve.and_then(Curve::unloaded_us),
        loaded_p50_ms: loaded,
        per_replica_rps: points.first().map(|p| p.median_rps()),
        growth: Growth::of(results, server),
    }
}

fn pair<'a>(
    results: &'a Results,
    e: Experiment,
    session: Variant,
) -> Option<(FaultImpact<'a>, FaultImpact<'a>)> {
    let s = results.arm(e, ServerKind::Session, session)?;
    let t = results.arm(e, ServerKind::Token, Variant::Standard)?;
    Some((FaultImpact::of(s)?, FaultImpact::of(t)?))
}

impl<'a> Headline<'a> {
    pub fn of(results: &'a Results) -> Self {
        let curves = curves(results);
        Self {
            session: model(results, &curves, ServerKind::Session),
            token: model(results, &curves, ServerKind::Token),
            budget_cpus: results
                .sweep(ServerKind::Token, ServerKind::Token.main_scenario())
                .first()
                .and_then(|r| r.cpus_per_replica),
            outage: pair(results, Experiment::RedisOutage, Variant::Standard),
            loss: pair(results, Experiment::ReplicaLoss, Variant::Standard),
            revocation: results.revocation.as_ref().and_then(|r| {
                Some((
                    r.token_refused_after_ms? / 1000.0,
                    r.access_token_ttl_s,
                    r.leeway_s,
                    r.session_refused_after_ms,
                ))
            }),
        }
    }
}

fn pct(share: Option<f64>) -> String {
    FaultImpact::share_text(share)
}

fn kept(f: &FaultImpact) -> String {
    f.kept.map_or("an uncounted number of".into(), |(k, n)| {
        format!("{k} of {n}")
    })
}

/// Who stayed logged in, session arm then token arm, said once when it is everyone.
fn kept_both(s: &FaultImpact, t: &FaultImpact) -> String {
    match (s.kept, t.kept) {
        (Some((a, n)), Some((b, m))) if a == n && b == m && n == m => {
            format!("all {n} users of each stayed logged in")
        }
        _ => format!(
            "{} session and {} token users stayed logged in",
            kept(s),
            kept(t)
        ),
    }
}

/// The findings, one sentence each, in the order a student asks: which is faster, which
/// serves more, what happens when something fails, how fast a logout acts.
fn findings(h: &Headline) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(s), Some(t)) = (h.session.unloaded_us, h.token.unloaded_us) {
        let loaded = match (h.session.loaded_p50_ms, h.token.loaded_p50_ms) {
            (Some((s, p)), Some((t, _))) => format!(
                ", p50 {} against {} ms at {p}% of capacity",
                fmt_num(s),
                fmt_num(t)
            ),
            _ => String::new(),
        };
        // A user notices a millisecond, not a few hundred µs.
        let feel = if s.abs_diff(t) < 1000 {
            "no difference a user feels".to_string()
        } else {
            format!(
                "{} are faster by {} ms",
                if s < t { "sessions" } else { "tokens" },
                fmt_num(s.abs_diff(t) as f64 / 1000.0)
            )
        };
        out.push(format!(
            "Speed: {s} µs per session read, {t} µs per token read at light load{loaded}: {feel}."
        ));
    }
    if let (Some(s), Some(t)) = (h.session.per_replica_rps, h.token.per_replica_rps) {
        let budget = h
            .budget_cpus
            .map_or(String::new(), |c| format!(" on {} CPU", fmt_num(c)));
        let growth = match (h.session.growth, h.token.growth) {
            (Some(sg), Some(tg)) if !sg.differs_from(&tg) => "; both scaled alike with replicas",
            (Some(sg), Some(tg)) if sg.median > tg.median => {
                "; sessions scaled better with replicas"
            }
            (Some(_), Some(_)) => "; tokens scaled better with replicas",
            _ => "",
        };
        out.push(format!(
            "Capacity: one replica{budget} served {} token and {} session reads/s{growth}.",
            fmt_num(t),
            fmt_num(s)
        ));
    }
    if let Some((s, t)) = &h.outage {
        out.push(format!(
            "Redis stops: session requests fell to {} of their rate, token requests to {} (refreshes need Redis); {}.",
            pct(s.during_share),
            pct(t.during_share),
            kept_both(s, t)
        ));
    }
    if let Some((s, t)) = &h.loss {
        out.push(format!(
            "A replica dies: {}; sessions served {} and tokens {} of their rate before{}.",
            kept_both(s, t),
            pct(s.during_share),
            pct(t.during_share),
            if [s.during_share, t.during_share]
                .iter()
                .all(|d| d.is_some_and(|d| d < super::experiments::WAITED_ON_THE_DEAD))
            {
                " (the balancer waited on the dead replica's address: see \"When a replica dies\")"
            } else {
                ""
            }
        ));
    }
    if let Some((token_s, ttl, leeway, session_ms)) = h.revocation {
        out.push(format!(
            "Logout: a session ended {}; a token kept working {} s ({ttl} s lifetime + {leeway} s leeway).",
            session_ms.map_or("(not seen)".into(), |ms| format!("in {} ms", fmt_num(ms))),
            fmt_num(token_s)
        ));
    }
    out
}

/// "Choose sessions when … / tokens when …", from this run's figures.
fn choose(h: &Headline) -> Option<String> {
    let (token_s, ..) = h.revocation?;
    Some(format!(
        "Choose sessions when logout or a role change must act at once and the store can be kept up; tokens when \
         many services check credentials without a store and a revoked token may work on for {} s.",
        fmt_num(token_s)
    ))
}

/// The first section: under 200 words.
pub fn section(results: &Results) -> Option<Section> {
    let h = Headline::of(results);
    let found = findings(&h);
    if found.is_empty() {
        return None;
    }
    let mut reading = vec![
        "Sessions (a cookie looked up in Redis per request) against tokens (a signed JWT checked without Redis, \
         renewed through it):"
            .to_string(),
    ];
    reading.extend(found);
    reading.extend(choose(&h));
    Some(Section {
        reading,
        ..Section::new("answer", "The answer")
    })
}

/// The caveats a reader needs before trusting the figures: window, rounds, what a CPU
/// budget simulates, the machine.
pub fn caveats(results: &Results) -> Section {
    let e = &results.environment;
    let sweep = results.sweep(ServerKind::Token, ServerKind::Token.main_scenario());
    let mut items = Vec::new();
    if let Some(r) = sweep.first() {
        let rounds = results
            .sweep_points(ServerKind::Token, ServerKind::Token.main_scenario())
            .first()
            .map_or(1, |p| p.runs.len());
        items.push(format!(
            "Each sweep point is {rounds} round{} of {} s; a difference smaller than the spread between rounds is \
             no difference.",
            if rounds == 1 { "" } else { "s" },
            fmt_num(r.duration_s)
        ));
        if let Some(c) = r.cpus_per_replica {
            let how = if super::through_engine(results) {
                "its container's CPU limit, a cgroup quota set through the Docker Engine"
            } else {
                "a cgroup quota"
            };
            let path = match e.mode {
                Mode::Compose => "all ran on one machine, over Docker's bridge network",
                _ => "all ran on one loopback",
            };
            items.push(format!(
                "Each replica was held to {} CPU ({how}) to stand for a small server, so that adding one adds \
                 capacity; it cannot stand for network hops between machines ({path}).",
                fmt_num(c)
            ));
        }
    }
    items.push(format!(
        "One machine: {}, {} CPUs, {:.0} GiB, {}; the load generator, nginx and Redis shared it.",
        e.cpu_model,
        e.cpus,
        e.memory_bytes as f64 / (1u64 << 30) as f64,
        match e.mode {
            Mode::Local => "local processes",
            Mode::Compose => "docker compose",
            Mode::Existing => "an existing deployment",
        }
    ));
    Section {
        reading: items,
        ..Section::new("caveats", "Before you trust these figures")
    }
}
