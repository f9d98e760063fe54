//! The report's first section: one row per claim of the study note (`../shared/CLAIMS.md`),
//! with a verdict computed from this run's results, the figure that decides it, and the
//! section that shows it. A claim this run has no figure for is "not measurable here",
//! with the reason.

use super::browser;
use super::experiments::{
    failing_text, human_bytes, lifetime_runs, memory_slope, refreshes_per_1000, users_kept,
};
use super::store;
use super::svg::fmt_num;
use super::{us, Section, Table};
use crate::model::{Bottleneck, Experiment, Outcome, Results, Scenario, ServerKind, Variant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Confirmed,
    Qualified,
    Refuted,
    NotMeasurable,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Qualified => "qualified",
            Verdict::Refuted => "refuted",
            Verdict::NotMeasurable => "not measurable here",
        }
    }
}

/// A claim of the study note, in plain words.
pub struct Claim {
    pub id: &'static str,
    pub says: &'static str,
}

/// The study note's claims, in its order (`../shared/CLAIMS.md`).
pub const CLAIMS: [Claim; 18] = [
    Claim { id: "S1", says: "Sessions are stateful: the server remembers each user and uses that state on every request." },
    Claim { id: "S2", says: "With many users, sessions overload the server's RAM." },
    Claim { id: "S3", says: "Sessions overload the database." },
    Claim { id: "S4", says: "Sessions are hard to scale out: more servers need a system that distributes the sessions, or users must always return to the server they logged in on." },
    Claim { id: "S5", says: "Cookies work only on one domain and its subdomains, so using them across domains (CORS) is awkward." },
    Claim { id: "T1", says: "Tokens are stateless: after issuing one, the server keeps nothing and bears no load." },
    Claim { id: "T2", says: "Being stateless, tokens scale with no extra work: any server can serve any request." },
    Claim { id: "T3", says: "Tokens are signed, which proves the server issued them." },
    Claim { id: "T4", says: "No cookie is sent, so the vulnerabilities that come with cookies disappear." },
    Claim { id: "T5", says: "A stolen token is limited by giving it a short lifetime." },
    Claim { id: "T6", says: "Short access tokens make users log in often; the refresh token fixes that." },
    Claim { id: "T7", says: "A refresh token travels only when the access token has expired, so it is less exposed and safer." },
    Claim { id: "T8", says: "A refresh token carries nothing in its payload; the server checks it against the database." },
    Claim { id: "T9", says: "Tokens can be issued with limited privileges." },
    Claim { id: "T10", says: "Any device or domain can check a token, so assets can come from a CDN and servers handle only the API." },
    Claim { id: "J1", says: "A JWT's header holds the algorithm that \"encrypts\" the login information." },
    Claim { id: "J2", says: "A JWT's signature is the login information (ID + password)." },
    Claim { id: "J3", says: "JWTs keep the system stateless and allow safe exchange of information." },
];

/// A verdict, the figure that decides it, and the section that shows it.
struct Finding {
    verdict: Verdict,
    figure: String,
    section: &'static str,
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

/// The sweep's growth of one group: (ratio of medians, ratio of replicas, every point
/// bound by the replicas).
fn growth(r: &Results, s: ServerKind) -> Option<(f64, f64, bool)> {
    let points = r.sweep_points(s, s.main_scenario());
    let (a, b) = (points.first()?, points.last()?);
    (b.replicas > a.replicas && a.median_rps() > 0.0).then(|| {
        (
            b.median_rps() / a.median_rps(),
            f64::from(b.replicas) / f64::from(a.replicas),
            points.iter().all(|p| p.replica_bound()),
        )
    })
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

fn decide(id: &str, r: &Results) -> Option<Finding> {
    let anatomy = r.token_anatomy.as_ref();
    match id {
        "S1" => {
            let (s, t) = (
                r.first_run(ServerKind::Session, Scenario::Read)?,
                r.first_run(ServerKind::Token, Scenario::Read)?,
            );
            let (sc, tc) = (s.redis_commands_per_request?, t.redis_commands_per_request?);
            found(
                if sc >= 1.0 { Verdict::Confirmed } else { Verdict::Refuted },
                format!(
                    "a session read asked Redis {} times per request (the session, looked up every time); a token read {}",
                    fmt_num(sc),
                    fmt_num(tc)
                ),
                "redis",
            )
        }
        "S2" => {
            let m = r.server_memory.as_ref()?;
            let (replica, _) = memory_slope(&m.points, ServerKind::Session, Variant::MemoryStore)?;
            let (_, redis) = memory_slope(&m.points, ServerKind::Session, Variant::Standard)?;
            if replica <= 0.0 && redis <= 0.0 {
                return Some(not_measured("no memory growth per user was measured"));
            }
            found(
                Verdict::Qualified,
                format!(
                    "a logged-in user held {} bytes of the replica's memory (memory store), {} bytes of Redis's (Redis \
                     store): {} per million users, on a machine with {:.0} GiB; it grows with users, it is not an \
                     overload at these sizes, and a shared store moves it out of the replicas",
                    fmt_num(replica.max(0.0)),
                    fmt_num(redis.max(0.0)),
                    human_bytes(replica.max(redis).max(0.0) * 1e6),
                    r.environment.memory_bytes as f64 / (1u64 << 30) as f64
                ),
                "server-memory",
            )
        }
        "S3" => {
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
            let scale = r
                .first_run(ServerKind::Session, Scenario::Read)
                .and_then(|x| x.cpu_us_per_request.redis)
                .filter(|v| *v > 0.0)
                .map_or(String::new(), |us| {
                    format!(
                        "; a whole Redis core would serve about {} session reads per second here",
                        fmt_num(1e6 / us)
                    )
                });
            // Beyond one Redis: a cluster of them, and the store across a network.
            let cluster = store::plateau(r, ServerKind::Session).map_or(String::new(), |p| {
                format!(
                    "; with {} primaries on that budget each (a Redis Cluster), the best session run (over the replica counts) went from {} to {} \
                     req/s",
                    p.cluster.setup.redis_primaries.unwrap_or(3),
                    fmt_num(p.single.rps),
                    fmt_num(p.cluster.rps)
                )
            });
            let far = store::latency_ends(r, ServerKind::Session).map_or(String::new(), |(near, far)| {
                format!(
                    "; with the store {} ms away each way, every session read paid it (median {} ms slower)",
                    fmt_num(far.setup.store_delay_ms.unwrap_or(0.0)),
                    fmt_num(store::p50_added_ms(near, far))
                )
            });
            found(
                Verdict::Qualified,
                if hit {
                    format!(
                        "with Redis held to {} CPU, sessions grew only {}x across the replica counts (Redis saturated) \
                         while tokens grew {}x{scale}: every session request loads the store, and it is the store that \
                         runs out{cluster}{far}",
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
        "S4" => {
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
                        "; sticky routing worked until a replica died ({} of {n} users logged out)",
                        n - k
                    )
                });
            let scaled = growth(r, ServerKind::Session).map_or(String::new(), |(g, n, _)| {
                format!(
                    "; the session sweep went {}x for {}x the replicas",
                    fmt_num(g),
                    fmt_num(n)
                )
            });
            // When one Redis is not enough: the distributing system becomes a cluster, and
            // its failover is what it costs.
            let cluster = store::failovers(r)
                .into_iter()
                .find(|x| x.server == ServerKind::Session)
                .and_then(|x| Some((x, x.failover?)))
                .map_or(String::new(), |(x, f)| {
                    format!(
                        ". Past one Redis, a Redis Cluster spreads the sessions; when one of its primaries died, session \
                         requests failed {} and {} of {} logins written just before were lost",
                        failing_text(x),
                        f.lost,
                        f.written
                    )
                });
            found(
                Verdict::Qualified,
                format!(
                    "sessions in each replica's memory behind round robin: {}% of requests failed{sticky_loss}; with \
                     one shared Redis, {}% failed{scaled}. The distributing system is one Redis{cluster}",
                    fmt_num(rr.error_rate() * 100.0),
                    fmt_num(shared.error_rate() * 100.0)
                ),
                "shared-store",
            )
        }
        "S5" => {
            let Some(b) = r.browser.as_ref() else {
                return browser_missing(r);
            };
            let s = browser::cross_site(b)?;
            found(
                if s.cross_site_worked.is_empty() && !s.same_site_worked.is_empty() {
                    Verdict::Confirmed
                } else {
                    Verdict::Qualified
                },
                format!(
                    "{}; what decides it is the browser's site rules for cookies (SameSite, third-party cookie \
                     blocking), not CORS",
                    s.sentence(b)
                ),
                "browser",
            )
        }
        "T4" => {
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
                format!("{}. {}", a.csrf_sentence(), a.xss_sentence()),
                "browser",
            )
        }
        "T1" => {
            let t = r.first_run(ServerKind::Token, Scenario::Read)?;
            let reads = t.redis_commands_per_request?;
            let refresh = refresh_commands(r).map_or(String::new(), |c| {
                    format!(", and Redis is asked on every refresh ({} commands per request of the refresh scenario)", fmt_num(c))
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
                    "; with the store {} ms away each way, a token read's median moved {} ms, a session read's {} ms",
                    fmt_num(tf.setup.store_delay_ms.unwrap_or(0.0)),
                    fmt_num(store::p50_added_ms(tn, tf)),
                    fmt_num(store::p50_added_ms(sn, sf))
                ),
                _ => String::new(),
            };
            found(
                Verdict::Qualified,
                format!(
                    "a token read asked Redis {} times per request{far}; but the server keeps every login's refresh \
                     family in Redis{family}{refresh}",
                    fmt_num(reads)
                ),
                "server-memory",
            )
        }
        "T2" => {
            let (g, n, bound) = growth(r, ServerKind::Token)?;
            let survived = r
                .arm(
                    Experiment::ReplicaLoss,
                    ServerKind::Token,
                    Variant::Standard,
                )
                .and_then(users_kept)
                .map_or(String::new(), |(k, m)| {
                    format!("; when a replica died, {k} of {m} token users stayed logged in")
                });
            let sessions = growth(r, ServerKind::Session).map_or(String::new(), |(s, _, _)| {
                format!(" (sessions with a shared Redis: {}x)", fmt_num(s))
            });
            found(
                if bound && g >= 0.75 * n {
                    Verdict::Confirmed
                } else {
                    Verdict::Qualified
                },
                format!(
                    "token reads went {}x for {}x the replicas{}{sessions}{survived}",
                    fmt_num(g),
                    fmt_num(n),
                    if bound {
                        ", every run bound by the replicas"
                    } else {
                        ", but not every run was bound by the replicas (see the scaling section)"
                    }
                ),
                "scaling",
            )
        }
        "T3" => {
            let a = anatomy?;
            let refused = a.tampered_payload_status == 401 && a.tampered_signature_status == 401;
            found(
                if refused && a.original_status == 200 { Verdict::Confirmed } else { Verdict::Refuted },
                format!(
                    "the token as issued: {}; a changed claim: {}; one flipped signature bit: {}. It proves a holder of \
                     the key signed it: with HS256 every service that can check a token can also make one",
                    a.original_status, a.tampered_payload_status, a.tampered_signature_status
                ),
                "token-anatomy",
            )
        }
        "T5" => {
            let v = r.revocation.as_ref()?;
            let ms = v.token_refused_after_ms?;
            found(
                Verdict::Qualified,
                format!(
                    "after logout the access token kept working {} s (lifetime {} s + {} s leeway): the lifetime bounds \
                     a stolen token, logout does not; with the denylist it was refused after {}",
                    fmt_num(ms / 1000.0),
                    v.access_token_ttl_s,
                    v.leeway_s,
                    v.denylist_refused_after_ms
                        .map_or("(never)".into(), |d| format!("{} ms", fmt_num(d)))
                ),
                "revocation",
            )
        }
        "T6" => {
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
        "T7" => {
            let runs = lifetime_runs(r);
            let short = runs.first()?;
            let refreshes = *short.requests_by_route.get("/auth/refresh")?;
            let reads: u64 = ["/api/me", "/api/items"]
                .iter()
                .filter_map(|k| short.requests_by_route.get(*k))
                .sum();
            (refreshes > 0).then_some(())?;
            found(
                Verdict::Qualified,
                format!(
                    "the refresh token travels on every refresh: with {} s access tokens it crossed the network once per \
                     {} reads. Less often than the access token, but it is the long-lived one; what limits a stolen copy \
                     here is rotation with reuse detection (a reused token revokes the whole login), not how rarely it \
                     travels",
                    short.setup.access_token_ttl_s?,
                    fmt_num(reads as f64 / refreshes as f64)
                ),
                "access-token-lifetime",
            )
        }
        "T8" => {
            let p = anatomy?.refresh_payload.as_ref()?;
            let keys: Vec<&str> = p.as_object()?.keys().map(String::as_str).collect();
            let checked = refresh_commands(r).map_or(String::new(), |c| {
                    format!("; it is checked against Redis, as the note says ({} commands per request of the refresh scenario)", fmt_num(c))
                });
            found(
                if keys.is_empty() { Verdict::Confirmed } else { Verdict::Refuted },
                format!(
                    "this server's refresh token is a signed JWT whose payload holds {}{checked}. An opaque random \
                     string would also do; carrying nothing is a design choice, not a property of refresh tokens",
                    keys.join(", ")
                ),
                "token-anatomy",
            )
        }
        "T9" => {
            let a = r.authority.as_ref()?;
            let (s, t) = (
                a.read_scope_session.admin_status,
                a.read_scope_token.admin_status,
            );
            found(
                Verdict::Qualified,
                format!(
                    "an admin's read-scoped credential was refused on the admin route by both models ({s} session, {t} \
                     token); the token carries its scope (\"{}\") for other services to check offline, but a session \
                     limits privileges just as well",
                    a.read_scope_token_claim
                ),
                "authority",
            )
        }
        "T10" => {
            let e = r.arm(Experiment::Signing, ServerKind::Token, Variant::Eddsa)?;
            (e.errors == 0).then_some(())?;
            found(
                Verdict::Qualified,
                format!(
                    "every replica verified {} EdDSA-signed requests with the public key alone ({} Redis commands \
                     per request, {} of CPU each); serving assets from a CDN was not measured",
                    e.requests,
                    super::num_or(e.redis_commands_per_request, "not seen"),
                    us(e.cpu_us_per_request.replicas)
                ),
                "signing",
            )
        }
        "J1" => {
            let a = anatomy?;
            found(
                Verdict::Refuted,
                format!(
                    "the live token's header is {}: it names the signing algorithm and key; nothing is encrypted, \
                     and anyone can decode it",
                    serde_json::to_string(&a.header).ok()?
                ),
                "token-anatomy",
            )
        }
        "J2" => {
            let a = anatomy?;
            found(
                Verdict::Refuted,
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
        "J3" => {
            let a = anatomy?;
            let keys: Vec<&str> = a.payload.as_object()?.keys().map(String::as_str).collect();
            found(
                Verdict::Qualified,
                format!(
                    "anyone decoded the payload ({}); a changed payload was refused ({}): the exchange is tamper-evident, \
                     not secret, and stateless only for reads (see T1)",
                    keys.join(", "),
                    a.tampered_payload_status
                ),
                "token-anatomy",
            )
        }
        _ => None,
    }
}

/// The verdict table; `present` are the ids of the report's other sections (a row links
/// only to a section that is there).
pub fn section(results: &Results, present: &[(&'static str, String)]) -> Section {
    let mut rows = Vec::new();
    let mut links = Vec::new();
    let mut counts = [0usize; 4];
    for c in &CLAIMS {
        let f = decide(c.id, results).unwrap_or_else(|| {
            not_measured("this run did not include the experiment that measures it")
        });
        counts[f.verdict as usize] += 1;
        rows.push(vec![
            c.id.to_string(),
            c.says.to_string(),
            f.verdict.name().to_string(),
            f.figure,
        ]);
        links.push(
            present
                .iter()
                .find(|(id, _)| *id == f.section)
                .map_or((String::new(), "-".into()), |(id, title)| {
                    (id.to_string(), title.clone())
                }),
        );
    }
    let mut code = Vec::new();
    if let Some(a) = &results.token_anatomy {
        let parts: Vec<&str> = a.access_token.split('.').collect();
        code.push((
            "J1 and J2, corrected on this run's live access token".into(),
            a.access_token.clone(),
        ));
        code.push((
            "header (J1: it names the algorithm; it encrypts nothing)".into(),
            serde_json::to_string_pretty(&a.header).unwrap_or_default(),
        ));
        if parts.len() == 3 {
            code.push((
                "signature (J2: a MAC over header and payload, no password)".into(),
                format!(
                    "HMAC-SHA256(server key, \"{}\" + \".\" + \"{}\")\n= {}{}",
                    parts[0],
                    parts[1],
                    parts[2],
                    if a.signature_recomputed == Some(true) {
                        "\n(recomputed with this run's key: identical)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    Section {
        reading: vec![format!(
            "Of the study note's 18 claims, this run confirmed {}, qualified {} (true only in part, or true for both \
             models), refuted {}, and could not measure {}. Each row gives the figure that decides it and the section \
             that shows how it was measured.",
            counts[Verdict::Confirmed as usize],
            counts[Verdict::Qualified as usize],
            counts[Verdict::Refuted as usize],
            counts[Verdict::NotMeasurable as usize]
        )],
        method: "Verdicts are computed from results.json by the report generator; the claims are the study note's, in \
                 plain words."
            .into(),
        table: Some(Table {
            links,
            ..Table::new(&["claim", "the note says", "verdict", "what this run measured", "section"], rows)
        }),
        code,
        ..Section::new("verdicts", "What the study note claims, and what this run found")
    }
}
