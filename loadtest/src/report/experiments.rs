//! Report sections for the experiments that show what the throughput numbers hide.

use super::svg::{bar_chart, fmt_num};
use super::{bottleneck_text, row, Section, Table};
use crate::model::{Experiment, Phase, Results, Run, Scenario, ServerKind, Variant};

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

/// An experiment's arm, in a few words.
fn arm(r: &Run) -> String {
    r.variant.describe(r.server).into()
}

/// The arm with the server named, where an experiment has both models.
fn server_arm(r: &Run) -> String {
    match (r.server, r.variant) {
        (ServerKind::Token, Variant::Standard) => "token".into(),
        (ServerKind::Session, Variant::Standard)
            if r.experiment == Some(Experiment::RedisOutage) =>
        {
            "session".into()
        }
        (s, v) => format!("{}, {}", s.name(), v.describe(s)),
    }
}

pub fn shared_store(results: &Results) -> Option<Section> {
    let runs = results.experiment(Experiment::SharedStore);
    if runs.is_empty() {
        return None;
    }
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
            "With sessions in each replica's memory and round-robin balancing, {}% of requests failed: a request \
             that lands on a replica other than the one where its user logged in finds no session there.",
            fmt_num(error_rate(r))
        ));
    }
    if let Some(r) = find(Variant::MemoryStoreSticky) {
        reading.push(format!(
            "Sticky routing (every request of a client goes to the same replica) brought failures to {}%, and the \
             replicas got {} of the requests: stickiness works, but the load is only as even as the hash of the \
             clients, and a replica that goes away takes its users' sessions with it.",
            fmt_num(error_rate(r)),
            spread_text(r)
        ));
    }
    if let Some(r) = find(Variant::Standard) {
        reading.push(format!(
            "With the sessions in Redis, round robin worked with {}% failures: any replica can serve any session, \
             at the price of one Redis read per request ({} measured).",
            fmt_num(error_rate(r)),
            r.redis_commands_per_request.map_or("-".into(), fmt_num)
        ));
    }
    Some(Section {
        id: "shared-store",
        code: Vec::new(),
        title: "Why replicas need a shared session store".into(),
        method: format!(
            "The session server's read scenario three times behind nginx: sessions kept in each replica's memory with \
             round-robin routing; the same with sticky routing ({} on a per-client id the load generator \
             sends); and sessions in Redis with round robin.",
            results
                .environment
                .config
                .get("sticky_routing")
                .map_or("nginx hashing", String::as_str)
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

fn ms_text(v: Option<f64>, limit_s: u64) -> String {
    match v {
        Some(ms) if ms < 1000.0 => format!(
            "refused at once (first check, {} ms after logout)",
            fmt_num(ms)
        ),
        Some(ms) => format!("still accepted for {} s after logout", fmt_num(ms / 1000.0)),
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
    let plain = results
        .sweep(ServerKind::Token, Scenario::Read)
        .into_iter()
        .next();
    let deny = results.arm(Experiment::Revocation, ServerKind::Token, Variant::Denylist);
    let mut reading = vec![
        "Logging out of a session deletes it on the server, so the very next request with the old cookie fails.".to_string(),
        format!(
            "An access token is checked with the key alone, so logging out cannot reach it: it keeps working until \
             it expires ({} s here) plus the {} s the server allows for clocks that disagree. That window is the \
             price of not asking a store on every request.",
            r.access_token_ttl_s, r.leeway_s
        ),
    ];
    if let (Some(p), Some(d)) = (plain, deny) {
        rows.push(row(&[
            format!(
                "token read, {} replica(s), without / with denylist: req/s",
                p.replicas
            ),
            format!("{} / {}", fmt_num(p.rps), fmt_num(d.rps)),
        ]));
        rows.push(row(&[
            "Redis commands per request, without / with denylist".into(),
            format!(
                "{} / {}",
                p.redis_commands_per_request.map_or("-".into(), fmt_num),
                d.redis_commands_per_request.map_or("-".into(), fmt_num)
            ),
        ]));
        reading.push(format!(
            "The denylist closes the window (the server asks Redis whether the token was revoked), and so it pays \
             what sessions pay: {} Redis commands per request instead of {}.",
            d.redis_commands_per_request.map_or("-".into(), fmt_num),
            p.redis_commands_per_request.map_or("-".into(), fmt_num)
        ));
    }
    Some(Section {
        id: "revocation",
        code: Vec::new(),
        title: "How long a credential works after logout".into(),
        method: format!(
            "Log in, log out, then ask GET /api/me with the old credential every 100 ms until it is refused. Access \
             tokens were issued with ACCESS_TOKEN_TTL={} s for this.",
            r.access_token_ttl_s
        ),
        charts: Vec::new(),
        table: Some(Table { headers: vec!["credential".into(), "after logout".into()], rows }),
        reading,
    })
}

pub fn token_anatomy(results: &Results) -> Option<Section> {
    let a = results.token_anatomy.as_ref()?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    Some(Section {
        id: "token-anatomy",
        title: "What is inside a token, and inside a session cookie".into(),
        method: "A real access token from this run's token server, split at its dots and base64url-decoded. No key is \
                 needed to read it."
            .into(),
        charts: Vec::new(),
        code: vec![
            ("the access token as sent".into(), a.access_token.clone()),
            ("its header, decoded by anyone".into(), pretty(&a.header)),
            ("its payload, decoded by anyone".into(), pretty(&a.payload)),
            ("a session cookie as sent".into(), a.session_cookie.clone()),
        ],
        table: Some(Table {
            headers: vec!["request to GET /api/me with".into(), "status".into()],
            rows: vec![
                row(&["the token as issued".into(), a.original_status.to_string()]),
                row(&["the payload changed to roles [user, admin], signature kept".into(), a.tampered_payload_status.to_string()]),
                row(&["one bit of the signature flipped".into(), a.tampered_signature_status.to_string()]),
                row(&["the session cookie as issued".into(), a.session_cookie_status.to_string()]),
                row(&["the cookie with one character changed".into(), a.altered_cookie_status.to_string()]),
            ],
        }),
        reading: vec![
            "The header and payload are only encoded, not encrypted: anyone holding the token can read the user id, \
             name, roles and expiry. Never put secrets in a token."
                .into(),
            format!(
                "The last part is a {}-byte signature over header and payload, made with the server's key (the password \
                 is not in the token and not in the signature). Change a single claim or a single bit of the signature \
                 and the server answers {} or {}.",
                a.signature_bytes, a.tampered_payload_status, a.tampered_signature_status
            ),
            format!(
                "The session cookie is an opaque, encrypted id: it says nothing about the user, and the server looks it \
                 up in Redis. Altered, it is refused ({}).",
                a.altered_cookie_status
            ),
        ],
    })
}

/// Requests each active user is assumed to make per second in the projection.
pub const REQUESTS_PER_USER_PER_S: f64 = 0.1;

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{} {}", fmt_num(v), UNITS[u])
}

pub fn cost_projection(results: &Results) -> Option<Section> {
    let base = |server| results.sweep(server, Scenario::Read).into_iter().next();
    let models: Vec<&Run> = [ServerKind::Session, ServerKind::Token]
        .into_iter()
        .filter_map(base)
        .collect();
    if models.is_empty() {
        return None;
    }
    let mut rows = Vec::new();
    for users in [10_000f64, 100_000.0, 1_000_000.0] {
        let rps = users * REQUESTS_PER_USER_PER_S;
        for r in &models {
            let c = &r.cpu_us_per_request;
            rows.push(row(&[
                format!("{users:.0}"),
                r.server.name().into(),
                format!("{rps:.0}"),
                fmt_num(rps * c.replicas / 1e6),
                fmt_num(rps * c.redis / 1e6),
                format!("{:.0}", rps * r.redis_commands_per_request.unwrap_or(0.0)),
                r.redis_bytes_per_user
                    .map_or("-".into(), |b| human_bytes(b * users)),
                human_bytes(rps * r.credential_bytes as f64) + "/s",
            ]));
        }
    }
    let mut reading = vec![format!(
        "Assumptions: every active user makes {} requests per second (one every {} s), all of them reads like the \
         `read` scenario; CPU per request is what the replicas and Redis used per request in the smallest measured \
         configuration on this machine; Redis memory is what Redis grew by per user during that run (the user record \
         plus a session, or plus a refresh-token family). Load balancers, TLS and the network are not included.",
        REQUESTS_PER_USER_PER_S,
        fmt_num(1.0 / REQUESTS_PER_USER_PER_S)
    )];
    if let (Some(s), Some(t)) = (base(ServerKind::Session), base(ServerKind::Token)) {
        reading.push(format!(
            "Both models keep something per user in Redis; what differs is how often they ask for it: sessions {} \
             commands per request, tokens {}. Redis is single-threaded, so its commands per second are what to watch \
             as users grow.",
            s.redis_commands_per_request.map_or("-".into(), fmt_num),
            t.redis_commands_per_request.map_or("-".into(), fmt_num)
        ));
    }
    Some(Section {
        id: "cost",
        code: Vec::new(),
        title: "What 10k, 100k and 1M active users would need".into(),
        method: "A projection, not a measurement: the measured per-request and per-user costs multiplied out.".into(),
        charts: Vec::new(),
        table: Some(Table {
            headers: [
                "active users",
                "model",
                "requests/s",
                "replica CPUs",
                "Redis CPUs",
                "Redis commands/s",
                "Redis memory",
                "credential bytes",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }),
        reading,
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
                fmt_num(r.cpu_us_per_request.replicas),
                r.credential_bytes.to_string(),
                bottleneck_text(r),
            ]));
        }
    }
    if let Some(h) = hs256 {
        reading.push(format!(
            "Verifying an EdDSA token cost the replicas {} us of CPU per request against {} us with HS256: checking a \
             public-key signature is more work than recomputing a keyed hash.",
            fmt_num(eddsa.cpu_us_per_request.replicas),
            fmt_num(h.cpu_us_per_request.replicas)
        ));
    }
    reading.push(
        "What the key pair buys: only the token server holds the private key; any other service can verify tokens with \
         the public key it publishes at /.well-known/jwks.json, without a secret that would also let it mint tokens \
         (token-server's tests verify a token with the published key alone)."
            .into(),
    );
    Some(Section {
        id: "signing",
        code: Vec::new(),
        title: "Signing algorithms: HS256 against EdDSA".into(),
        method: "The token read scenario with HS256 access tokens (the sweep) and again with JWT_ALG=EdDSA, at the same \
                 replica count."
            .into(),
        charts: Vec::new(),
        table: Some(Table {
            headers: ["algorithm", "replicas", "req/s", "replica CPU us/req", "credential bytes", "limited by"]
                .map(String::from)
                .to_vec(),
            rows,
        }),
        reading,
    })
}

/// Answered and failed requests per second of one run's timeline, one line per route and
/// outcome.
fn timeline_series(r: &Run) -> Vec<super::svg::Series> {
    let routes: std::collections::BTreeSet<&str> =
        r.timeline.iter().map(|p| p.route.as_str()).collect();
    let mut out = Vec::new();
    for route in routes {
        let pts = |failed: bool| -> Vec<(f64, f64)> {
            r.timeline
                .iter()
                .filter(|p| p.route == route)
                .map(|p| (p.t_s as f64, if failed { p.failed } else { p.ok } as f64))
                .collect()
        };
        out.push(super::svg::Series {
            name: format!("{route} ok"),
            points: pts(false),
            dashed: false,
        });
        out.push(super::svg::Series {
            name: format!("{route} failed"),
            points: pts(true),
            dashed: true,
        });
    }
    out
}

fn fault_section(
    results: &Results,
    experiment: Experiment,
    id: &'static str,
    title: &str,
    method: &str,
    read: impl Fn(&Run) -> Option<String>,
) -> Option<Section> {
    let runs = results.experiment(experiment);
    if runs.is_empty() {
        return None;
    }
    let charts = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = format!("{id}-{}.svg", i + 1);
            let title = format!(
                "{}: {}",
                server_arm(r),
                r.fault.map(|f| f.describe()).unwrap_or_default()
            );
            (
                name,
                super::svg::line_chart(
                    &title,
                    "seconds into the window",
                    "requests per second",
                    &timeline_series(r),
                ),
            )
        })
        .collect();
    let rows = runs
        .iter()
        .map(|r| {
            row(&[
                server_arm(r),
                r.fault.map(|f| f.describe()).unwrap_or_default(),
                r.requests.to_string(),
                r.failed_in(None, Phase::Before).to_string(),
                r.failed_in(None, Phase::During).to_string(),
                r.failed_in(None, Phase::After).to_string(),
                fmt_num(r.latency_ms.max),
            ])
        })
        .collect();
    Some(Section {
        id,
        code: Vec::new(),
        title: title.into(),
        method: method.into(),
        charts,
        table: Some(Table {
            headers: [
                "arm",
                "fault",
                "requests",
                "failed before",
                "failed during",
                "failed after",
                "slowest ms",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }),
        reading: runs.iter().filter_map(|r| read(r)).collect(),
    })
}

pub fn redis_outage(results: &Results) -> Option<Section> {
    fault_section(
        results,
        Experiment::RedisOutage,
        "redis-outage",
        "When Redis stops answering",
        "The refresh scenario (reads, and a refresh every K requests) while Redis is frozen (SIGSTOP) for a third of \
         the window and then thawed (SIGCONT); nothing is restarted. Each line is requests per second that succeeded \
         or failed, per route.",
        |r| {
            let me_failed = r.failed_in(Some("/api/me"), Phase::During);
            let refresh_failed = r.failed_in(Some("/auth/refresh"), Phase::During);
            let after = r.failed_in(None, Phase::After);
            let who = r.server.name();
            let mut text = if r.server == ServerKind::Token {
                format!(
                    "token: reads with a valid access token failed {me_failed} times while Redis was away (they never \
                     ask it); refreshes failed {refresh_failed} times (they must). Reads still slowed down: each \
                     simulated user runs one request at a time, so a user waiting on a stuck refresh sends no reads."
                )
            } else {
                format!(
                    "{who}: reads failed {me_failed} times and refreshes {refresh_failed} times while Redis was away: \
                     every session request needs it."
                )
            };
            text.push_str(&format!(
                " The slowest answer took {} ms: requests failed fast (503 once their Redis call timed out) instead of hanging.",
                fmt_num(r.latency_ms.max)
            ));
            if after > 0 {
                text.push_str(&format!(
                    " After Redis came back, {after} requests still failed, with 401 rather than 503: the credentials \
                     themselves were gone. The refreshes in flight when Redis froze had timed out for their clients, but \
                     their commands were already sent, and Redis ran them when it thawed. The old credential was spent \
                     (a rotated refresh token, a deleted session id) and the new one never arrived, so those users \
                     were logged out, and a retried refresh token counts as reuse unless the server gives retries a grace \
                     (REFRESH_REUSE_INTERVAL, contract version 2; servers before it had none). A timeout does not \
                     cancel a command already sent."
                ));
            } else {
                text.push_str(" Everything recovered by itself once Redis answered again.");
            }
            Some(text)
        },
    )
}

pub fn replica_loss(results: &Results) -> Option<Section> {
    fault_section(
        results,
        Experiment::ReplicaLoss,
        "replica-loss",
        "When a replica dies",
        "The read scenario on two replicas; a third of the way in, replica 1 is killed (SIGKILL) and stays dead. nginx \
         sends its traffic to the survivor. (requests_per_replica counts nothing for the dead replica: it can no \
         longer be asked.)",
        |r| {
            let after = r.failed_in(None, Phase::During);
            let who = server_arm(r);
            Some(if after > 0 {
                format!(
                    "{who}: {after} requests failed after the kill. The users whose sessions lived in the dead replica's \
                     memory were sent to the survivor, which has never heard of them: they are logged out."
                )
            } else {
                format!("{who}: nothing failed after the kill; the surviving replica can check every credential on its own (or in Redis).")
            })
        },
    )
}
