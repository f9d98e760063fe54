//! The verdicts on the study note's claims (`../shared/CLAIMS.md`): one small rule per
//! claim, applied to this run's results, giving a label (`claims::Verdict`, whose meanings
//! the report states), the figure that decides it, and the section that shows it. A claim
//! this run has no figure for is "not measurable here", with the reason.

use super::browser;
use super::claims::{ClaimId, Verdict};
use super::experiments::{
    human_bytes, lifetime_runs, memory_slope, refreshes_per_1000, users_kept,
};
use super::figures::{FaultImpact, Growth};
use super::store;
use super::svg::fmt_num;
use super::{us, Section, Table};
use crate::model::{
    Attempt, Bottleneck, Experiment, Outcome, Results, Scenario, ServerKind, Variant,
};

/// A verdict, the figure that decides it, and the id of the section that shows it.
#[derive(Debug, Clone)]
pub struct Finding {
    pub verdict: Verdict,
    pub figure: String,
    pub section: &'static str,
}

fn found(verdict: Verdict, figure: String, section: &'static str) -> Option<Finding> {
    Some(Finding {
        verdict,
        figure,
        section,
    })
}

fn not_measured(why: &str) -> Finding {
    Finding {
        verdict: Verdict::NotMeasurable,
        figure: why.into(),
        section: "",
    }
}

/// What the token refresh scenario asked Redis per request.
fn refresh_commands(r: &Results) -> Option<f64> {
    r.first_run(ServerKind::Token, Scenario::Refresh)?
        .redis_commands_per_request
}

/// Every claim, in the note's order, with its finding (the rules applied to `results`).
pub fn evaluate(results: &Results) -> Vec<(ClaimId, Finding)> {
    ClaimId::ALL
        .into_iter()
        .map(|c| {
            let f = decide(c, results).unwrap_or_else(|| {
                not_measured("this run did not include the experiment that measures it")
            });
            (c, f)
        })
        .collect()
}

/// S5 and T4 without experiment `browser`: why it did not run, when the run said so.
fn browser_missing(r: &Results) -> Option<Finding> {
    let note = r
        .environment
        .notes
        .iter()
        .find(|n| n.starts_with("browser: "))?;
    Some(not_measured(&format!(
        "needs a real browser; experiment {note}"
    )))
}

/// The rule of `claim`, applied to this run: `None` when the run has no figure for it.
fn decide(claim: ClaimId, r: &Results) -> Option<Finding> {
    match claim {
        ClaimId::S1 => s1(r),
        ClaimId::S2 => s2(r),
        ClaimId::S3 => s3(r),
        ClaimId::S4 => s4(r),
        ClaimId::S5 => s5(r),
        ClaimId::T1 => t1(r),
        ClaimId::T2 => t2(r),
        ClaimId::T3 => t3(r),
        ClaimId::T4 => t4(r),
        ClaimId::T5 => t5(r),
        ClaimId::T6 => t6(r),
        ClaimId::T7 => t7(r),
        ClaimId::T8 => t8(r),
        ClaimId::T9 => t9(r),
        ClaimId::T10 => t10(r),
        ClaimId::J1 => j1(r),
        ClaimId::J2 => j2(r),
        ClaimId::J3 => j3(r),
    }
}

fn s1(r: &Results) -> Option<Finding> {
    let (s, t) = (
        r.first_run(ServerKind::Session, Scenario::Read)?,
        r.first_run(ServerKind::Token, Scenario::Read)?,
    );
    let (sc, tc) = (s.redis_commands_per_request?, t.redis_commands_per_request?);
    found(
        if sc >= 1.0 {
            Verdict::Confirmed
        } else {
            Verdict::Refuted
        },
        format!(
            "a session read asked Redis {} times per request, a token read {}",
            fmt_num(sc),
            fmt_num(tc)
        ),
        "redis",
    )
}

fn s2(r: &Results) -> Option<Finding> {
    let m = r.server_memory.as_ref()?;
    let (replica, _) = memory_slope(&m.points, ServerKind::Session, Variant::MemoryStore)?;
    let (_, redis) = memory_slope(&m.points, ServerKind::Session, Variant::Standard)?;
    if replica <= 0.0 && redis <= 0.0 {
        return Some(not_measured("no memory growth per user was measured"));
    }
    // Overload: a million users' state would not fit in this machine's memory.
    let million = replica.max(redis).max(0.0) * 1e6;
    found(
        if million > r.environment.memory_bytes as f64 {
            Verdict::Confirmed
        } else {
            Verdict::Qualified
        },
        format!(
            "{} bytes of the replica's memory per user (memory store), {} of Redis's: {} per million users, on a \
             {:.0} GiB machine; a shared store moves it out",
            fmt_num(replica.max(0.0)),
            fmt_num(redis.max(0.0)),
            human_bytes(replica.max(redis).max(0.0) * 1e6),
            r.environment.memory_bytes as f64 / (1u64 << 30) as f64
        ),
        "server-memory",
    )
}

fn s3(r: &Results) -> Option<Finding> {
    let runs = r.experiment(Experiment::StoreBound);
    let session: Vec<_> = runs
        .iter()
        .filter(|x| x.server == ServerKind::Session)
        .collect();
    let token: Vec<_> = runs
        .iter()
        .filter(|x| x.server == ServerKind::Token)
        .collect();
    let ratio = |v: &[&&crate::model::Run]| -> Option<f64> {
        let a = v.iter().min_by_key(|x| x.replicas)?;
        let b = v.iter().max_by_key(|x| x.replicas)?;
        (b.replicas > a.replicas && a.rps > 0.0).then(|| b.rps / a.rps)
    };
    let (sg, tg) = (ratio(&session)?, ratio(&token)?);
    let budget = session.first()?.setup.redis_cpus?;
    let hit = session
        .iter()
        .any(|x| x.bottleneck == Some(Bottleneck::Redis));
    let scale = super::figures::cpu_us(r, ServerKind::Session, |c| c.redis)
        .filter(|f| f.lo > 0.0)
        .map_or(String::new(), |f| {
            format!(
                "; one Redis core: about {} session reads/s",
                f.map(|us| 1e6 / us).text("")
            )
        });
    // Beyond one Redis: a cluster of them, and the store across a network.
    let cluster = store::plateau(r, ServerKind::Session).map_or(String::new(), |p| {
        format!(
            "; a Redis Cluster of {} such primaries took the best session run from {} to {} req/s",
            p.cluster.setup.redis_primaries.unwrap_or(3),
            fmt_num(p.single.rps),
            fmt_num(p.cluster.rps)
        )
    });
    let far = store::latency_ends(r, ServerKind::Session).map_or(String::new(), |(near, far)| {
        format!(
            "; a store {} ms away made every session read {} ms slower",
            fmt_num(far.setup.store_delay_ms.unwrap_or(0.0)),
            fmt_num(store::p50_added_ms(near, far))
        )
    });
    // Overload: confirmed where one whole Redis core would be the limit at the rates the
    // sweep reached; qualified where it took a small budget to make Redis the limit;
    // refuted where even that budget never made it one.
    let best = r
        .sweep(ServerKind::Session, Scenario::Read)
        .iter()
        .map(|x| x.rps)
        .fold(0.0, f64::max);
    let whole_core_limits = super::figures::cpu_us(r, ServerKind::Session, |c| c.redis)
        .filter(|f| f.lo > 0.0)
        .is_some_and(|f| 1e6 / f.median <= best);
    found(
        match (hit, whole_core_limits) {
            (true, true) => Verdict::Confirmed,
            (true, false) => Verdict::Qualified,
            (false, _) => Verdict::Refuted,
        },
        if hit {
            format!(
                "with Redis held to {} CPU, sessions grew only {}x across the replica counts (Redis saturated), \
                 tokens {}x{scale}{cluster}{far}",
                fmt_num(budget),
                fmt_num(sg),
                fmt_num(tg)
            )
        } else {
            format!(
                "every session request is a Redis read, but even held to {} CPU Redis was never the bottleneck \
                 (sessions {}x, tokens {}x){scale}{cluster}{far}",
                fmt_num(budget),
                fmt_num(sg),
                fmt_num(tg)
            )
        },
        "store-bound",
    )
}

fn s4(r: &Results) -> Option<Finding> {
    let e = Experiment::SharedStore;
    let rr = r.arm(e, ServerKind::Session, Variant::MemoryStore)?;
    let shared = r.arm(e, ServerKind::Session, Variant::Standard)?;
    let sticky_loss = r
        .arm(
            Experiment::ReplicaLoss,
            ServerKind::Session,
            Variant::MemoryStoreSticky,
        )
        .and_then(users_kept)
        .map_or(String::new(), |(k, n)| {
            format!(
                "; sticky routing, until a replica died ({} of {n} users logged out)",
                n - k
            )
        });
    let scaled = Growth::of(r, ServerKind::Session).map_or(String::new(), |g| {
        format!(
            ", and sessions grew {} for {}x the replicas",
            g.text(),
            fmt_num(g.replicas)
        )
    });
    // When one Redis is not enough: the distributing system becomes a cluster, and
    // its failover is what it costs.
    let cluster = store::failovers(r)
        .into_iter()
        .find(|x| x.server == ServerKind::Session)
        .and_then(|x| Some((x, x.failover?)))
        .map_or(String::new(), |(x, f)| {
            let impact = FaultImpact::of(x);
            format!(
                ". A Redis Cluster's failover: session requests at {} of before, {} of {} fresh logins lost",
                FaultImpact::share_text(impact.and_then(|i| i.during_share)),
                f.lost,
                f.written
            )
        });
    // Hard to scale out: confirmed where even a shared store did not make sessions scale;
    // qualified where one shared store was all the distributing system they needed.
    let shared_scaled = shared.error_rate() == 0.0
        && Growth::of(r, ServerKind::Session)
            .is_some_and(|g| g.replica_bound && g.median >= 0.75 * g.replicas);
    found(
        if rr.error_rate() > 0.0 && !shared_scaled {
            Verdict::Confirmed
        } else if rr.error_rate() > 0.0 {
            Verdict::Qualified
        } else {
            Verdict::Refuted
        },
        format!(
            "sessions in each replica's memory, round robin: {}% of requests failed{sticky_loss}; one shared Redis: {}% \
             failed{scaled}{cluster}",
            fmt_num(rr.error_rate() * 100.0),
            fmt_num(shared.error_rate() * 100.0)
        ),
        "shared-store",
    )
}

fn s5(r: &Results) -> Option<Finding> {
    let Some(b) = r.browser.as_ref() else {
        return browser_missing(r);
    };
    let s = browser::cross_site(b)?;
    // The claim names CORS as the reason. It is confirmed only where CORS is what stopped
    // the cookie (a refused preflight); where the browser withheld it (SameSite, its
    // third-party cookie blocking), the outcome holds for another reason.
    let cors_stopped = b.cases.iter().any(|c| {
        c.carrier.is_session()
            && c.attempt == Attempt::ApiCrossSite
            && c.outcome == Outcome::PreflightRefused
    });
    let verdict = match (s.cross_site_worked.is_empty(), cors_stopped) {
        (false, _) => Verdict::Refuted,
        (true, true) => Verdict::Confirmed,
        (true, false) => Verdict::Qualified,
    };
    found(
        verdict,
        format!(
            "the session cookie worked same-site under SameSite={}, cross-site under {}; a token cross-site: {}. \
             CORS allowed the app's origin with credentials: {} stopped the cookie, not CORS",
            browser::list(&s.same_site_worked),
            if s.cross_site_worked.is_empty() {
                "none".to_string()
            } else {
                format!("SameSite={}", browser::list(&s.cross_site_worked))
            },
            s.token_cross_site.map_or("not tried", Outcome::describe),
            if s.why.iter().any(|w| w.contains("UserPreferences")) {
                "third-party cookie blocking"
            } else {
                "SameSite"
            }
        ),
        "browser",
    )
}

fn t1(r: &Results) -> Option<Finding> {
    let t = r.first_run(ServerKind::Token, Scenario::Read)?;
    let reads = t.redis_commands_per_request?;
    let refresh = refresh_commands(r).map_or(String::new(), |c| {
        format!(
            ", asked on every refresh ({} commands per request of the refresh scenario)",
            fmt_num(c)
        )
    });
    let family = r
        .server_memory
        .as_ref()
        .and_then(|m| memory_slope(&m.points, ServerKind::Token, Variant::Standard))
        .filter(|(_, b)| *b > 0.0)
        .map_or(String::new(), |(_, b)| {
            format!(" ({} bytes of Redis per login)", fmt_num(b))
        });
    let far = match (
        store::latency_ends(r, ServerKind::Token),
        store::latency_ends(r, ServerKind::Session),
    ) {
        (Some((tn, tf)), Some((sn, sf))) => format!(
            "; a store {} ms away moved a token read's median {} ms, a session read's {} ms",
            fmt_num(tf.setup.store_delay_ms.unwrap_or(0.0)),
            fmt_num(store::p50_added_ms(tn, tf)),
            fmt_num(store::p50_added_ms(sn, sf))
        ),
        _ => String::new(),
    };
    // Keeps nothing: a read that asks the store refutes it; state kept for refreshes
    // (a family per login, commands per refresh) qualifies it.
    let keeps = !family.is_empty() || refresh_commands(r).is_some_and(|c| c > 0.0);
    found(
        if reads > 0.0 {
            Verdict::Refuted
        } else if keeps {
            Verdict::Qualified
        } else {
            Verdict::Confirmed
        },
        format!(
            "a token read asked Redis {} times{far}; each login's refresh family lives in Redis{family}{refresh}",
            fmt_num(reads)
        ),
        "server-memory",
    )
}

fn t2(r: &Results) -> Option<Finding> {
    let token = Growth::of(r, ServerKind::Token)?;
    let session = Growth::of(r, ServerKind::Session);
    let survived = r
        .arm(
            Experiment::ReplicaLoss,
            ServerKind::Token,
            Variant::Standard,
        )
        .and_then(users_kept)
        .map_or(String::new(), |(k, m)| {
            format!(
                "; a replica's death logged out {} of {m} token users",
                m - k
            )
        });
    let scaled = token.replica_bound && token.median >= 0.75 * token.replicas;
    // The claim sets tokens against sessions: tokens scaling is not enough when sessions
    // with one shared Redis scaled as well, within the spread of the rounds.
    let verdict = match session {
        _ if !scaled => Verdict::Qualified,
        Some(s) if !token.differs_from(&s) => Verdict::NoDifference,
        Some(s) if s.median > token.median => Verdict::Refuted,
        _ => Verdict::Confirmed,
    };
    let sessions = session.map_or(String::new(), |s| {
        format!(
            "; sessions with a shared Redis {}{}",
            s.text(),
            if token.differs_from(&s) {
                ""
            } else {
                ": the ranges overlap"
            }
        )
    });
    found(
        verdict,
        format!(
            "token reads grew {} for {}x the replicas{}{sessions}{survived}",
            token.text(),
            fmt_num(token.replicas),
            if token.replica_bound {
                ""
            } else {
                ", but not every run was bound by the replicas"
            }
        ),
        "scaling",
    )
}

fn t3(r: &Results) -> Option<Finding> {
    let anatomy = r.token_anatomy.as_ref();
    let a = anatomy?;
    let refused = a.tampered_payload_status == 401 && a.tampered_signature_status == 401;
    found(
        if refused && a.original_status == 200 { Verdict::Confirmed } else { Verdict::Refuted },
        format!(
            "as issued: {}; a changed claim: {}; a flipped signature bit: {}. It proves a key holder signed it \
             (with HS256, any checker can also sign)",
            a.original_status, a.tampered_payload_status, a.tampered_signature_status
        ),
        "token-anatomy",
    )
}

fn t4(r: &Results) -> Option<Finding> {
    let Some(b) = r.browser.as_ref() else {
        return browser_missing(r);
    };
    let a = browser::attacks(b)?;
    let stolen = a
        .stolen
        .is_some_and(|(o, ..)| o == Outcome::CredentialStolen);
    found(
        if a.token_csrf_won > 0 {
            Verdict::Refuted
        } else if stolen {
            Verdict::Qualified
        } else {
            Verdict::Confirmed
        },
        format!(
            "CSRF: {} of {} forged requests won against the token, {} against the session cookie; XSS: {}; the \
             injected script acted as the user in both models (sessions: {}; tokens: {})",
            a.token_csrf_won,
            a.token_csrf_tried,
            if a.session_csrf_won.is_empty() {
                "none".to_string()
            } else {
                format!("{} kinds", a.session_csrf_won.len())
            },
            match a.stolen {
                Some((Outcome::CredentialStolen, usable, _)) => format!(
                    "a token in localStorage was stolen and worked {} from outside",
                    usable.map_or("(not measured)".into(), |s| format!("{} s", fmt_num(s)))
                ),
                Some((o, ..)) => format!("the token in localStorage: {}", o.describe()),
                None => "not tried".into(),
            },
            a.session_act.map_or("not tried", Outcome::describe),
            a.token_act.map_or("not tried", Outcome::describe)
        ),
        "browser",
    )
}

fn t5(r: &Results) -> Option<Finding> {
    let v = r.revocation.as_ref()?;
    let ms = v.token_refused_after_ms?;
    // The lifetime alone bounds it only without a leeway on top.
    found(
        if v.leeway_s == 0 {
            Verdict::Confirmed
        } else {
            Verdict::Qualified
        },
        format!(
            "after logout the access token kept working {} s ({} s lifetime + {} s leeway): the lifetime, not \
             logout, bounds a stolen token; with the denylist it was refused after {}",
            fmt_num(ms / 1000.0),
            v.access_token_ttl_s,
            v.leeway_s,
            v.denylist_refused_after_ms
                .map_or("(never)".into(), |d| format!("{} ms", fmt_num(d)))
        ),
        "revocation",
    )
}

fn t6(r: &Results) -> Option<Finding> {
    let runs = lifetime_runs(r);
    let short = runs.first()?;
    let rate = refreshes_per_1000(short)?;
    let out: u32 = runs.iter().filter_map(|x| x.users_logged_out).sum();
    found(
        if out == 0 { Verdict::Confirmed } else { Verdict::Qualified },
        format!(
            "with {} s access tokens, users refreshed {} times per second per 1000 users and {out} users were \
             logged out across every lifetime tried",
            short.setup.access_token_ttl_s?,
            fmt_num(rate)
        ),
        "access-token-lifetime",
    )
}

fn t7(r: &Results) -> Option<Finding> {
    let runs = lifetime_runs(r);
    let short = runs.first()?;
    let refreshes = *short.requests_by_route.get("/auth/refresh")?;
    let reads: u64 = ["/api/me", "/api/items"]
        .iter()
        .filter_map(|k| short.requests_by_route.get(*k))
        .sum();
    (refreshes > 0).then_some(())?;
    // How often it travels is measured; whether that makes it safer is not.
    found(
        Verdict::PartlyMeasured,
        format!(
            "with {} s access tokens it crossed the network once per {} reads (users making {} reads a second); a \
             stolen copy is limited by rotation with reuse detection, not by how rarely it travels",
            short.setup.access_token_ttl_s?,
            fmt_num(reads as f64 / refreshes as f64),
            fmt_num(reads as f64 / (f64::from(short.users().max(1)) * short.duration_s.max(1e-9)))
        ),
        "access-token-lifetime",
    )
}

fn t8(r: &Results) -> Option<Finding> {
    let p = r.token_anatomy.as_ref()?.refresh_payload.as_ref()?;
    let keys: Vec<&str> = p.as_object()?.keys().map(String::as_str).collect();
    let checked = refresh_commands(r);
    // What the claim is about is that a refresh token reveals nothing about the user and
    // is checked against the store: ids and times are not user data.
    const USER_DATA: [&str; 5] = ["sub", "preferred_username", "roles", "scope", "email"];
    let user_data: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| USER_DATA.contains(k))
        .collect();
    let verdict = match (keys.is_empty(), user_data.is_empty(), checked) {
        (_, _, None) => Verdict::PartlyMeasured,
        (_, _, Some(c)) if c <= 0.0 => Verdict::Refuted,
        (true, _, _) => Verdict::Confirmed,
        (false, true, _) => Verdict::Qualified,
        (false, false, _) => Verdict::Refuted,
    };
    found(
        verdict,
        format!(
            "this server's refresh token is a JWT holding {} ({}){}; carrying nothing is a design choice",
            keys.join(", "),
            if user_data.is_empty() {
                "ids and times, no user data".to_string()
            } else {
                format!("user data: {}", user_data.join(", "))
            },
            checked.map_or("; whether it is checked against the store was not measured".into(), |c| {
                format!(
                    "; checked against Redis ({} commands per request of the refresh scenario)",
                    fmt_num(c)
                )
            })
        ),
        "token-anatomy",
    )
}

fn t9(r: &Results) -> Option<Finding> {
    let a = r.authority.as_ref()?;
    let (s, t) = (
        a.read_scope_session.admin_status,
        a.read_scope_token.admin_status,
    );
    // Tokens can be limited: confirmed where only the token limits, for both models alike
    // where both do, refuted where the token does not.
    let limits = |status: u16| status == 403 || status == 401;
    found(
        match (limits(s), limits(t)) {
            (_, false) => Verdict::Refuted,
            (true, true) => Verdict::Qualified,
            (false, true) => Verdict::Confirmed,
        },
        format!(
            "an admin's read-scoped credential on the admin route: {s} from the session server, {t} from the token \
             server; the token carries its scope (\"{}\") for other services to check offline",
            a.read_scope_token_claim
        ),
        "authority",
    )
}

fn t10(r: &Results) -> Option<Finding> {
    let e = r.arm(Experiment::Signing, ServerKind::Token, Variant::Eddsa)?;
    (e.errors == 0).then_some(())?;
    let offline = e.redis_commands_per_request.is_some_and(|c| c == 0.0);
    found(
        // The CDN half is never measured here: at best, the offline check is.
        if offline {
            Verdict::PartlyMeasured
        } else {
            Verdict::Refuted
        },
        format!(
            "{} EdDSA-signed requests on {} replica{} verified with the public key alone ({} Redis commands, {} of \
             CPU each); a CDN was not measured",
            e.requests,
            e.replicas,
            if e.replicas == 1 { "" } else { "s" },
            super::num_or(e.redis_commands_per_request, "not seen"),
            us(e.cpu_us_per_request.replicas)
        ),
        "signing",
    )
}

fn j1(r: &Results) -> Option<Finding> {
    let anatomy = r.token_anatomy.as_ref();
    let a = anatomy?;
    found(
        if a.header.get("alg").is_some() {
            Verdict::Refuted
        } else {
            Verdict::Qualified
        },
        format!(
            "the live token's header is {}: it names the signing algorithm and key; nothing is encrypted",
            serde_json::to_string(&a.header).ok()?
        ),
        "token-anatomy",
    )
}

fn j2(r: &Results) -> Option<Finding> {
    let anatomy = r.token_anatomy.as_ref();
    let a = anatomy?;
    found(
        if a.password_in_token == Some(true) {
            Verdict::Confirmed
        } else {
            Verdict::Refuted
        },
        format!(
            "the signature is HMAC-SHA256(server key, base64url(header) \".\" base64url(payload)){}; the \
             password appears {} in the token",
            match a.signature_recomputed {
                Some(true) => ", recomputed here and matching",
                _ => "",
            },
            match a.password_in_token {
                Some(false) => "nowhere",
                Some(true) => "SOMEWHERE",
                None => "(not checked)",
            }
        ),
        "token-anatomy",
    )
}

fn j3(r: &Results) -> Option<Finding> {
    let anatomy = r.token_anatomy.as_ref();
    let a = anatomy?;
    let keys: Vec<&str> = a.payload.as_object()?.keys().map(String::as_str).collect();
    found(
        if a.tampered_payload_status == 200 {
            Verdict::Refuted
        } else {
            Verdict::Qualified
        },
        format!(
            "anyone decoded the payload ({}); a changed one was refused ({}): tamper-evident, not secret; stateless \
             only for reads (T1)",
            keys.join(", "),
            a.tampered_payload_status
        ),
        "token-anatomy",
    )
}

/// The verdict table; `present` are the ids of the report's other sections (a row links
/// only to a section that is there).
pub fn section(results: &Results, present: &[(&'static str, String)]) -> Section {
    let findings = evaluate(results);
    let mut rows = Vec::new();
    let mut links = Vec::new();
    for (c, f) in &findings {
        rows.push(vec![
            c.code().to_string(),
            c.says().to_string(),
            f.verdict.name().to_string(),
            f.figure.clone(),
        ]);
        links.push(
            present
                .iter()
                .find(|(id, _)| *id == f.section)
                .map_or((String::new(), "-".into()), |(id, _)| {
                    (id.to_string(), "how".to_string())
                }),
        );
    }
    let counts: Vec<String> = Verdict::ALL
        .iter()
        .filter_map(|v| {
            let n = findings.iter().filter(|(_, f)| f.verdict == *v).count();
            (n > 0).then(|| format!("{} {n}", v.name()))
        })
        .collect();
    let rules: Vec<String> = Verdict::ALL
        .iter()
        .map(|v| format!("{}: {}", v.name(), v.rule()))
        .collect();
    Section {
        reading: vec![
            format!(
                "Of the study note's {} claims: {}.",
                findings.len(),
                counts.join(", ")
            ),
            format!(
                "What a label means: {}. Each claim's own rule is in the appendix.",
                rules.join("; ")
            ),
        ],
        table: Some(Table {
            links,
            badge_column: Some(2),
            ..Table::new(
                &[
                    "claim",
                    "the note says",
                    "verdict",
                    "what this run measured",
                    "section",
                ],
                rows,
            )
        }),
        ..Section::new("verdicts", "The study note's claims, checked")
    }
}

/// Every claim's own rule, for the appendix: how each label in the verdict table was decided.
pub fn rules_section() -> Section {
    let rows = ClaimId::ALL
        .iter()
        .map(|c| vec![c.code().to_string(), c.rule().to_string()])
        .collect();
    Section {
        table: Some(Table::new(&["claim", "its label is"], rows)),
        ..Section::new("claim-rules", "How each claim's label is decided")
    }
}
