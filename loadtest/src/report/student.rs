//! The pages a student needs to read the others: how each model's requests flow, the
//! defences and what they cost, and the words the tables use.

use std::fmt::Write;

use super::experiments::users_kept;
use super::svg::escape;
use super::{row, Chart, Section, Table};
use crate::model::{Experiment, Results, Scenario, ServerKind, Variant};

/// One step of a sequence diagram: from actor, to actor (the same for work done in place),
/// what is said.
type Step = (usize, usize, &'static str);

/// A sequence diagram: actors as columns, steps as arrows going down.
fn sequence(id: &str, title: &str, actors: &[&str], steps: &[Step]) -> String {
    let (w, top, gap) = (640.0, 60.0, 26.0);
    let h = top + gap * steps.len() as f64 + 20.0;
    let col = |i: usize| 80.0 + (w - 160.0) * i as f64 / (actors.len().max(2) - 1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" style="max-width:100%;height:auto;font-family:sans-serif;font-size:11px"><title>{t}</title><defs><marker id="arrow-{id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs><rect width="{w}" height="{h}" fill="white"/><text x="10" y="18" font-weight="bold" font-size="13">{t}</text>"##,
        t = escape(title)
    );
    for (i, a) in actors.iter().enumerate() {
        let x = col(i);
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="28" width="110" height="20" rx="4" fill="#e8f0fb" stroke="#0072B2"/><text x="{x:.1}" y="42" text-anchor="middle" font-weight="bold">{}</text><line x1="{x:.1}" x2="{x:.1}" y1="48" y2="{:.1}" stroke="#999" stroke-dasharray="3,3"/>"##,
            x - 55.0,
            escape(a),
            h - 8.0
        );
    }
    for (i, (from, to, text)) in steps.iter().enumerate() {
        let y = top + gap * i as f64 + 10.0;
        let (x1, x2) = (col(*from), col(*to));
        if from == to {
            let _ = write!(
                out,
                r##"<path d="M{x1:.1},{y:.1} h22 v10 h-20" fill="none" stroke="#333" marker-end="url(#arrow-{id})"/><text x="{:.1}" y="{:.1}">{}</text>"##,
                x1 + 26.0,
                y + 8.0,
                escape(text)
            );
        } else {
            let _ = write!(
                out,
                r##"<line x1="{x1:.1}" x2="{x2:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#333" marker-end="url(#arrow-{id})"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                (x1 + x2) / 2.0,
                y - 4.0,
                escape(text)
            );
        }
    }
    out.push_str("</svg>");
    out
}

pub fn flows() -> Section {
    let session = sequence(
        "session",
        "Sessions: the server remembers, the cookie only points",
        &["browser", "replica", "Redis"],
        &[
            (0, 1, "POST /auth/login {username, password}"),
            (1, 2, "read the user; check the argon2 hash"),
            (
                1,
                2,
                "SET session:<id> {user, roles}; add it to the user's index",
            ),
            (1, 0, "200, Set-Cookie: sid=<id>.<signature>; HttpOnly"),
            (0, 1, "GET /api/me, Cookie: sid=..."),
            (1, 2, "GET session:<id> (on every request)"),
            (1, 0, "200 {user}"),
            (0, 1, "POST /auth/refresh (cookie)"),
            (1, 2, "new id; the old one points to it for the retry grace"),
            (1, 0, "200, Set-Cookie: the new sid"),
            (0, 1, "POST /auth/logout (cookie)"),
            (1, 2, "DEL session:<id>: refused from the next request on"),
            (0, 1, "POST /auth/logout-all"),
            (1, 2, "DEL every session in the user's index"),
        ],
    );
    let token = sequence(
        "token",
        "Tokens: the credential carries the proof, Redis only the refresh state",
        &["client", "replica", "Redis"],
        &[
            (0, 1, "POST /auth/login {username, password}"),
            (1, 2, "read the user; check the hash; SET rtf:<family>"),
            (1, 0, "200 {access_token (signed JWT), refresh_token}"),
            (0, 1, "GET /api/me, Authorization: Bearer <JWT>"),
            (1, 1, "check signature, exp, aud: no Redis"),
            (1, 0, "200 {user}"),
            (0, 1, "POST /auth/refresh {refresh_token}"),
            (
                1,
                2,
                "rotate in the family; an older token = reuse: revoke all",
            ),
            (1, 0, "200 {new access_token, new refresh_token}"),
            (0, 1, "POST /auth/logout {refresh_token}"),
            (1, 2, "DEL the family (the access token lives until exp)"),
            (0, 1, "POST /auth/logout-all"),
            (1, 2, "revoke every family of the user"),
        ],
    );
    Section {
        reading: vec![
            "Side by side: sessions ask Redis on every request; tokens only at login, refresh and logout. The rest of \
             this report follows from that: who can serve a request, what a Redis outage breaks, how fast a logout \
             acts."
                .into(),
        ],
        method: "Drawn from the routes of the HTTP contract (API.md) and what each server stores; not measured."
            .into(),
        charts: vec![
            Chart::new(
                "flow-session.svg",
                "Sessions: every request goes through Redis.",
                session,
            ),
            Chart::new(
                "flow-token.svg",
                "Tokens: reads are checked by the replica alone; Redis is asked at login, refresh and logout.",
                token,
            ),
        ],
        ..Section::new("flows", "How a request flows in each model")
    }
}

/// The attributes of a `Set-Cookie` header, as (name, value) pairs after the cookie itself.
fn cookie_attributes(set_cookie: &str) -> Vec<(String, String)> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| {
            let a = a.trim();
            match a.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => (a.to_string(), String::new()),
            }
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

pub fn security(results: &Results) -> Option<Section> {
    let a = results.token_anatomy.as_ref()?;
    let attrs = cookie_attributes(&a.set_cookie);
    let has = |name: &str| {
        attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| {
                if v.is_empty() {
                    "set".to_string()
                } else {
                    v.clone()
                }
            })
    };
    let mut rows = vec![
        row(&[
            "HttpOnly (session cookie)".into(),
            has("HttpOnly").unwrap_or("absent".into()),
            "page scripts (an XSS) cannot read the cookie".into(),
            "none per request".into(),
        ]),
        row(&[
            "SameSite (session cookie)".into(),
            has("SameSite").unwrap_or("absent".into()),
            "the browser leaves the cookie off most cross-site requests (CSRF)".into(),
            "none per request".into(),
        ]),
        row(&[
            "Secure (session cookie)".into(),
            has("Secure").unwrap_or(
                "absent on the load test's server, which served plain HTTP on loopback (COOKIE_SECURE=false); \
                 deployments behind TLS set it, with the __Host- name, as the browser experiment's servers did"
                    .into(),
            ),
            "the cookie never travels unencrypted".into(),
            "none per request".into(),
        ]),
        row(&[
            "origin check on unsafe requests (session server)".into(),
            "on".into(),
            "a cross-site form or fetch that still carries the cookie is refused".into(),
            "a header comparison, no Redis command (not measured apart)".into(),
        ]),
    ];
    let sweep = |s, sc| results.first_run(s, sc);
    if let Some(l) = sweep(ServerKind::Token, Scenario::Login) {
        rows.push(row(&[
            "failed-login throttling (both)".into(),
            "on".into(),
            "password guessing, also spread over many addresses".into(),
            format!(
                "part of a login's {} Redis commands (counted before the password is checked)",
                super::num_or(l.redis_commands_per_request, "not seen")
            ),
        ]));
    }
    if let (Some(p), Some(d)) = (
        sweep(ServerKind::Token, Scenario::Read),
        results.arm(Experiment::Revocation, ServerKind::Token, Variant::Denylist),
    ) {
        rows.push(row(&[
            "access-token denylist (ACCESS_DENYLIST)".into(),
            "off by default".into(),
            "a logged-out or revoked access token is refused at once".into(),
            format!(
                "{} Redis commands per read instead of {}",
                super::num_or(d.redis_commands_per_request, "not seen"),
                super::num_or(p.redis_commands_per_request, "not seen")
            ),
        ]));
    }
    if let Some(r) = sweep(ServerKind::Token, Scenario::Refresh) {
        rows.push(row(&[
            "refresh-token rotation and reuse detection".into(),
            "on".into(),
            "a stolen refresh token used after its owner refreshed revokes the whole login".into(),
            format!(
                "{} Redis commands per request of the refresh scenario (a refresh every {} requests)",
                super::num_or(r.redis_commands_per_request, "not seen"),
                results
                    .environment
                    .config
                    .get("refresh_every")
                    .map_or("K", String::as_str)
            ),
        ]));
    }
    let grace = |v| {
        results
            .arm(Experiment::RedisOutage, ServerKind::Token, v)
            .and_then(users_kept)
    };
    if let (Some((with, n)), Some((without, _))) =
        (grace(Variant::Standard), grace(Variant::NoRetryGrace))
    {
        rows.push(row(&[
            "retry grace (REFRESH_REUSE_INTERVAL)".into(),
            "10 s".into(),
            "a client whose refresh answer was lost stays logged in".into(),
            format!(
                "none per request; in the Redis outage {with} of {n} token users stayed logged in with it, {without} \
                 without"
            ),
        ]));
    }
    rows.push(row(&[
        "Cache-Control: no-store on credentials and user data".into(),
        "on".into(),
        "shared caches and the back button keep no copy".into(),
        "one header".into(),
    ]));
    Some(Section {
        reading: vec![
            "The session cookie this run's server set is below, taken apart: what each attribute stops, and what \
             each defence of the contract costs per request, from this run where it measured it."
                .to_string(),
            if results.browser.is_some() {
                "What these attributes did in a real browser, case by case (CSRF, XSS, cookies across sites), is in \
                 the browser section: this section is what each defence costs."
                    .into()
            } else {
                "Tokens kept in JavaScript are not sent by the browser on its own, so CSRF does not reach them, but any \
                 script on the page (an XSS) can read and send them away; an HttpOnly cookie cannot be read, yet a script \
                 can still use it from inside the page. Experiment browser measures both; it did not run here."
                    .into()
            },
        ],
        method: "The Set-Cookie header of a real session login of this run, taken apart; the defences of the contract with \
                 their cost from this run's measurements."
            .into(),
        code: vec![("Set-Cookie as sent".into(), a.set_cookie.clone())],
        table: Some(Table::new(
            &["defence", "in this run", "what it stops", "what it costs"],
            rows,
        )),
        ..Section::new("security", "Security: cookie attributes and the defences, with their cost")
    })
}

pub fn glossary() -> Section {
    let terms: &[(&str, &str)] = &[
        ("replica", "one running copy of a server; nginx spreads requests over the replicas of a group"),
        ("round robin", "nginx sends each request to the next replica in turn"),
        ("sticky routing", "nginx sends every request of one client to the same replica (here by hashing a client id)"),
        ("session store", "where sessions live: each replica's memory, or Redis shared by all replicas"),
        ("Redis", "an in-memory key-value server; single-threaded, so one core is its ceiling"),
        ("access token", "a short-lived signed credential (a JWT) sent as Authorization: Bearer on every request"),
        ("refresh token", "a long-lived credential used only to get a new access token"),
        ("family", "all the refresh tokens descended from one login; reuse of an old one revokes the whole family"),
        ("rotation", "every refresh hands out a new credential and retires the old one"),
        ("retry grace", "for REFRESH_REUSE_INTERVAL seconds the credential just replaced is answered as its successor"),
        ("denylist", "a list in Redis checked on every request, so a revoked access token is refused before it expires"),
        ("leeway", "seconds a token is accepted past its exp, for clocks that disagree"),
        ("scope", "what a credential may do (read, admin), possibly less than the user's roles allow"),
        ("JWT", "JSON Web Token: base64url(header) . base64url(payload) . signature"),
        ("base64url", "an encoding of bytes as letters, digits, - and _: anyone can decode it; it hides nothing"),
        ("HS256", "HMAC with SHA-256: a signature made and checked with one shared secret"),
        ("EdDSA", "a public-key signature (Ed25519): the private key signs, anyone with the public key checks"),
        ("HttpOnly, SameSite, Secure", "cookie attributes: no script access; not on cross-site requests; HTTPS only"),
        ("CSRF", "another site makes the browser send a request that carries the user's cookie"),
        ("XSS", "a script injected into the page, running with the page's rights"),
        ("req/s", "requests answered per second in the measured window (errors included)"),
        ("p50, p99", "the latency half of the requests beat, and the one 99% beat"),
        ("µs per request", "microseconds of CPU a component spent per measured request, from /proc"),
        ("bottleneck", "the component that used at least 85% of what it could; \"no bottleneck found\" when none did"),
        ("CPU budget", "a cgroup quota holding a replica (or Redis) to a share of a CPU during the window"),
        ("oversubscribed", "the replicas asked for more CPUs than the machine has"),
        ("round", "one repetition of the sweep; rounds are interleaved across replica counts"),
        ("warm-up", "time before the window: users sign up and log in; never counted"),
        ("before, during, after", "by when a request was sent, against the times the fault was injected and lifted"),
        ("logged out", "a user whose credential was answered 401 at least once: their app would ask them to log in"),
    ];
    Section {
        method: "The words the tables and charts use.".into(),
        table: Some(Table::new(
            &["term", "meaning"],
            terms
                .iter()
                .map(|(t, m)| row(&[t.to_string(), m.to_string()]))
                .collect(),
        )),
        ..Section::new("glossary", "Glossary")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes_are_read_from_the_header() {
        let a = cookie_attributes("sid=abc.def; HttpOnly; SameSite=Lax; Path=/; Max-Age=3600");
        assert_eq!(a[0], ("HttpOnly".into(), String::new()));
        assert_eq!(a[1], ("SameSite".into(), "Lax".into()));
        assert_eq!(a.len(), 4);
    }

    #[test]
    fn a_diagram_has_an_arrow_per_step() {
        let svg = sequence(
            "x",
            "t",
            &["a", "b"],
            &[(0, 1, "x"), (1, 1, "y"), (1, 0, "z")],
        );
        assert_eq!(svg.matches("marker-end").count(), 3);
    }
}
