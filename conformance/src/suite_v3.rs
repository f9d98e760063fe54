//! The contract's version-3 points, each generic over the server: signup throttling, a
//! per-username limit a stranger cannot turn into a lockout (the device credential), nothing
//! applied after the server answered, every cross-site state change refused (session server),
//! a 16 KiB request head. Listed in `suite!` next to versions 1 and 2.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::app::{
    random_username, session_cookie, Credential, Kind, Options, Reply, Server, TestApp, PASSWORD,
};

/// A client whose requests come from `127.0.0.<n>`: the servers count logins and signups per
/// client address, and loopback has a whole /8 of them.
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .timeout(crate::app::REQUEST_TIMEOUT)
        .build()
        .expect("a client bound to a loopback address")
}

async fn signup_from(app: &TestApp, client: &reqwest::Client, name: &str) -> Reply {
    TestApp::read(
        client
            .post(format!("{}/auth/signup", app.address))
            .json(&json!({"username": name, "password": PASSWORD})),
    )
    .await
}

/// A login from `client`, with the device credential `device` if given (the session server's
/// cookie, the token server's `Device-Token` header).
async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    name: &str,
    password: &str,
    device: Option<&str>,
) -> Reply {
    let mut req = client
        .post(format!("{}/auth/login", app.address))
        .json(&json!({"username": name, "password": password}));
    if let Some(d) = device {
        req = match app.kind {
            Kind::Session => req.header("Cookie", format!("did={d}")),
            Kind::Token => req.header("Device-Token", d),
        };
    }
    TestApp::read(req).await
}

/// The device credential a successful login handed out.
fn device_credential(app: &TestApp, reply: &Reply) -> String {
    match app.kind {
        Kind::Session => reply
            .set_cookies()
            .iter()
            .find_map(|c| {
                let pair = c.split(';').next()?;
                let value = pair.strip_prefix("did=")?;
                assert!(c.contains("HttpOnly") && c.contains("Max-Age="), "{c}");
                Some(value.to_owned())
            })
            .unwrap_or_else(|| panic!("no did cookie: {:?}", reply.set_cookies())),
        Kind::Token => reply.json()["device_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no device_token: {}", reply.text))
            .to_owned(),
    }
}

pub async fn signups_are_throttled_per_client_taken_names_included<S: Server>() {
    let app = TestApp::spawn::<S>(Options {
        signup_max: Some(5),
        ..Options::default()
    })
    .await;
    let taken = random_username();
    let from_a = client_from(21);
    assert_eq!(signup_from(&app, &from_a, &taken).await.status, 201);
    assert_eq!(
        signup_from(&app, &from_a, &random_username()).await.status,
        201
    );
    // A taken name counts too: otherwise 409 is a free oracle of who has an account.
    for _ in 0..3 {
        signup_from(&app, &from_a, &taken)
            .await
            .assert_error(409, "conflict");
    }
    let started = Instant::now();
    let r = signup_from(&app, &from_a, &random_username()).await;
    r.assert_error(429, "rate_limited");
    let retry = r.retry_after_s();
    assert!((1..=300).contains(&retry), "Retry-After {retry}");
    signup_from(&app, &from_a, &taken)
        .await
        .assert_error(429, "rate_limited");
    // Refused before the password is hashed: no argon2 time in the answer.
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "two refusals took {:?}",
        started.elapsed()
    );
    // Another client is not held back.
    let from_b = client_from(22);
    assert_eq!(
        signup_from(&app, &from_b, &random_username()).await.status,
        201
    );
}

pub async fn a_stranger_cannot_lock_the_owner_out_of_a_known_device<S: Server>() {
    let app = TestApp::spawn::<S>(Options::default()).await;
    let owner = random_username();
    assert_eq!(app.signup(&owner, PASSWORD).await.status, 201);
    // The owner logged in before, from the address that will try again later.
    let home = client_from(113);
    let first = login_from(&app, &home, &owner, PASSWORD, None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let device = device_credential(&app, &first);
    assert!(!device.contains(&owner), "it does not say whose it is");

    // 120 wrong guesses from 12 addresses: each pair stops at 10, the username at 100.
    let guesses = (0..12u8).flat_map(|a| {
        let client = client_from(101 + a);
        let app = &app;
        let owner = &owner;
        (0..10).map(move |i| {
            let client = client.clone();
            async move {
                login_from(app, &client, owner, &format!("wrong-{a}-{i}"), None)
                    .await
                    .status
            }
        })
    });
    let statuses = join_all(guesses).await;
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 401).count() <= 100,
        "the per-username limit held"
    );

    // The owner, from a 13th address, with the device credential: let in.
    let back = login_from(&app, &home, &owner, PASSWORD, Some(&device)).await;
    assert_eq!(back.status, 200, "owner with device: {}", back.text);
    // A stranger with the right password but no device credential, from a 14th: held.
    let stranger = client_from(114);
    login_from(&app, &stranger, &owner, PASSWORD, None)
        .await
        .assert_error(429, "rate_limited");
    // Nor does a device credential of another user, or a forged one, open the door.
    let other = random_username();
    assert_eq!(app.signup(&other, PASSWORD).await.status, 201);
    let other_device = device_credential(
        &app,
        &login_from(&app, &client_from(115), &other, PASSWORD, None).await,
    );
    for fake in [other_device.as_str(), "d1.99999999999.AAAA", "forged"] {
        login_from(&app, &stranger, &owner, PASSWORD, Some(fake))
            .await
            .assert_error(429, "rate_limited");
    }
    // The device is no password: a wrong one with it is still a failure, and once its own
    // pair has failed the exemption is gone for the window.
    let mallory = client_from(116);
    login_from(&app, &mallory, &owner, "still-wrong", Some(&device))
        .await
        .assert_error(401, "invalid_credentials");
    login_from(&app, &mallory, &owner, PASSWORD, Some(&device))
        .await
        .assert_error(429, "rate_limited");
}

pub async fn a_stalled_redis_applies_nothing_late<S: Server>() {
    let app = TestApp::spawn::<S>(Options::default()).await;
    let name = app.signed_in_user().await;
    // Redis holds every script already (a script it has never seen would fail with NOSCRIPT
    // when it came back, and hide a late write).
    assert_eq!(app.refresh().await.status, 200);
    assert_eq!(app.login(&name, PASSWORD).await.status, 200);
    let held = app.credential().expect("logged in");

    app.redis.freeze(true);
    let frozen_at = Instant::now();
    let refresh = app.refresh();
    let logins = join_all((0..10).map(|_| {
        TestApp::read(
            app.client
                .post(format!("{}/auth/login", app.address))
                .json(&json!({"username": name, "password": PASSWORD})),
        )
    }));
    let (refresh, logins) = tokio::join!(refresh, logins);
    refresh.assert_error(503, "unavailable");
    for r in &logins {
        r.assert_error(503, "unavailable");
    }
    // Longer than the retry grace (10 s): a rotation applied late would make the retry reuse.
    tokio::time::sleep(Duration::from_secs(12).saturating_sub(frozen_at.elapsed())).await;
    app.redis.freeze(false);
    crate::suite::ready_again(&app).await;

    // The retried refresh is the first use of the credential: 200, and the login lives on.
    app.set_credential(Some(held));
    let retried = app.refresh().await;
    assert_eq!(retried.status, 200, "retried refresh: {}", retried.text);
    assert_eq!(app.me().await.status, 200);
    assert_eq!(app.refresh().await.status, 200, "the family is alive");
    // The ten logins were not counted as failures: the right password gets in.
    let r = app.login(&name, PASSWORD).await;
    assert_eq!(r.status, 200, "login after the stall: {}", r.text);
}

pub async fn every_cross_site_state_change_is_refused_cookie_or_not<S: Server>() {
    let app = TestApp::spawn::<S>(Options::default()).await;
    let name = app.signed_in_user().await;
    let own = format!("http://127.0.0.1:{}", app.port);
    let forged = |path: &str, headers: &[(&str, &str)], body: Option<serde_json::Value>| {
        let mut req = app.client.post(format!("{}{path}", app.address));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        TestApp::read(req)
    };
    let login_body = json!({"username": name, "password": PASSWORD});
    let logout_body = match app.credential() {
        Some(Credential::Tokens { refresh, .. }) => Some(json!({"refresh_token": refresh})),
        _ => None,
    };
    // No cookie at all: what a cross-site form sends under SameSite=Lax or Strict.
    for headers in [
        &[("Origin", "https://evil.example")][..],
        &[("Origin", "null")][..],
        &[("Sec-Fetch-Site", "cross-site")][..],
        &[("Sec-Fetch-Site", "same-site")][..],
    ] {
        let logout = forged("/auth/logout", headers, logout_body.clone()).await;
        let login = forged("/auth/login", headers, Some(login_body.clone())).await;
        match app.kind {
            Kind::Session => {
                for (what, r) in [("logout", &logout), ("login", &login)] {
                    r.assert_error(403, "forbidden");
                    assert!(
                        r.set_cookies().is_empty(),
                        "{what} {headers:?}: no Set-Cookie, got {:?}",
                        r.set_cookies()
                    );
                }
            }
            // A browser attaches nothing to a token request by itself: nothing to forge.
            Kind::Token => {
                assert_ne!(logout.status, 403, "{headers:?}: {}", logout.text);
                assert_ne!(login.status, 403, "{headers:?}: {}", login.text);
            }
        }
    }
    if app.kind == Kind::Token {
        return;
    }
    // The user is still logged in.
    assert_eq!(app.me().await.status, 200);
    // From its own origin, or from no browser at all: the logout happens.
    for headers in [
        &[("Origin", own.as_str())][..],
        &[("Sec-Fetch-Site", "same-origin")][..],
        &[][..],
    ] {
        let r = TestApp::read(
            headers
                .iter()
                .fold(app.builder(Method::POST, "/auth/logout"), |req, (k, v)| {
                    req.header(*k, *v)
                }),
        )
        .await;
        assert_eq!(r.status, 204, "{headers:?}: {}", r.text);
        assert_eq!(session_cookie(&r), Some(None), "the cookie is cleared");
        assert_eq!(app.login(&name, PASSWORD).await.status, 200);
    }
}

pub async fn request_heads_over_16_kib_are_431<S: Server>() {
    let app = TestApp::spawn::<S>(Options::default()).await;
    let with_header = |bytes: usize| {
        TestApp::read(
            app.client
                .get(format!("{}/api/public", app.address))
                .header("X-Padding", "x".repeat(bytes)),
        )
    };
    assert_eq!(with_header(12 * 1024).await.status, 200, "a 12 KiB head");
    with_header(17 * 1024)
        .await
        .assert_error(431, "headers_too_large");
    // Also when it arrives slowly: no more than 16 KiB is ever held for one head.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    conn.write_all(b"GET /api/public HTTP/1.1\r\nHost: x\r\nX-Padding: ")
        .await
        .unwrap();
    // Just past 16 KiB, a kilobyte at a time (writing on after the answer would reset it).
    for _ in 0..16 {
        conn.write_all(&[b'x'; 1024]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(
        answer.contains(r#""error":"headers_too_large""#),
        "{answer}"
    );
}
