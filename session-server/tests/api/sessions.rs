//! What only the session server promises: fresh ids, cookie flags, server-side deletion,
//! timeouts enforced by the server, one Redis round trip per read, and the memory store.

use std::sync::Arc;
use std::time::Duration;

use conformance::{Credential, Options, RedisProcess, TestApp};
use redis::AsyncCommands;

use crate::helpers::SessionServer;

async fn app(options: Options) -> TestApp {
    TestApp::spawn::<SessionServer>(options).await
}

async fn session_keys(app: &TestApp) -> Vec<String> {
    let mut conn = app.redis.conn().await;
    conn.keys("session:*").await.unwrap()
}

fn cookie(app: &TestApp) -> Credential {
    app.credential().expect("holds a session cookie")
}

#[tokio::test]
async fn login_never_keeps_the_id_the_client_brought() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    let planted = cookie(&app);
    let planted_keys = session_keys(&app).await;
    // A victim logs in while carrying an id the attacker knows (session fixation).
    let victim = conformance::random_username();
    app.signup(&victim, conformance::PASSWORD).await;
    app.set_credential(Some(planted.clone()));
    assert_eq!(app.login(&victim, conformance::PASSWORD).await.status, 200);
    let fresh = cookie(&app);
    assert_ne!(fresh, planted);
    let keys = session_keys(&app).await;
    assert_eq!(
        keys.len(),
        1,
        "the planted session was deleted, one fresh one exists"
    );
    assert_ne!(keys, planted_keys);
    app.set_credential(Some(planted));
    app.me().await.assert_error(401, "invalid_token");
    app.set_credential(Some(fresh));
    assert_eq!(app.me().await.json()["username"], victim.as_str());
}

#[tokio::test]
async fn the_session_id_is_long_random_and_never_reused() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    app.set_credential(None);
    app.signed_in_user().await;
    let keys = session_keys(&app).await;
    assert_eq!(keys.len(), 2);
    for k in &keys {
        // `session:{<slot tag>}<60 random characters>`: the id is the tag and the rest.
        let rest = k.strip_prefix("session:{").unwrap();
        let (tag, random) = rest.split_once('}').unwrap();
        assert_eq!(tag.len(), 4, "{k}");
        assert!(tag.chars().all(|c| c.is_ascii_hexdigit()), "{k}");
        assert_eq!(random.len(), 60, "{k}");
        assert!(random.chars().all(|c| c.is_ascii_alphanumeric()), "{k}");
    }
    assert_ne!(keys[0], keys[1]);
}

#[tokio::test]
async fn the_cookie_is_httponly_lax_rooted_and_secure_unless_turned_off() {
    for secure in [true, false] {
        let app = app(Options {
            cookie_secure: secure,
            ..Options::default()
        })
        .await;
        let name = conformance::random_username();
        app.signup(&name, conformance::PASSWORD).await;
        let login = app.login(&name, conformance::PASSWORD).await;
        let cookies = login.set_cookies();
        // The session, then the device credential (same flags, a lifetime of its own).
        assert_eq!(cookies.len(), 2, "{cookies:?}");
        for (cookie, name_prefix) in cookies.iter().zip(if secure {
            ["__Host-sid=", "__Host-did="]
        } else {
            ["sid=", "did="]
        }) {
            let attrs: Vec<String> = cookie.split(';').map(|a| a.trim().to_owned()).collect();
            // Secure: the `__Host-` prefix, which a browser accepts only with Secure, Path=/
            // and no Domain.
            assert!(
                attrs[0].starts_with(name_prefix) && attrs[0].len() > 40,
                "{attrs:?}"
            );
            assert!(!attrs.iter().any(|a| a.starts_with("Domain")), "{attrs:?}");
            assert!(attrs.iter().any(|a| a == "HttpOnly"), "{attrs:?}");
            assert!(attrs.iter().any(|a| a == "SameSite=Lax"), "{attrs:?}");
            assert!(attrs.iter().any(|a| a == "Path=/"), "{attrs:?}");
            assert_eq!(attrs.iter().any(|a| a == "Secure"), secure, "{attrs:?}");
            assert!(!cookie.contains(&name), "the cookie is opaque");
        }
        assert!(
            cookies[1].contains(&format!("Max-Age={}", 30 * 24 * 60 * 60)),
            "DEVICE_TTL: {}",
            cookies[1]
        );
    }
}

#[tokio::test]
async fn a_session_cookie_sent_twice_is_refused_whichever_comes_first() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    let Some(Credential::Cookie(valid)) = app.credential() else {
        panic!("a session cookie")
    };
    for pair in [
        format!("{valid}; sid=bogus"),
        format!("sid=bogus; {valid}"),
        format!("{valid}; {valid}"),
    ] {
        app.set_credential(Some(Credential::Cookie(pair.clone())));
        app.me().await.assert_error(401, "invalid_token");
    }
    // In two Cookie headers, too.
    let r = TestApp::read(
        app.client
            .get(format!("{}/api/me", app.address))
            .header("Cookie", valid.clone())
            .header("Cookie", "sid=bogus"),
    )
    .await;
    r.assert_error(401, "invalid_token");
    app.set_credential(Some(Credential::Cookie(valid)));
    assert_eq!(app.me().await.status, 200, "once, it is fine");
}

#[tokio::test]
async fn logout_deletes_the_session_in_redis_and_clears_the_cookie() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    assert_eq!(session_keys(&app).await.len(), 1);
    let held = cookie(&app);
    let r = app.logout().await;
    assert_eq!(r.status, 204);
    assert!(session_keys(&app).await.is_empty());
    let cleared = r.set_cookies();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("sid=") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    app.set_credential(Some(held));
    app.me().await.assert_error(401, "invalid_token");
}

#[tokio::test]
async fn refresh_rotates_the_id_in_redis_too() {
    // Without the retry grace, whose pointer would be a second key for a while.
    let app = app(Options {
        reuse_interval_s: Some(0),
        ..Options::default()
    })
    .await;
    app.signed_in_user().await;
    let before = session_keys(&app).await;
    assert_eq!(app.refresh().await.status, 200);
    let after = session_keys(&app).await;
    assert_eq!(after.len(), 1);
    assert_ne!(before, after);
}

#[tokio::test]
async fn an_idle_session_ends() {
    let app = app(Options {
        idle_timeout_s: Some(2),
        absolute_timeout_s: Some(60),
        ..Options::default()
    })
    .await;
    app.signed_in_user().await;
    assert_eq!(app.me().await.status, 200);
    let mut conn = app.redis.conn().await;
    let key = session_keys(&app).await.pop().unwrap();
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!(
        (1..=2).contains(&ttl),
        "Redis expires it after the idle timeout: {ttl}"
    );
    // Waiting out a timeout is the behaviour under test, not synchronisation.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    app.me().await.assert_error(401, "invalid_token");
}

#[tokio::test]
async fn an_active_session_still_ends_at_the_absolute_timeout() {
    let app = app(Options {
        idle_timeout_s: Some(2),
        absolute_timeout_s: Some(3),
        ..Options::default()
    })
    .await;
    app.signed_in_user().await;
    for _ in 0..3 {
        assert_eq!(
            app.me().await.status,
            200,
            "activity keeps it alive before the limit"
        );
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    app.me().await.assert_error(401, "invalid_token");
    assert!(
        session_keys(&app).await.is_empty(),
        "the expired session was deleted"
    );
}

#[tokio::test]
async fn activity_extends_the_idle_timeout() {
    let app = app(Options {
        idle_timeout_s: Some(2),
        absolute_timeout_s: Some(60),
        ..Options::default()
    })
    .await;
    app.signed_in_user().await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            app.me().await.status,
            200,
            "a request within the idle timeout extends it"
        );
    }
}

#[tokio::test]
async fn a_read_costs_one_redis_command_on_average() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    let before = app.redis_commands().await;
    for _ in 0..50 {
        assert_eq!(app.me().await.status, 200);
        assert_eq!(app.items().await.status, 200);
    }
    let used = app.redis_commands().await - before;
    assert!(
        (100..=105).contains(&used),
        "100 reads issued {used} Redis commands"
    );
}

#[tokio::test]
async fn a_memory_session_lives_on_one_replica_only() {
    let redis = Arc::new(RedisProcess::start().await);
    let memory = Options {
        memory_store: true,
        ..Options::default()
    };
    let a = TestApp::spawn_on::<SessionServer>(redis.clone(), memory.clone()).await;
    let b = TestApp::spawn_on::<SessionServer>(redis.clone(), memory).await;
    a.signed_in_user().await;
    assert!(session_keys(&a).await.is_empty(), "nothing went to Redis");
    b.set_credential(a.credential());
    assert_eq!(a.me().await.status, 200);
    b.me().await.assert_error(401, "invalid_token");

    let c = TestApp::spawn_on::<SessionServer>(redis.clone(), Options::default()).await;
    let d = TestApp::spawn_on::<SessionServer>(redis, Options::default()).await;
    c.signed_in_user().await;
    d.set_credential(c.credential());
    assert_eq!(
        d.me().await.status,
        200,
        "with Redis any replica serves any session"
    );
}

#[tokio::test]
async fn a_memory_session_does_the_whole_lifecycle() {
    let app = app(Options {
        memory_store: true,
        ..Options::default()
    })
    .await;
    app.signed_in_user().await;
    let first = cookie(&app);
    assert_eq!(app.refresh().await.status, 200);
    assert_ne!(cookie(&app), first);
    assert_eq!(app.me().await.status, 200);
    assert_eq!(app.logout().await.status, 204);
    assert_eq!(app.me().await.status, 401);
}
