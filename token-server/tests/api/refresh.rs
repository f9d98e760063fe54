//! Refresh tokens: rotation, reuse detection, the concurrent double refresh, confusion
//! with access tokens.

use conformance::{Credential, Options, TestApp};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{app, parts, tokens};

async fn refresh_with(app: &TestApp, refresh: &str) -> conformance::Reply {
    conformance::TestApp::read(
        app.client
            .post(format!("{}/auth/refresh", app.address))
            .json(&json!({"refresh_token": refresh})),
    )
    .await
}

#[tokio::test]
async fn a_refresh_token_carries_no_user_data() {
    let app = app(Options::default()).await;
    let name = app.signed_in_user().await;
    let (_, refresh) = tokens(&app);
    let (header, claims) = parts(&refresh);
    assert_eq!(header["typ"], "rt+jwt");
    assert_ne!(claims["aud"], "session-vs-token-api");
    assert!(claims.get("sub").is_none() && claims.get("roles").is_none());
    assert!(!refresh.contains(&name) && !claims.to_string().contains(&name));
}

#[tokio::test]
async fn reusing_a_rotated_token_revokes_the_whole_family_but_no_other() {
    let app = app(Options {
        // Without the retry grace (tested in the contract suite), every replayed token is reuse.
        reuse_interval_s: Some(0),
        ..Options::default()
    })
    .await;
    let name = app.signed_in_user().await;
    let (_, first) = tokens(&app);
    // A second login of the same user: a separate family.
    let other_device =
        TestApp::spawn_on::<crate::helpers::TokenServer>(app.redis.clone(), Options::default())
            .await;
    assert_eq!(
        other_device
            .login(&name, conformance::PASSWORD)
            .await
            .status,
        200
    );

    let r = refresh_with(&app, &first).await;
    assert_eq!(r.status, 200);
    let second = r.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    // The thief replays the first token: refused, and the family dies with it.
    refresh_with(&app, &first)
        .await
        .assert_error(401, "invalid_token");
    refresh_with(&app, &second)
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(
        other_device.refresh().await.status,
        200,
        "another login's family lives on"
    );
}

#[tokio::test]
async fn of_concurrent_refreshes_with_one_token_at_most_one_wins() {
    let app = app(Options {
        // Without the retry grace (tested in the contract suite), every replayed token is reuse.
        reuse_interval_s: Some(0),
        ..Options::default()
    })
    .await;
    for _ in 0..5 {
        app.set_credential(None);
        app.signed_in_user().await;
        let (_, refresh) = tokens(&app);
        let replies =
            futures_util::future::join_all((0..8).map(|_| refresh_with(&app, &refresh))).await;
        let winners = replies.iter().filter(|r| r.status == 200).count();
        assert!(winners <= 1, "{winners} winners");
        for r in replies.iter().filter(|r| r.status != 200) {
            r.assert_error(401, "invalid_token");
        }
    }
}

#[tokio::test]
async fn access_and_refresh_tokens_are_not_interchangeable() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    let (access, refresh) = tokens(&app);
    refresh_with(&app, &access)
        .await
        .assert_error(401, "invalid_token");
    app.request(
        Method::POST,
        "/auth/logout",
        Some(json!({"refresh_token": access})),
    )
    .await
    .assert_error(401, "invalid_token");
    app.set_credential(Some(Credential::Tokens {
        access: refresh.clone(),
        refresh,
    }));
    app.me().await.assert_error(401, "invalid_token");
}

#[tokio::test]
async fn refresh_keeps_the_user_and_issues_a_fresh_access_token() {
    let app = app(Options::default()).await;
    let name = app.signed_in_user().await;
    let (access, _) = tokens(&app);
    let r = app.refresh().await.json();
    assert_eq!(r["user"]["username"], name.as_str());
    assert_eq!(r["token_type"], "Bearer");
    let (new_access, _) = tokens(&app);
    assert_ne!(access, new_access);
    assert_eq!(parts(&new_access).1["sub"], parts(&access).1["sub"]);
    assert_eq!(app.me().await.status, 200);
}

#[tokio::test]
async fn logout_revokes_every_token_of_the_family() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    let (_, first) = tokens(&app);
    app.refresh().await;
    let (_, second) = tokens(&app);
    // Logging out with the older token still ends the family.
    let r = app
        .request(
            Method::POST,
            "/auth/logout",
            Some(json!({"refresh_token": first})),
        )
        .await;
    assert_eq!(r.status, 204);
    refresh_with(&app, &second)
        .await
        .assert_error(401, "invalid_token");
}
