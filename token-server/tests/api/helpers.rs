use std::time::Duration;

use auth_core::config::RedisTarget;
use auth_core::http::Application;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use conformance::{Credential, Kind, Options, Server, TestApp};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::Value;
use token_server::settings::{KeySource, Settings, SigningAlg};

pub struct TokenServer;

/// The HS256 secret of `Settings::for_tests`, so tests can forge tokens the server would
/// accept and then break them one property at a time.
pub const TEST_SECRET: &[u8] = b"test-only-secret-test-only-secret!";

impl Server for TokenServer {
    const KIND: Kind = Kind::Token;

    async fn build(redis: RedisTarget, o: Options) -> anyhow::Result<Application> {
        let mut s = Settings::for_tests(redis);
        assert!(
            matches!(&s.key, KeySource::Secret(k) if k == TEST_SECRET),
            "TEST_SECRET must match Settings::for_tests"
        );
        if let Some(t) = o.access_ttl_s {
            s.access_ttl = Duration::from_secs(t);
        }
        s.access_denylist = o.access_denylist;
        if o.eddsa {
            let path =
                std::env::temp_dir().join(format!("svt-ed25519-{}.pem", uuid::Uuid::new_v4()));
            std::fs::write(&path, token_server::keys::generate_ed25519_pem()?)?;
            s.alg = SigningAlg::EdDsa;
            s.key = KeySource::PemFile(path);
        }
        if let Some(n) = o.login_max_failures {
            s.common.login_max_failures = n;
        }
        s.common.bootstrap_admin = o.bootstrap_admin;
        if let Some(t) = o.reuse_interval_s {
            s.common.refresh_reuse_interval = Duration::from_secs(t);
        }
        s.common.trusted_proxies = auth_core::client::TrustedProxies::parse(&o.trusted_proxies)
            .map_err(anyhow::Error::msg)?;
        s.common.cors_allowed_origins = o.cors_origins;
        if let Some(n) = o.signup_max {
            s.common.signup_max = n;
        }
        token_server::startup::build(s).await
    }
}

pub async fn app(options: Options) -> TestApp {
    TestApp::spawn::<TokenServer>(options).await
}

pub fn tokens(app: &TestApp) -> (String, String) {
    match app.credential() {
        Some(Credential::Tokens { access, refresh }) => (access, refresh),
        other => panic!("holds no tokens: {other:?}"),
    }
}

/// Header and payload of a JWT, as JSON, without checking anything.
pub fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let mut part = || {
        let raw = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
        serde_json::from_slice::<Value>(&raw).unwrap()
    };
    (part(), part())
}

/// Signs `header` and `payload` with `secret` (HS256), whatever they contain.
pub fn sign(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let h: Header = serde_json::from_value(header.clone()).unwrap();
    encode(&h, payload, &EncodingKey::from_secret(secret)).unwrap()
}

pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}
