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
    pub public_unloaded_us: Option<u64>,
    pub budget_cpus: Option<f64>,
    /// Redis frozen: the session and token arms (with the retry grace).
    pub outage: Option<(FaultImpact<'a>, FaultImpact<'a>)>,
    /// A replica killed: sessions in Redis, and tokens.
    pub loss: Option<(FaultImpact<'a>, FaultImpact<'a>)>,
    /// Seconds a token worked after logout, and its lifetime and leeway; the session's ms.
    pub revocation: Option<(f64, u64, u64, Option<f64>)>,
    /// ms until a demoted admin's old credential was refused: session, token.
    pub demotion: Option<(Option<f64>, Option<f64>)>,
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
            public_unloaded_us: curves
                .iter()
                .find(|c| c.server == ServerKind::Public)
                .and_then(Curve::unloaded_us),
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
            demotion: results
                .authority
                .as_ref()
                .map(|a| (a.demoted_session_ms, a.demoted_token_ms)),
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

/// The findings, one sentence each, in the order a student asks: which is faster, which
/// serves more, what happens when something fails, how fast a logout acts.
fn findings(h: &Headline) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(s), Some(t)) = (h.session.unloaded_us, h.token.unloaded_us) {
        let loaded = match (h.session.loaded_p50_ms, h.token.loaded_p50_ms) {
            (Some((s, p)), Some((t, _))) => format!(
                "; at {p}% of capacity, p50 {} against {} ms",
                fmt_num(s),
                fmt_num(t)
            ),
            _ => String::new(),
        };
        out.push(format!(
            "Speed: no difference a user feels. At light load a session read took {s} µs, a token read {t} µs{}{loaded}.",
            h.public_unloaded_us
                .map_or(String::new(), |p| format!(" (no credential: {p} µs)"))
        ));
    }
    if let (Some(s), Some(t)) = (h.session.per_replica_rps, h.token.per_replica_rps) {
        let budget = h
            .budget_cpus
            .map_or(String::new(), |c| format!(" held to {} CPU", fmt_num(c)));
        let growth = match (h.session.growth, h.token.growth) {
            (Some(sg), Some(tg)) if !sg.differs_from(&tg) => "; both scaled alike with replicas",
            (Some(sg), Some(tg)) if sg.median > tg.median => {
                "; sessions scaled better with replicas"
            }
            (Some(_), Some(_)) => "; tokens scaled better with replicas",
            _ => "",
        };
        out.push(format!(
            "Capacity: tokens serve more per CPU. One replica{budget} served {} token reads/s, {} session reads/s{growth}.",
            fmt_num(t),
            fmt_num(s)
        ));
    }
    if let Some((s, t)) = &h.outage {
        out.push(format!(
            "Redis stops: session requests fell to {} of their rate, token requests to {} (refreshes need Redis); \
             {} session and {} token users stayed logged in.",
            pct(s.during_share),
            pct(t.during_share),
            kept(s),
            kept(t)
        ));
    }
    if let Some((s, t)) = &h.loss {
        out.push(format!(
            "A replica dies: {} session and {} token users stayed logged in; each served {} and {} of before on half \
             the servers.",
            kept(s),
            kept(t),
            pct(s.during_share),
            pct(t.during_share)
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
    let demoted = h.demotion.and_then(|(_, t)| t).map_or(String::new(), |ms| {
        format!(" (a demoted admin {} s)", fmt_num(ms / 1000.0))
    });
    Some(format!(
        "Choose sessions when a logout or a role change must act at once and the store can be kept up. Choose \
         tokens when many services must check a credential without a store, and a revoked token may keep working \
         {} s{demoted}.",
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
        "Sessions (a cookie looked up in Redis on every request) against tokens (a signed JWT the server checks \
         alone, renewed through Redis), same API:"
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
            "Each sweep point is {rounds} round(s) of {} s; a difference smaller than the spread between rounds is \
             no difference.",
            fmt_num(r.duration_s)
        ));
        if let Some(c) = r.cpus_per_replica {
            items.push(format!(
                "Each replica was held to {} CPU by a cgroup quota: it simulates small servers, so that adding one \
                 adds capacity; it cannot simulate network hops between machines (everything ran on one machine's \
                 loopback) or a bigger server's caches.",
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
