//! The contract's tests, each generic over the server. `suite!` turns them into
//! `#[tokio::test]`s in a server's own test binary.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::app::{random_username, Credential, Kind, Options, Server, TestApp, PASSWORD};

/// Expands to one `#[tokio::test]` per contract test, run against `$server`.
#[macro_export]
macro_rules! suite {
    ($server:ty) => {
        $crate::suite!($server;
            signup_creates_a_user,
            signup_with_a_taken_name_is_a_conflict,
            signup_validates_its_fields,
            malformed_json_is_invalid_request,
            a_json_route_refuses_other_content_types,
            a_body_over_16_kib_is_too_large,
            login_hands_out_a_credential_that_reads_me_and_items,
            wrong_password_and_unknown_user_get_the_same_answer,
            protected_routes_need_credentials,
            garbage_credentials_are_invalid_tokens,
            public_route_needs_nothing,
            admin_route_needs_the_admin_role,
            unknown_routes_and_wrong_methods_answer_in_json,
            health_readiness_and_metrics,
            refresh_hands_out_a_new_credential_and_kills_the_old,
            logout_ends_the_credential_and_twice_is_fine,
            repeated_failed_logins_are_rate_limited,
            a_signup_on_one_replica_is_seen_by_another,
            hostile_input_never_gets_a_5xx,
            redis_outage_is_503_fast_and_recovers,
            a_frozen_redis_is_503_within_two_seconds,
        );
        $crate::suite!(@v2 $server;
            compressed_bodies_are_refused_and_never_inflated,
            parallel_wrong_logins_never_exceed_the_limit,
            forwarded_addresses_count_only_from_trusted_proxies,
            parallel_refreshes_leave_one_live_credential,
            a_request_in_flight_during_logout_never_brings_the_login_back,
            a_retried_refresh_within_the_interval_keeps_the_user_logged_in,
            a_replaced_credential_is_reuse_after_the_interval_or_a_second_rotation,
            rotations_keep_a_bounded_number_of_redis_keys,
            login_scope_limits_the_credential,
            role_changes_reach_credentials_as_each_model_promises,
            logout_all_ends_every_login_of_the_user,
            credentials_and_personal_data_are_never_cached,
            cors_answers_listed_origins_only,
            cross_site_state_changes_are_refused_where_the_browser_sends_the_credential,
            wrong_methods_say_allow_and_head_answers_like_get,
            logout_with_a_dead_credential_still_clears_it,
            a_stalled_body_is_a_json_408_within_the_limit,
            http_layer_errors_answer_in_json,
            arbitrary_input_never_gets_a_5xx,
        );
        $crate::suite!(@v3 $server;
            signups_are_throttled_per_client_taken_names_included,
            a_stranger_cannot_lock_the_owner_out_of_a_known_device,
            a_stalled_redis_applies_nothing_late,
            every_cross_site_state_change_is_refused_cookie_or_not,
            request_heads_over_16_kib_are_431,
        );
    };
    (@v3 $server:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::suite_v3::$name::<$server>().await
            }
        )*
    };
    (@v2 $server:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::suite_v2::$name::<$server>().await
            }
        )*
    };
    ($server:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::suite::$name::<$server>().await
            }
        )*
    };
}

async fn app<S: Server>() -> TestApp {
    TestApp::spawn::<S>(Options::default()).await
}

pub async fn signup_creates_a_user<S: Server>() {
    let app = app::<S>().await;
    let name = random_username();
    let r = app.signup(&name, PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let body = r.json();
    assert_eq!(body["username"], name.as_str());
    assert_eq!(body["roles"], json!(["user"]));
    uuid_of(&body["id"]);
    assert!(!r.text.contains(PASSWORD) && !r.text.contains("argon2"));
}

fn uuid_of(v: &serde_json::Value) -> uuid::Uuid {
    v.as_str()
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .unwrap_or_else(|| panic!("not a uuid: {v}"))
}

pub async fn signup_with_a_taken_name_is_a_conflict<S: Server>() {
    let app = app::<S>().await;
    let name = random_username();
    assert_eq!(app.signup(&name, PASSWORD).await.status, 201);
    app.signup(&name, "another-password")
        .await
        .assert_error(409, "conflict");
}

pub async fn signup_validates_its_fields<S: Server>() {
    let app = app::<S>().await;
    for (user, pass) in [
        ("ab", PASSWORD),
        (&"a".repeat(33)[..], PASSWORD),
        ("Upper", PASSWORD),
        ("with space", PASSWORD),
        ("ünïcode", PASSWORD),
        ("okname", "short"),
        ("okname", &"p".repeat(129)[..]),
    ] {
        app.signup(user, pass)
            .await
            .assert_error(400, "invalid_request");
    }
    for body in [
        json!({"username": "okname"}),
        json!({"password": PASSWORD}),
        json!({"username": 12345, "password": PASSWORD}),
        json!({"username": "okname", "password": PASSWORD, "admin": true}),
        json!(["okname", PASSWORD]),
    ] {
        app.request(Method::POST, "/auth/signup", Some(body))
            .await
            .assert_error(400, "invalid_request");
    }
}

pub async fn malformed_json_is_invalid_request<S: Server>() {
    let app = app::<S>().await;
    for path in ["/auth/signup", "/auth/login"] {
        for body in [
            "{",
            "",
            "null",
            "{\"username\": \"a\", \"password\": }",
            "\u{0}",
        ] {
            app.post_raw(path, "application/json", body)
                .await
                .assert_error(400, "invalid_request");
        }
    }
}

pub async fn a_json_route_refuses_other_content_types<S: Server>() {
    let app = app::<S>().await;
    let body = format!(
        r#"{{"username": "{}", "password": "{PASSWORD}"}}"#,
        random_username()
    );
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        app.post_raw("/auth/signup", ct, body.clone())
            .await
            .assert_error(415, "unsupported_media_type");
    }
}

pub async fn a_body_over_16_kib_is_too_large<S: Server>() {
    let app = app::<S>().await;
    let big = format!(
        r#"{{"username": "abc", "password": "{}"}}"#,
        "x".repeat(17 * 1024)
    );
    app.post_raw("/auth/login", "application/json", big)
        .await
        .assert_error(413, "payload_too_large");
}

pub async fn login_hands_out_a_credential_that_reads_me_and_items<S: Server>() {
    let app = app::<S>().await;
    let name = random_username();
    let signup = app.signup(&name, PASSWORD).await.json();
    let login = app.login(&name, PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let body = login.json();
    assert_eq!(body["user"], signup);
    match app.kind {
        Kind::Session => {
            assert!(matches!(app.credential(), Some(Credential::Cookie(_))));
            assert!(
                body.get("access_token").is_none(),
                "a session login hands out no token"
            );
        }
        Kind::Token => {
            assert_eq!(body["token_type"], "Bearer");
            assert_eq!(body["expires_in"], 900);
            assert_eq!(body["refresh_expires_in"], 14 * 24 * 3600);
            assert!(
                login.set_cookies().is_empty(),
                "a token login sets no cookie"
            );
        }
    }
    let me = app.me().await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json(), signup);
    let items = app.items().await;
    assert_eq!(items.status, 200);
    let items = items.json()["items"]
        .as_array()
        .cloned()
        .expect("items is a list");
    assert_eq!(items.len(), 10);
    assert!(items.iter().all(|i| i["owner"] == signup["id"]));
}

pub async fn wrong_password_and_unknown_user_get_the_same_answer<S: Server>() {
    let app = app::<S>().await;
    let name = random_username();
    app.signup(&name, PASSWORD).await;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let a = app.login(&name, "wrong-password").await;
        wrong.push(t.elapsed());
        let t = Instant::now();
        let b = app.login(&random_username(), "wrong-password").await;
        unknown.push(t.elapsed());
        a.assert_error(401, "invalid_credentials");
        b.assert_error(401, "invalid_credentials");
        assert_eq!(a.json()["message"], b.json()["message"]);
    }
    wrong.sort();
    unknown.sort();
    // An unknown name is checked against a dummy hash: without it, the answer would come
    // back more than 10x faster (no argon2 at all) and reveal which names exist.
    assert!(
        unknown[1] * 3 > wrong[1],
        "unknown user answered in {:?}, wrong password in {:?}",
        unknown[1],
        wrong[1]
    );
}

pub async fn protected_routes_need_credentials<S: Server>() {
    let app = app::<S>().await;
    for path in ["/api/me", "/api/items", "/api/admin/stats"] {
        app.request(Method::GET, path, None)
            .await
            .assert_error(401, "unauthorized");
    }
    if app.kind == Kind::Session {
        app.refresh().await.assert_error(401, "unauthorized");
    }
}

pub async fn garbage_credentials_are_invalid_tokens<S: Server>() {
    let app = app::<S>().await;
    let garbage = match app.kind {
        Kind::Session => Credential::Cookie("sid=not-a-session".into()),
        Kind::Token => Credential::Tokens {
            access: "not.a.token".into(),
            refresh: "x".into(),
        },
    };
    app.set_credential(Some(garbage));
    for path in ["/api/me", "/api/items", "/api/admin/stats"] {
        app.request(Method::GET, path, None)
            .await
            .assert_error(401, "invalid_token");
    }
    app.refresh().await.assert_error(401, "invalid_token");
}

pub async fn public_route_needs_nothing<S: Server>() {
    let app = app::<S>().await;
    let r = app.public().await;
    assert_eq!(r.status, 200);
    assert!(r.json().is_object());
    app.signed_in_user().await;
    assert_eq!(
        app.public().await.status,
        200,
        "credentials do not hurt either"
    );
}

pub async fn admin_route_needs_the_admin_role<S: Server>() {
    let options = Options {
        bootstrap_admin: Some(("root".into(), "admin-password".into())),
        ..Options::default()
    };
    let app = TestApp::spawn::<S>(options).await;
    app.signed_in_user().await;
    app.admin_stats().await.assert_error(403, "forbidden");
    let login = app.login("root", "admin-password").await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.json()["user"]["roles"], json!(["user", "admin"]));
    let stats = app.admin_stats().await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert!(stats.json().is_object());
}

pub async fn unknown_routes_and_wrong_methods_answer_in_json<S: Server>() {
    let app = app::<S>().await;
    app.request(Method::GET, "/nope", None)
        .await
        .assert_error(404, "not_found");
    app.request(Method::GET, "/api/me/extra", None)
        .await
        .assert_error(404, "not_found");
    for (method, path) in [
        (Method::GET, "/auth/login"),
        (Method::GET, "/auth/signup"),
        (Method::DELETE, "/api/me"),
        (Method::POST, "/api/items"),
        (Method::PUT, "/auth/logout"),
        (Method::POST, "/healthz"),
    ] {
        app.request(method, path, None)
            .await
            .assert_error(405, "method_not_allowed");
    }
}

pub async fn health_readiness_and_metrics<S: Server>() {
    let app = app::<S>().await;
    assert_eq!(app.healthz().await.status, 200);
    assert_eq!(app.readyz().await.status, 200);
    app.signed_in_user().await;
    app.me().await;
    let text = app.metrics().await.text;
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains(r#"route="/api/me""#)
            && l.contains(r#"status="200""#)),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(app.redis_commands().await > 0);
}

pub async fn refresh_hands_out_a_new_credential_and_kills_the_old<S: Server>() {
    // Without the retry grace (see suite_v2 for it), the old credential dies at once.
    let app = TestApp::spawn::<S>(Options {
        reuse_interval_s: Some(0),
        ..Options::default()
    })
    .await;
    let name = app.signed_in_user().await;
    let before = app.credential().unwrap();
    let r = app.refresh().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["user"]["username"], name.as_str());
    let after = app.credential().unwrap();
    assert_ne!(before, after);
    assert_eq!(app.me().await.status, 200, "the new credential works");
    app.set_credential(Some(before));
    // Session: the old id is gone. Token: the old refresh token was rotated away.
    app.refresh().await.assert_error(401, "invalid_token");
}

pub async fn logout_ends_the_credential_and_twice_is_fine<S: Server>() {
    let app = app::<S>().await;
    app.signed_in_user().await;
    let held = app.credential().unwrap();
    let r = app.logout().await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    app.set_credential(Some(held.clone()));
    app.refresh().await.assert_error(401, "invalid_token");
    app.set_credential(Some(held));
    assert_eq!(
        app.logout().await.status,
        204,
        "logging out twice is not an error"
    );
}

pub async fn repeated_failed_logins_are_rate_limited<S: Server>() {
    let options = Options {
        login_max_failures: Some(3),
        ..Options::default()
    };
    let app = TestApp::spawn::<S>(options).await;
    let name = random_username();
    app.signup(&name, PASSWORD).await;
    for _ in 0..3 {
        app.login(&name, "wrong-password")
            .await
            .assert_error(401, "invalid_credentials");
    }
    let limited = app.login(&name, PASSWORD).await;
    limited.assert_error(429, "rate_limited");
    let retry = limited.retry_after_s();
    assert!((1..=300).contains(&retry), "{retry}");
    // Another user is not affected by this one's failures.
    app.signed_in_user().await;
}

pub async fn a_signup_on_one_replica_is_seen_by_another<S: Server>() {
    let a = app::<S>().await;
    let b = TestApp::spawn_on::<S>(a.redis.clone(), Options::default()).await;
    let name = random_username();
    assert_eq!(a.signup(&name, PASSWORD).await.status, 201);
    assert_eq!(b.login(&name, PASSWORD).await.status, 200);
    b.signup(&name, PASSWORD)
        .await
        .assert_error(409, "conflict");
}

pub async fn hostile_input_never_gets_a_5xx<S: Server>() {
    let app = app::<S>().await;
    let long = "a".repeat(8000);
    let bodies = [
        json!({"username": long, "password": long}),
        json!({"username": "", "password": ""}),
        json!({"username": "a\u{0}b", "password": "\u{202e}\u{0}"}),
        json!({"username": "../../etc/passwd", "password": "x' OR '1'='1"}),
        json!({"username": "*", "password": "*"}),
        json!({"username": "user:1", "password": "user:1"}),
        json!({"refresh_token": long}),
        json!({"refresh_token": "a.b.c"}),
        json!({"refresh_token": null}),
        json!(null),
    ];
    for path in [
        "/auth/signup",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
    ] {
        for body in &bodies {
            let r = app.request(Method::POST, path, Some(body.clone())).await;
            assert!(r.status < 500, "{path} {body}: {} {}", r.status, r.text);
            if r.status >= 400 {
                r.json();
            }
        }
    }
    for header in [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
    ] {
        let r = TestApp::read(
            app.client
                .get(format!("{}/api/me", app.address))
                .header("Authorization", header)
                .header("Cookie", "sid=%%%; sid=; other=1"),
        )
        .await;
        assert!(r.status == 401, "{header}: {} {}", r.status, r.text);
    }
}

async fn within_two_seconds(
    what: &str,
    r: impl std::future::Future<Output = crate::Reply>,
) -> crate::Reply {
    let t = Instant::now();
    let r = r.await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "{what} took {:?}",
        t.elapsed()
    );
    r
}

pub async fn redis_outage_is_503_fast_and_recovers<S: Server>() {
    let app = app::<S>().await;
    app.signed_in_user().await;
    let held = app.credential();
    app.redis.stop().await;

    within_two_seconds("readyz", app.readyz())
        .await
        .assert_error(503, "unavailable");
    assert_eq!(
        app.healthz().await.status,
        200,
        "the process itself is fine"
    );
    within_two_seconds("login", app.login("someone", PASSWORD))
        .await
        .assert_error(503, "unavailable");
    app.set_credential(held.clone());
    within_two_seconds("signup", app.signup(&random_username(), PASSWORD))
        .await
        .assert_error(503, "unavailable");
    app.set_credential(held.clone());
    let me = within_two_seconds("me", app.me()).await;
    match app.kind {
        // Every session read needs Redis.
        Kind::Session => me.assert_error(503, "unavailable"),
        // A valid access token needs nothing but the key.
        Kind::Token => {
            assert_eq!(me.status, 200, "{}", me.text);
            assert_eq!(app.items().await.status, 200);
        }
    }
    app.set_credential(held.clone());
    within_two_seconds("refresh", app.refresh())
        .await
        .assert_error(503, "unavailable");

    app.redis.restart().await;
    // Recovery without restarting the server: the first call may still find the old
    // connection broken, so allow a few tries within a bounded time.
    ready_again(&app).await;
    app.set_credential(held);
    assert_eq!(
        app.me().await.status,
        200,
        "the credential from before the outage works"
    );
    assert_eq!(app.refresh().await.status, 200);
    app.signed_in_user().await;
}

pub async fn a_frozen_redis_is_503_within_two_seconds<S: Server>() {
    let app = app::<S>().await;
    app.signed_in_user().await;
    let held = app.credential();
    app.redis.freeze(true);
    within_two_seconds("readyz", app.readyz())
        .await
        .assert_error(503, "unavailable");
    within_two_seconds("login", app.login("someone", PASSWORD))
        .await
        .assert_error(503, "unavailable");
    app.set_credential(held.clone());
    let me = within_two_seconds("me", app.me()).await;
    assert_eq!(
        me.status,
        if app.kind == Kind::Session { 503 } else { 200 },
        "{}",
        me.text
    );
    app.redis.freeze(false);
    ready_again(&app).await;
    app.set_credential(held);
    assert_eq!(app.me().await.status, 200);
}

/// Readiness comes back by itself once Redis answers again; the first call may still find
/// the old connection broken, so it gets a few tries within a bounded time.
pub(crate) async fn ready_again(app: &TestApp) {
    plumbing::wait_until(
        "ready again after Redis came back",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            match app.readyz().await.status {
                200 => plumbing::Check::Done(()),
                s => plumbing::Check::Waiting(format!("/readyz answered {s}")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}
