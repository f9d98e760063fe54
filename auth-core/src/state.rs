//! What both servers hold per process: Redis, users, hashing, throttling, metrics.

use std::time::Instant;

use crate::client::TrustedProxies;
use crate::config::CommonSettings;
use crate::contract::{Credentials, ADMIN_ROLE};
use crate::device::DeviceKey;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::password::PasswordHasher;
use crate::rate_limit::{Device, LoginLimiter, SignupLimiter};
use crate::redis_conn::Redis;
use crate::users::{StoredUser, UserDirectory};

#[derive(Clone)]
pub struct Core {
    /// `session-server` or `token-server`: names metrics and the public route's answer.
    pub server_name: &'static str,
    pub redis: Redis,
    pub users: UserDirectory,
    pub hasher: PasswordHasher,
    pub limiter: LoginLimiter,
    pub signups: SignupLimiter,
    /// Signs and checks device credentials (`device`).
    pub device: DeviceKey,
    /// `TRUSTED_PROXIES`: who may say, in `X-Forwarded-For`, who the client is.
    pub trusted_proxies: TrustedProxies,
    pub metrics: Metrics,
    pub started: Instant,
}

impl Core {
    /// `device_secret`: the server's own secret (cookie or token key), from which the key of
    /// device credentials is derived, so that every replica sharing it accepts them.
    pub async fn build(
        settings: &CommonSettings,
        server_name: &'static str,
        device_secret: &[u8],
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new(server_name);
        let redis = Redis::connect(&settings.redis, metrics.redis_commands.clone()).await?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let core = Self {
            server_name,
            users: UserDirectory::new(redis.clone()),
            hasher: PasswordHasher::new(cores)?,
            limiter: LoginLimiter::new(
                redis.clone(),
                settings.login_max_failures,
                settings.login_failure_window_s,
            ),
            signups: SignupLimiter::new(
                redis.clone(),
                settings.signup_max,
                settings.signup_window_s,
            ),
            device: DeviceKey::derive(device_secret, settings.device_ttl),
            trusted_proxies: settings.trusted_proxies.clone(),
            redis,
            metrics,
            started: Instant::now(),
        };
        if let Some((username, password)) = &settings.bootstrap_admin {
            core.bootstrap_admin(username, password).await?;
        }
        Ok(core)
    }

    async fn bootstrap_admin(&self, username: &str, password: &str) -> anyhow::Result<()> {
        let creds = Credentials {
            username: username.into(),
            password: password.into(),
        };
        creds
            .validate_for_signup()
            .map_err(|e| anyhow::anyhow!("BOOTSTRAP_ADMIN: {e}"))?;
        match self
            .create_user(creds, vec!["user".into(), ADMIN_ROLE.into()])
            .await
        {
            Ok(_) => tracing::info!(username, "created the bootstrap admin"),
            // Another replica (or an earlier start) created it: nothing to do.
            Err(ApiError::Conflict(_)) => {}
            Err(e) => anyhow::bail!("BOOTSTRAP_ADMIN: could not create the admin: {e}"),
        }
        Ok(())
    }

    /// `POST /auth/signup`'s work, after the body was validated: counted against the
    /// client's signup limit first (before the cheap "taken" answer and before the hash).
    pub async fn sign_up(&self, creds: Credentials, client: &str) -> Result<StoredUser, ApiError> {
        self.signups.attempt(client).await?;
        self.create_user(creds, vec!["user".into()]).await
    }

    /// A new user with `roles` (a signup, or the bootstrap admin).
    pub async fn create_user(
        &self,
        creds: Credentials,
        roles: Vec<String>,
    ) -> Result<StoredUser, ApiError> {
        // Cheap early answer for the common case; `create` is still the atomic check.
        if self.users.find(&creds.username).await?.is_some() {
            return Err(ApiError::Conflict(format!(
                "username `{}` is taken",
                creds.username
            )));
        }
        let user = StoredUser {
            id: uuid::Uuid::new_v4().to_string(),
            username: creds.username,
            password_hash: self.hasher.hash(creds.password).await?,
            roles,
        };
        self.users.create(&user).await?;
        Ok(user)
    }

    /// `PUT /api/admin/users/{username}/roles`'s shared part: the user record. What happens
    /// to credentials already handed out is each server's own business.
    pub async fn change_roles(
        &self,
        username: &str,
        roles: &crate::contract::RolesRequest,
    ) -> Result<StoredUser, ApiError> {
        let roles = roles.validated()?;
        let user = self
            .users
            .set_roles(username, &roles)
            .await?
            .ok_or(ApiError::NoSuchUser)?;
        tracing::info!(username, ?roles, "roles changed");
        Ok(user)
    }

    /// The client a request's failed logins are counted against.
    pub fn client_of(&self, req: &actix_web::HttpRequest) -> String {
        self.trusted_proxies.client_of(req)
    }

    /// The password check behind both servers' login: throttled, constant-ish time for
    /// unknown names, one answer for every kind of failure. `device`: the device credential
    /// the client sent, if any (it lets the owner past the wider limits, `rate_limit`).
    #[tracing::instrument(name = "authenticate", skip(self, creds, device), fields(username = %creds.username))]
    pub async fn authenticate(
        &self,
        creds: Credentials,
        client: &str,
        device: Option<&str>,
    ) -> Result<StoredUser, ApiError> {
        creds.validate_for_login()?;
        let device = match device {
            Some(d) if self.device.verify(d, &creds.username) => Device::Known,
            _ => Device::Unknown,
        };
        // Counted before the hash, atomically: parallel guesses cannot overrun the limit.
        self.limiter
            .attempt(&creds.username, client, device)
            .await?;
        let user = self.users.find(&creds.username).await?;
        let ok = self
            .hasher
            .verify(
                creds.password,
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await?;
        match user {
            Some(user) if ok => {
                self.limiter.succeeded(&user.username, client).await?;
                Ok(user)
            }
            _ => Err(ApiError::InvalidCredentials),
        }
    }
}
