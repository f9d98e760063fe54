use std::time::Duration;

use auth_core::config::RedisTarget;
use auth_core::http::Application;
use conformance::{Kind, Options, Server};
use session_server::settings::{Settings, StoreKind};

pub struct SessionServer;

impl Server for SessionServer {
    const KIND: Kind = Kind::Session;

    async fn build(redis: RedisTarget, o: Options) -> anyhow::Result<Application> {
        let mut s = Settings::for_tests(redis);
        if let Some(t) = o.idle_timeout_s {
            s.idle_timeout = Duration::from_secs(t);
        }
        if let Some(t) = o.absolute_timeout_s {
            s.absolute_timeout = Duration::from_secs(t);
        }
        if o.memory_store {
            s.store = StoreKind::Memory;
        }
        s.cookie_secure = o.cookie_secure;
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
        session_server::startup::build(s).await
    }
}
