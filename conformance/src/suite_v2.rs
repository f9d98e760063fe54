//! The contract's version-2 points, each generic over the server: no cheap denial of
//! service, no races, retries that keep users logged in, scopes, role changes, logout
//! everywhere, caching, CSRF and CORS. Listed in `suite!` next to version 1's tests.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::AsyncCommands;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::{
    random_username, session_cookie, Credential, Kind, Options, Reply, Server, TestApp, PASSWORD,
};

async fn spawn<S: Server>(options: Options) -> TestApp {
    TestApp::spawn::<S>(options).await
}

fn admin_options() -> Options {
    Options {
        bootstrap_admin: Some(("root".into(), "admin-password".into())),
        ..Options::default()
    }
}

/// This process's resident memory in bytes (the servers under test run inside it).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A zstd frame of RLE blocks: 4 bytes per 128 KiB of output, so `blocks` blocks inflate
/// to `blocks * 128 KiB` (8,000 blocks: 32 KB in, 1 GiB out). Built by hand (RFC 8878):
/// magic, a header with a 128 KiB window, then the blocks.
pub fn zstd_bomb(blocks: usize) -> Vec<u8> {
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = (128 * 1024u32) << 3 | 1 << 1 | last;
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(b'A');
    }
    frame
}

pub async fn compressed_bodies_are_refused_and_never_inflated<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    let bomb = zstd_bomb(8_000);
    assert!(bomb.len() < 33_000, "{}", bomb.len());
    let before = resident_bytes();
    let sends = (0..4).map(|_| {
        TestApp::read(
            app.client
                .post(format!("{}/auth/signup", app.address))
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "zstd")
                .body(bomb.clone()),
        )
    });
    for r in join_all(sends).await {
        r.assert_error(415, "unsupported_media_type");
    }
    let grown = resident_bytes().saturating_sub(before);
    // Inflated, the four bodies would be 4 GiB; other tests share this process, hence the
    // generous margin.
    assert!(grown < 200 << 20, "the server grew by {} MB", grown >> 20);
    for encoding in ["gzip", "br", "deflate", "zstd, identity"] {
        TestApp::read(
            app.client
                .post(format!("{}/auth/login", app.address))
                .header("Content-Type", "application/json")
                .header("Content-Encoding", encoding)
                .body("{}"),
        )
        .await
        .assert_error(415, "unsupported_media_type");
    }
    let name = random_username();
    let r = TestApp::read(
        app.client
            .post(format!("{}/auth/signup", app.address))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "identity")
            .json(&json!({"username": name, "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 201, "identity is no encoding: {}", r.text);
}

pub async fn parallel_wrong_logins_never_exceed_the_limit<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    let name = random_username();
    assert_eq!(app.signup(&name, PASSWORD).await.status, 201);
    let guesses = (0..60).map(|i| {
        TestApp::read(
            app.client
                .post(format!("{}/auth/login", app.address))
                .json(&json!({"username": name, "password": format!("wrong-{i}")})),
        )
    });
    let replies = join_all(guesses).await;
    let wrong = replies.iter().filter(|r| r.status == 401).count();
    let limited = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!(wrong + limited, 60, "only 401 and 429");
    assert!(wrong <= 10, "{wrong} guesses were checked (limit 10)");
    assert!(wrong >= 1);
    // The right password, from the same client, is still throttled: no guess erased the count.
    app.login(&name, PASSWORD)
        .await
        .assert_error(429, "rate_limited");
}

async fn login_from(app: &TestApp, name: &str, password: &str, xff: &str) -> Reply {
    TestApp::read(
        app.client
            .post(format!("{}/auth/login", app.address))
            .header("X-Forwarded-For", xff)
            .header("Forwarded", format!("for={xff}"))
            .json(&json!({"username": name, "password": password})),
    )
    .await
}

pub async fn forwarded_addresses_count_only_from_trusted_proxies<S: Server>() {
    let options = Options {
        login_max_failures: Some(2),
        ..Options::default()
    };
    // Untrusted peer: rotating X-Forwarded-For and Forwarded changes nothing.
    let app = spawn::<S>(options.clone()).await;
    let names: Vec<String> = (0..25).map(|_| random_username()).collect();
    let mut limited = 0;
    for (i, name) in names.iter().enumerate() {
        let r = login_from(&app, name, "wrong-password", &format!("203.0.113.{i}")).await;
        limited += usize::from(r.status == 429);
    }
    // Per client: ten times the limit (20) failures, then 429, whatever the headers said.
    assert_eq!(limited, 5, "the spoofed addresses were believed");

    // Behind a trusted proxy (this test's loopback peer): the forwarded client counts.
    let app = spawn::<S>(Options {
        trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
        ..options
    })
    .await;
    let victim = random_username();
    assert_eq!(app.signup(&victim, PASSWORD).await.status, 201);
    for _ in 0..2 {
        login_from(&app, &victim, "wrong-password", "198.51.100.66")
            .await
            .assert_error(401, "invalid_credentials");
    }
    login_from(&app, &victim, PASSWORD, "198.51.100.66")
        .await
        .assert_error(429, "rate_limited");
    // The victim, from their own address, is not locked out by the attacker's failures.
    let r = login_from(&app, &victim, PASSWORD, "192.0.2.10").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// The refresh request for the credential `held`, as a client would send it.
fn refresh_request(app: &TestApp, held: &Credential) -> reqwest::RequestBuilder {
    let url = format!("{}/auth/refresh", app.address);
    match held {
        Credential::Cookie(c) => app.client.post(url).header("Cookie", c),
        Credential::Tokens { refresh, .. } => app
            .client
            .post(url)
            .json(&json!({"refresh_token": refresh})),
    }
}

/// The credential a refresh reply hands out.
fn handed_out(app: &TestApp, r: &Reply) -> Option<Credential> {
    match app.kind {
        Kind::Session => session_cookie(r).flatten(),
        Kind::Token => {
            let body = r.json();
            Some(Credential::Tokens {
                access: body["access_token"].as_str()?.into(),
                refresh: body["refresh_token"].as_str()?.into(),
            })
        }
    }
}

fn refresh_part(c: &Credential) -> String {
    match c {
        Credential::Cookie(c) => c.clone(),
        Credential::Tokens { refresh, .. } => refresh.clone(),
    }
}

/// Live sessions (session server) or refresh families (token server) in Redis.
async fn live_logins(app: &TestApp) -> usize {
    let mut conn = app.redis.conn().await;
    match app.kind {
        Kind::Session => {
            // A replaced id's key points to its successor (`moved:<id>`) for the retry
            // grace; it is no login.
            let keys: Vec<String> = conn.keys("session:*").await.unwrap();
            let mut live = 0;
            for k in keys {
                let value: Option<String> = conn.get(&k).await.unwrap();
                live += usize::from(value.is_some_and(|v| !v.starts_with("moved:")));
            }
            live
        }
        Kind::Token => conn.keys::<_, Vec<String>>("rtf:*").await.unwrap().len(),
    }
}

pub async fn parallel_refreshes_leave_one_live_credential<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    for _ in 0..3 {
        app.set_credential(None);
        app.signed_in_user().await;
        let held = app.credential().unwrap();
        let before = live_logins(&app).await;
        let replies = join_all((0..20).map(|_| TestApp::read(refresh_request(&app, &held)))).await;
        let mut successors = HashSet::new();
        for r in &replies {
            assert!(
                r.status == 200 || r.status == 401,
                "{} {}",
                r.status,
                r.text
            );
            if r.status == 200 {
                successors.insert(refresh_part(&handed_out(&app, r).expect("a credential")));
            }
        }
        // Within the retry grace every racer gets the one successor; none forks a login.
        assert_eq!(successors.len(), 1, "{successors:?}");
        assert_eq!(
            live_logins(&app).await,
            before,
            "no session or family was forked"
        );
    }
}

pub async fn a_request_in_flight_during_logout_never_brings_the_login_back<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    for round in 0..12 {
        app.set_credential(None);
        app.signed_in_user().await;
        let held = app.credential().unwrap();
        let reads = (0..8).map(|_| app.builder(Method::GET, "/api/me").send());
        let refreshes = (0..2).map(|_| refresh_request(&app, &held).send());
        let logout = async {
            tokio::time::sleep(Duration::from_millis(round % 4)).await;
            app.logout().await
        };
        let (_, _, out) = tokio::join!(join_all(reads), join_all(refreshes), logout);
        assert_eq!(out.status, 204);
        if app.kind == Kind::Session {
            assert_eq!(
                live_logins(&app).await,
                0,
                "round {round}: a session came back"
            );
        }
        app.set_credential(Some(held.clone()));
        let after = TestApp::read(refresh_request(&app, &held)).await;
        after.assert_error(401, "invalid_token");
    }
    if app.kind == Kind::Token {
        assert_eq!(live_logins(&app).await, 0, "a family survived its logout");
    }
}

pub async fn a_retried_refresh_within_the_interval_keeps_the_user_logged_in<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    app.signed_in_user().await;
    let held = app.credential().unwrap();
    let first = TestApp::read(refresh_request(&app, &held)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let successor = handed_out(&app, &first).unwrap();
    // The answer was lost; the client retries with what it held.
    let retry = TestApp::read(refresh_request(&app, &held)).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    let again = handed_out(&app, &retry).unwrap();
    assert_eq!(
        refresh_part(&again),
        refresh_part(&successor),
        "the retry gets the same successor, byte for byte"
    );
    if let (Credential::Tokens { access: a, .. }, Credential::Tokens { access: b, .. }) =
        (&successor, &again)
    {
        assert_ne!(a, b, "and a fresh access token");
    }
    // A read with the replaced credential is served as the successor (session: with its
    // cookie again; token: the access token was never replaced).
    app.set_credential(Some(held.clone()));
    let read = app.me().await;
    assert_eq!(read.status, 200, "{}", read.text);
    if app.kind == Kind::Session {
        assert_eq!(session_cookie(&read).flatten(), Some(successor.clone()));
    }
    // The successor works, and only one login lives.
    app.set_credential(Some(successor));
    assert_eq!(app.me().await.status, 200);
    assert_eq!(live_logins(&app).await, 1);
}

pub async fn a_replaced_credential_is_reuse_after_the_interval_or_a_second_rotation<S: Server>() {
    // After the interval.
    let app = spawn::<S>(Options {
        reuse_interval_s: Some(1),
        ..Options::default()
    })
    .await;
    app.signed_in_user().await;
    let held = app.credential().unwrap();
    let r = TestApp::read(refresh_request(&app, &held)).await;
    let successor = handed_out(&app, &r).unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    TestApp::read(refresh_request(&app, &held))
        .await
        .assert_error(401, "invalid_token");
    if app.kind == Kind::Token {
        // Reuse revoked the whole family: the successor is dead too.
        TestApp::read(refresh_request(&app, &successor))
            .await
            .assert_error(401, "invalid_token");
    }

    // After the successor was itself rotated, within the interval.
    let app = spawn::<S>(Options::default()).await;
    app.signed_in_user().await;
    let first = app.credential().unwrap();
    let second = handed_out(&app, &TestApp::read(refresh_request(&app, &first)).await).unwrap();
    let third = TestApp::read(refresh_request(&app, &second)).await;
    assert_eq!(third.status, 200, "{}", third.text);
    let third = handed_out(&app, &third).unwrap();
    TestApp::read(refresh_request(&app, &first))
        .await
        .assert_error(401, "invalid_token");
    let third_still = TestApp::read(refresh_request(&app, &third)).await;
    match app.kind {
        Kind::Token => third_still.assert_error(401, "invalid_token"),
        Kind::Session => assert_eq!(third_still.status, 200, "{}", third_still.text),
    }

    // Off: REFRESH_REUSE_INTERVAL=0.
    let app = spawn::<S>(Options {
        reuse_interval_s: Some(0),
        ..Options::default()
    })
    .await;
    app.signed_in_user().await;
    let held = app.credential().unwrap();
    assert_eq!(
        TestApp::read(refresh_request(&app, &held)).await.status,
        200
    );
    TestApp::read(refresh_request(&app, &held))
        .await
        .assert_error(401, "invalid_token");
}

pub async fn rotations_keep_a_bounded_number_of_redis_keys<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    app.signed_in_user().await;
    let mut conn = app.redis.conn().await;
    let keys_before: usize = conn.keys::<_, Vec<String>>("*").await.unwrap().len();
    for _ in 0..60 {
        let r = app.refresh().await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let keys: Vec<String> = conn.keys("*").await.unwrap();
    // Sessions keep the live session and one pointer for the retry grace; tokens one
    // family record. Not one key per rotation.
    assert!(
        keys.len() <= keys_before + 1,
        "{} keys before, {} after 60 rotations: {keys:?}",
        keys_before,
        keys.len()
    );
    for k in keys
        .iter()
        .filter(|k| k.starts_with("rtf:") || k.starts_with("session:"))
    {
        let ttl: i64 = conn.ttl(k).await.unwrap();
        assert!(ttl > 0, "{k} must expire (ttl {ttl})");
    }
    if app.kind == Kind::Token {
        let fam = keys.iter().find(|k| k.starts_with("rtf:")).unwrap();
        let ttl: i64 = conn.ttl(fam).await.unwrap();
        assert!(
            ttl <= 14 * 24 * 3600,
            "the family expires with its live token: {ttl}"
        );
    }
}

pub async fn login_scope_limits_the_credential<S: Server>() {
    let app = spawn::<S>(admin_options()).await;
    let r = app.login_with_scope("root", "admin-password", "read").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["scope"], "read");
    assert_eq!(app.me().await.status, 200);
    app.admin_stats()
        .await
        .assert_error(403, "insufficient_scope");
    if app.kind == Kind::Token {
        let r = app.admin_stats().await;
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.contains("insufficient_scope")),
            "{:?}",
            r.headers
        );
    }
    let r = app
        .login_with_scope("root", "admin-password", "admin")
        .await;
    assert_eq!(r.json()["scope"], "admin");
    assert_eq!(app.admin_stats().await.status, 200);
    app.me().await.assert_error(403, "insufficient_scope");
    let r = app.login("root", "admin-password").await;
    assert_eq!(r.json()["scope"], "read admin");
    // A refresh keeps the scope.
    let r = app.login_with_scope("root", "admin-password", "read").await;
    assert_eq!(r.status, 200);
    let r = app.refresh().await;
    assert_eq!(r.json()["scope"], "read", "{}", r.text);
    app.admin_stats()
        .await
        .assert_error(403, "insufficient_scope");
    // A user cannot ask for what their roles do not allow; nonsense is a bad request.
    let name = random_username();
    app.signup(&name, PASSWORD).await;
    app.login_with_scope(&name, PASSWORD, "admin")
        .await
        .assert_error(403, "insufficient_scope");
    for bad in ["", "write", "read,admin"] {
        app.login_with_scope(&name, PASSWORD, bad)
            .await
            .assert_error(400, "invalid_request");
    }
}

pub async fn role_changes_reach_credentials_as_each_model_promises<S: Server>() {
    let app = spawn::<S>(admin_options()).await;
    let other = TestApp::spawn_on::<S>(app.redis.clone(), admin_options()).await;
    // A second admin, promoted by root.
    let deputy = random_username();
    app.signup(&deputy, PASSWORD).await;
    assert_eq!(app.login("root", "admin-password").await.status, 200);
    let r = app.set_roles(&deputy, &["admin", "user"]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["roles"], json!(["user", "admin"]));
    let root = app.credential();
    assert_eq!(other.login(&deputy, PASSWORD).await.status, 200);
    assert_eq!(other.admin_stats().await.status, 200);
    // Root demotes the deputy, on the other replica.
    app.set_credential(root.clone());
    let r = app.set_roles(&deputy, &["user"]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let stale = other.admin_stats().await;
    match app.kind {
        // The session index: every live session sees the change at once.
        Kind::Session => {
            stale.assert_error(403, "forbidden");
            assert_eq!(other.me().await.json()["roles"], json!(["user"]));
        }
        // The access token keeps the roles it was signed with until it expires...
        Kind::Token => {
            assert_eq!(stale.status, 200, "{}", stale.text);
            // ...and the next refresh re-reads the user.
            let r = other.refresh().await;
            assert_eq!(r.json()["user"]["roles"], json!(["user"]));
            assert_eq!(
                r.json()["scope"],
                "read",
                "the admin scope went with the role"
            );
            other.admin_stats().await.assert_error(403, "forbidden");
        }
    }
    // Who may change roles, and what.
    other
        .set_roles("root", &["user"])
        .await
        .assert_error(403, "forbidden");
    app.set_credential(root);
    app.set_roles("nobody-here", &["user"])
        .await
        .assert_error(404, "not_found");
    for body in [
        json!({"roles": []}),
        json!({"roles": ["root"]}),
        json!({"roles": "admin"}),
        json!({}),
    ] {
        app.request(
            Method::PUT,
            &format!("/api/admin/users/{deputy}/roles"),
            Some(body),
        )
        .await
        .assert_error(400, "invalid_request");
    }
    app.set_credential(None);
    app.set_roles(&deputy, &["admin"])
        .await
        .assert_error(401, "unauthorized");
}

pub async fn logout_all_ends_every_login_of_the_user<S: Server>() {
    for denylist in [false, true] {
        let a = spawn::<S>(Options {
            access_denylist: denylist,
            ..Options::default()
        })
        .await;
        let name = a.signed_in_user().await;
        let first = a.credential().unwrap();
        a.set_credential(None);
        assert_eq!(a.login(&name, PASSWORD).await.status, 200);
        let second = a.credential().unwrap();
        // Someone else stays logged in.
        let b = TestApp::spawn_on::<S>(a.redis.clone(), Options::default()).await;
        b.signed_in_user().await;

        a.set_credential(Some(first.clone()));
        let r = a.logout_all().await;
        assert_eq!(r.status, 204, "{}", r.text);
        for held in [&first, &second] {
            TestApp::read(refresh_request(&a, held))
                .await
                .assert_error(401, "invalid_token");
            a.set_credential(Some(held.clone()));
            let read = a.me().await;
            match (a.kind, denylist) {
                // Stateless: an access token lives until it expires...
                (Kind::Token, false) => assert_eq!(read.status, 200, "{}", read.text),
                // ...unless every request checks that its login still lives.
                _ => read.assert_error(401, "invalid_token"),
            }
        }
        assert_eq!(
            b.me().await.status,
            200,
            "another user's login is untouched"
        );
        assert_eq!(b.refresh().await.status, 200);
        a.set_credential(None);
        a.logout_all().await.assert_error(401, "unauthorized");
    }
}

pub async fn credentials_and_personal_data_are_never_cached<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    let name = random_username();
    let r = app.signup(&name, PASSWORD).await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = app.login(&name, PASSWORD).await;
    assert_eq!(r.header("cache-control"), Some("no-store"), "login");
    for path in ["/api/me", "/api/items"] {
        let r = app.request(Method::GET, path, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
    assert_eq!(
        app.refresh().await.header("cache-control"),
        Some("no-store")
    );
    app.set_credential(None);
    let r = app.me().await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("cache-control"),
        Some("no-store"),
        "401 of /api/me"
    );
    assert_eq!(app.public().await.header("cache-control"), None, "public");
}

pub async fn cors_answers_listed_origins_only<S: Server>() {
    let app = spawn::<S>(Options {
        cors_origins: vec!["https://app.example".into()],
        ..Options::default()
    })
    .await;
    let preflight = |origin: &str| {
        TestApp::read(
            app.client
                .request(Method::OPTIONS, format!("{}/api/me", app.address))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "GET")
                .header("Access-Control-Request-Headers", "authorization"),
        )
    };
    let ok = preflight("https://app.example").await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(ok
        .header("access-control-allow-methods")
        .unwrap()
        .contains("GET"));
    assert!(ok
        .header("access-control-allow-headers")
        .unwrap()
        .contains("Authorization"));
    assert!(ok.header("vary").is_some_and(|v| v.contains("Origin")));
    assert_eq!(
        ok.header("access-control-allow-credentials"),
        (app.kind == Kind::Session).then_some("true"),
        "credentials only where the credential is a cookie"
    );
    let no = preflight("https://evil.example").await;
    assert!(
        no.header("access-control-allow-origin").is_none(),
        "{:?}",
        no.headers
    );
    assert_eq!(no.status, 405);
    let r = TestApp::read(
        app.client
            .get(format!("{}/api/public", app.address))
            .header("Origin", "https://app.example"),
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = TestApp::read(
        app.client
            .get(format!("{}/api/public", app.address))
            .header("Origin", "https://evil.example"),
    )
    .await;
    assert!(r.header("access-control-allow-origin").is_none());
    // Without CORS_ALLOWED_ORIGINS: no CORS header at all.
    let plain = spawn::<S>(Options::default()).await;
    let r = TestApp::read(
        plain
            .client
            .get(format!("{}/api/public", plain.address))
            .header("Origin", "https://app.example"),
    )
    .await;
    assert!(r
        .headers
        .keys()
        .all(|k| !k.as_str().starts_with("access-control")));
}

pub async fn cross_site_state_changes_are_refused_where_the_browser_sends_the_credential<
    S: Server,
>() {
    let app = spawn::<S>(Options {
        cors_origins: vec!["https://app.example".into()],
        ..Options::default()
    })
    .await;
    app.signed_in_user().await;
    let held = app.credential().unwrap();
    let own = format!("http://127.0.0.1:{}", app.port);
    let attempt = |headers: Vec<(&'static str, String)>| {
        let mut req = refresh_request(&app, &held);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        TestApp::read(req)
    };
    let hostile = [
        vec![("Origin", "https://evil.example".to_string())],
        vec![("Origin", "null".to_string())],
        vec![("Sec-Fetch-Site", "cross-site".to_string())],
        vec![("Sec-Fetch-Site", "same-site".to_string())],
    ];
    for headers in hostile {
        let r = attempt(headers.clone()).await;
        match app.kind {
            Kind::Session => {
                r.assert_error(403, "forbidden");
                assert!(
                    session_cookie(&r).is_none(),
                    "no state changed: {headers:?}"
                );
            }
            // Nothing a browser attaches by itself: no forgery to stop.
            Kind::Token => assert_ne!(r.status, 403, "{headers:?}: {}", r.text),
        }
        if app.kind == Kind::Token && r.status == 200 {
            app.set_credential(handed_out(&app, &r));
        }
    }
    if app.kind == Kind::Session {
        // The session is untouched by the refused attempts.
        app.set_credential(Some(held.clone()));
        assert_eq!(app.me().await.status, 200);
        // Its own origin, and a listed one, may (the second is a retry within the grace).
        for origin in [own.as_str(), "https://app.example"] {
            let r = attempt(vec![("Origin", origin.to_string())]).await;
            assert_eq!(r.status, 200, "{origin}: {}", r.text);
        }
        // A logout form posted from another site does not log the user out.
        let r = TestApp::read(
            app.builder(Method::POST, "/auth/logout")
                .header("Origin", "https://evil.example"),
        )
        .await;
        r.assert_error(403, "forbidden");
        // Without the cookie too (contract v3): a cross-site login form would otherwise log
        // the victim into the attacker's account (`suite_v3` covers the cookieless cases).
        let name = random_username();
        app.signup(&name, PASSWORD).await;
        let r = TestApp::read(
            app.client
                .post(format!("{}/auth/login", app.address))
                .header("Origin", "https://evil.example")
                .json(&json!({"username": name, "password": PASSWORD})),
        )
        .await;
        r.assert_error(403, "forbidden");
    }
}

pub async fn wrong_methods_say_allow_and_head_answers_like_get<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    for (method, path, allow) in [
        (Method::DELETE, "/api/me", "GET, HEAD"),
        (Method::GET, "/auth/login", "POST"),
        (Method::POST, "/healthz", "GET, HEAD"),
        (Method::GET, "/api/admin/users/x/roles", "PUT"),
    ] {
        let r = app.request(method.clone(), path, None).await;
        r.assert_error(405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    for path in ["/api/public", "/healthz"] {
        let r = app.request(Method::HEAD, path, None).await;
        assert_eq!(r.status, 200, "HEAD {path}");
        assert!(r.text.is_empty());
    }
    app.signed_in_user().await;
    let r = app.request(Method::HEAD, "/api/me", None).await;
    assert_eq!(r.status, 200);
    assert!(r.text.is_empty());
    assert!(
        r.header("content-length").is_some_and(|l| l != "0"),
        "{:?}",
        r.headers
    );
}

pub async fn logout_with_a_dead_credential_still_clears_it<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    match app.kind {
        Kind::Session => {
            for dead in ["sid=forged", "sid="] {
                let r = TestApp::read(
                    app.client
                        .post(format!("{}/auth/logout", app.address))
                        .header("Cookie", dead),
                )
                .await;
                assert_eq!(r.status, 204, "{dead}");
                assert_eq!(
                    session_cookie(&r),
                    Some(None),
                    "{dead}: {:?}",
                    r.set_cookies()
                );
            }
        }
        Kind::Token => {
            app.signed_in_user().await;
            let held = app.credential().unwrap();
            assert_eq!(app.logout().await.status, 204);
            app.set_credential(Some(held));
            assert_eq!(app.logout().await.status, 204, "twice is fine");
        }
    }
}

pub async fn a_stalled_body_is_a_json_408_within_the_limit<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    conn.write_all(
        b"POST /auth/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"usern",
    )
    .await
    .unwrap();
    let t = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), conn.read_to_end(&mut answer))
        .await
        .expect("answered (and closed) within 15 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(t.elapsed() >= Duration::from_secs(9), "{:?}", t.elapsed());
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"request_timeout""#), "{answer}");
}

/// The HTTP layer's own answers (a head too large, a malformed request line) carry the
/// contract's JSON body too.
pub async fn http_layer_errors_answer_in_json<S: Server>() {
    let app = spawn::<S>(Options::default()).await;
    let huge = "x".repeat(200 * 1024);
    let r = TestApp::read(
        app.client
            .get(format!("{}/api/public", app.address))
            .header("X-Big", huge),
    )
    .await;
    r.assert_error(431, "headers_too_large");
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    conn.write_all(b"NOT A REQUEST\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");
}

/// Property test: arbitrary tokens, cookies, headers, paths and JSON bodies never get a 5xx
/// (nor a panic), and every error is the contract's JSON. Cases come from proptest's
/// strategies (deterministic seed, so a failure reproduces); they are sent over real HTTP.
pub async fn arbitrary_input_never_gets_a_5xx<S: Server>() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let app = spawn::<S>(admin_options()).await;
    app.signed_in_user().await;
    let real = app.credential_header().unwrap().1;

    let json_leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    let json = json_leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("username".to_string()),
                    Just("password".to_string()),
                    Just("refresh_token".to_string()),
                    Just("scope".to_string()),
                    Just("roles".to_string()),
                    ".{0,12}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    let b64 = "[A-Za-z0-9_-]{0,60}";
    let token = prop_oneof![
        (b64, b64, b64).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        Just(real.clone()),
        (Just(real.clone()), 0usize..400, "[ -~]{0,3}").prop_map(|(t, at, s)| {
            let mut t = t.into_bytes();
            let at = at.min(t.len());
            t.truncate(at);
            format!("{}{s}", String::from_utf8_lossy(&t))
        }),
        "[ -~]{0,80}",
    ];
    let method = prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::HEAD),
        Just(Method::DELETE),
        Just(Method::OPTIONS),
    ];
    let path = prop_oneof![
        Just("/auth/login".to_string()),
        Just("/auth/signup".to_string()),
        Just("/auth/refresh".to_string()),
        Just("/auth/logout".to_string()),
        Just("/auth/logout-all".to_string()),
        Just("/api/me".to_string()),
        Just("/api/items".to_string()),
        Just("/api/admin/stats".to_string()),
        "[a-z0-9%._-]{0,20}".prop_map(|u| format!("/api/admin/users/{u}/roles")),
        "/[a-zA-Z0-9/%._~-]{0,30}",
    ];
    let content_type = prop_oneof![
        Just("application/json".to_string()),
        Just("application/json; charset=utf-8".to_string()),
        Just("text/plain".to_string()),
        "[ -~]{0,30}",
    ];
    let case = (
        method,
        path,
        proptest::option::of(token.clone()),
        proptest::option::of(token),
        content_type,
        prop_oneof![
            json.prop_map(|j| j.to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..200),
        ],
        proptest::option::of("[ -~]{0,40}"),
    );
    let mut runner = TestRunner::deterministic();
    for i in 0..300 {
        let (method, path, bearer, cookie, ct, body, origin) =
            case.new_tree(&mut runner).expect("a case").current();
        let mut req = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .header("Content-Type", &ct)
            .body(body.clone());
        if let Some(b) = &bearer {
            req = req.header("Authorization", format!("Bearer {b}"));
        }
        if let Some(c) = &cookie {
            req = req.header("Cookie", format!("sid={c}"));
        }
        if let Some(o) = &origin {
            req = req.header("Origin", o);
        }
        let Ok(req) = req.build() else { continue };
        let res = app.client.execute(req).await.expect("the server answers");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        assert!(
            status < 500,
            "case {i}: {method} {path} bearer={bearer:?} cookie={cookie:?} ct={ct:?} body={:?}: {status} {text}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 && method != Method::HEAD {
            let parsed: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("case {i}: {status} body is not JSON ({e}): {text:?}"));
            assert!(parsed["error"].is_string(), "case {i}: {text}");
        }
    }
}
