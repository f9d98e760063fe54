//! Access tokens: what they carry, and every way a forged or stale one is refused.

use conformance::{Credential, Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use token_server::tokens::now_s;

use crate::helpers::{app, b64, parts, sign, tokens, TEST_SECRET};

async fn me_with(app: &TestApp, access: &str) -> conformance::Reply {
    app.set_credential(Some(Credential::Tokens {
        access: access.into(),
        refresh: "-".into(),
    }));
    app.me().await
}

async fn assert_refused(app: &TestApp, access: &str, why: &str) {
    let r = me_with(app, access).await;
    assert_eq!(r.status, 401, "{why}: {}", r.text);
    r.assert_error(401, "invalid_token");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="token-server", error="invalid_token""#),
        "{why}"
    );
}

#[tokio::test]
async fn an_access_token_carries_the_contract_claims_and_no_secret() {
    let app = app(Options::default()).await;
    let name = app.signed_in_user().await;
    let (access, _) = tokens(&app);
    let (header, claims) = parts(&access);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"]
        .as_str()
        .is_some_and(|k| k.starts_with("hs256-")));
    for c in ["iss", "aud", "sub", "exp", "iat", "nbf", "jti", "roles"] {
        assert!(claims.get(c).is_some(), "claim {c} missing: {claims}");
    }
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        900
    );
    assert_eq!(claims["roles"], json!(["user"]));
    assert_eq!(claims["preferred_username"], name.as_str());
    let text = access.to_string() + &claims.to_string();
    assert!(!text.contains(conformance::PASSWORD) && !text.contains("argon2"));
}

#[tokio::test]
async fn forged_and_stale_access_tokens_are_refused() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    let (access, refresh) = tokens(&app);
    let (header, claims) = parts(&access);
    assert_eq!(
        me_with(&app, &sign(&header, &claims, TEST_SECRET))
            .await
            .status,
        200,
        "re-signing as is works"
    );

    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let now = now_s();
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "at+jwt"})),
                b64(&claims)
            ),
        ),
        (
            "alg none with the original signature",
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "none", "typ": "at+jwt"})),
                b64(&claims),
                access.rsplit('.').next().unwrap()
            ),
        ),
        ("tampered payload", {
            let p: Vec<&str> = access.split('.').collect();
            format!(
                "{}.{}.{}",
                p[0],
                b64(&with("roles", json!(["user", "admin"]))),
                p[2]
            )
        }),
        ("tampered signature", {
            let mut t = access.clone();
            let last = t.pop().unwrap();
            t.push(if last == 'A' { 'B' } else { 'A' });
            t
        }),
        (
            "other secret",
            sign(&header, &claims, b"another-secret-another-secret-another!"),
        ),
        (
            "expired beyond leeway",
            sign(&header, &with("exp", json!(now - 31)), TEST_SECRET),
        ),
        (
            "not yet valid",
            sign(&header, &with("nbf", json!(now + 120)), TEST_SECRET),
        ),
        (
            "wrong iss",
            sign(&header, &with("iss", json!("someone-else")), TEST_SECRET),
        ),
        (
            "wrong aud",
            sign(
                &header,
                &with("aud", json!("token-server/refresh")),
                TEST_SECRET,
            ),
        ),
        (
            "wrong typ",
            sign(
                &json!({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}),
                &claims,
                TEST_SECRET,
            ),
        ),
        (
            "no typ",
            sign(
                &json!({"alg": "HS256", "kid": header["kid"]}),
                &claims,
                TEST_SECRET,
            ),
        ),
        (
            "unknown kid",
            sign(
                &json!({"alg": "HS256", "typ": "at+jwt", "kid": "other"}),
                &claims,
                TEST_SECRET,
            ),
        ),
        (
            "alg HS512",
            sign(
                &json!({"alg": "HS512", "typ": "at+jwt", "kid": header["kid"]}),
                &claims,
                TEST_SECRET,
            ),
        ),
        ("refresh token as access token", refresh.clone()),
        ("not a JWT", "abc".into()),
    ];
    for (why, token) in &cases {
        assert_refused(&app, token, why).await;
    }
    for claim in ["exp", "nbf", "iat", "iss", "aud", "sub", "jti", "roles"] {
        assert_refused(
            &app,
            &sign(&header, &without(claim), TEST_SECRET),
            &format!("no {claim}"),
        )
        .await;
    }
    assert_eq!(
        me_with(
            &app,
            &sign(&header, &with("exp", json!(now - 10)), TEST_SECRET)
        )
        .await
        .status,
        200,
        "30 s of leeway on exp"
    );
}

#[tokio::test]
async fn every_401_names_the_bearer_realm() {
    let app = app(Options::default()).await;
    let r = app.me().await;
    r.assert_error(401, "unauthorized");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="token-server""#)
    );
    let r = app.login("nobody", "wrong-password").await;
    r.assert_error(401, "invalid_credentials");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="token-server""#)
    );
    let r = app
        .request(
            Method::POST,
            "/auth/refresh",
            Some(json!({"refresh_token": "x.y.z"})),
        )
        .await;
    r.assert_error(401, "invalid_token");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="token-server", error="invalid_token""#)
    );
}

#[tokio::test]
async fn reads_with_an_access_token_never_touch_redis() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    let before = app.redis_commands().await;
    for _ in 0..50 {
        assert_eq!(app.me().await.status, 200);
        assert_eq!(app.items().await.status, 200);
    }
    assert_eq!(app.redis_commands().await, before);
}

#[tokio::test]
async fn without_a_denylist_an_access_token_outlives_logout() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    let (access, _) = tokens(&app);
    assert_eq!(app.logout().await.status, 204);
    assert_eq!(
        me_with(&app, &access).await.status,
        200,
        "stateless: valid until it expires"
    );
}

#[tokio::test]
async fn with_the_denylist_logout_revokes_the_access_token_at_one_read_per_request() {
    let app = app(Options {
        access_denylist: true,
        ..Options::default()
    })
    .await;
    app.signed_in_user().await;
    let (access, _) = tokens(&app);
    let before = app.redis_commands().await;
    for _ in 0..10 {
        assert_eq!(app.me().await.status, 200);
    }
    assert_eq!(
        app.redis_commands().await - before,
        10,
        "one Redis read per request"
    );
    assert_eq!(app.logout().await.status, 204);
    assert_refused(&app, &access, "denied after logout").await;
}

#[tokio::test]
async fn a_short_access_ttl_is_what_the_token_says() {
    let app = app(Options {
        access_ttl_s: Some(5),
        ..Options::default()
    })
    .await;
    let name = conformance::random_username();
    app.signup(&name, conformance::PASSWORD).await;
    let login = app.login(&name, conformance::PASSWORD).await.json();
    assert_eq!(login["expires_in"], 5);
    let (_, claims) = parts(login["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        5
    );
}

#[tokio::test]
async fn eddsa_tokens_verify_with_the_published_jwks_alone() {
    let app = app(Options {
        eddsa: true,
        ..Options::default()
    })
    .await;
    app.signed_in_user().await;
    let (access, _) = tokens(&app);
    let (header, claims) = parts(&access);
    assert_eq!(header["alg"], "EdDSA");
    let jwks = app.jwks().await;
    assert_eq!(jwks.status, 200);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks.text).unwrap();
    assert_eq!(set.keys.len(), 1);
    let jwk = set
        .find(header["kid"].as_str().unwrap())
        .expect("the token's kid is published");
    assert!(
        !jwks.text.contains("\"d\""),
        "no private part: {}",
        jwks.text
    );
    // What another service would do: verify with the public key, no secret shared.
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_audience(&["session-vs-token-api"]);
    v.set_issuer(&["token-server"]);
    let data = jsonwebtoken::decode::<Value>(&access, &key, &v).unwrap();
    assert_eq!(data.claims["sub"], claims["sub"]);
    // Algorithm confusion: an HS256 token "signed" with the public key is refused.
    let x = jwk.algorithm.clone();
    let public_bytes = match x {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) => p.x,
        other => panic!("{other:?}"),
    };
    let forged = sign(
        &json!({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]}),
        &claims,
        public_bytes.as_bytes(),
    );
    assert_refused(&app, &forged, "HS256 with the public key").await;
}

#[tokio::test]
async fn an_hs256_server_publishes_no_keys() {
    let app = app(Options::default()).await;
    app.jwks().await.assert_error(404, "not_found");
}

/// Version 2: tokens signed with the right key but shaped beyond what this server issues.
#[tokio::test]
async fn a_key_holder_cannot_stretch_a_token_or_demand_an_extension() {
    let app = app(Options::default()).await;
    app.signed_in_user().await;
    let (access, _) = tokens(&app);
    let (header, claims) = parts(&access);
    assert_eq!(claims["scope"], "read");
    assert!(
        claims["sid"].is_string(),
        "the login it belongs to: {claims}"
    );
    let now = now_s();
    let resign = |h: &Value, c: &Value| sign(h, c, TEST_SECRET);
    // Re-signed unchanged, it works: each case below breaks exactly one thing.
    assert_eq!(me_with(&app, &resign(&header, &claims)).await.status, 200);
    let mut crit = header.clone();
    crit["crit"] = json!(["exp"]);
    crit["exp"] = json!(now);
    assert_refused(&app, &resign(&crit, &claims), "a header with crit").await;
    let mut future = claims.clone();
    future["iat"] = json!(now + 3600);
    future["nbf"] = json!(now);
    future["exp"] = json!(now + 3600 + 900);
    assert_refused(&app, &resign(&header, &future), "iat in the future").await;
    let mut y2300 = claims.clone();
    y2300["exp"] = json!(10_413_792_000u64);
    assert_refused(&app, &resign(&header, &y2300), "exp in the year 2300").await;
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["iat"].as_u64().unwrap() + 901);
    assert_refused(
        &app,
        &resign(&header, &longer),
        "a lifetime over ACCESS_TOKEN_TTL",
    )
    .await;
    let mut no_scope = claims.clone();
    no_scope.as_object_mut().unwrap().remove("scope");
    assert_refused(&app, &resign(&header, &no_scope), "no scope claim").await;
    let mut two_dots = resign(&header, &claims);
    two_dots.push_str(".x");
    assert_refused(&app, &two_dots, "four parts").await;
}
