//! Password hashing: argon2id with OWASP's parameters, off the async workers, bounded.

use std::sync::Arc;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier, Version};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// OWASP's recommended argon2id settings: 19 MiB, 2 passes, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct PasswordHasher {
    /// One permit per core: a login flood waits here instead of allocating 19 MiB per
    /// request on the blocking pool.
    permits: Arc<Semaphore>,
    /// Verified against when the username is unknown, so the answer takes as long as for a
    /// wrong password and does not reveal which names exist.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .expect("the OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?
        .to_string())
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let dummy = hash_now("not a password anybody has")?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: dummy.into(),
        })
    }

    /// A human-readable summary for reports.
    pub fn describe() -> String {
        format!("argon2id m={MEMORY_KIB}KiB t={ITERATIONS} p={PARALLELISM}")
    }

    #[tracing::instrument(name = "hash password", skip_all)]
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.blocking(move || hash_now(&password)).await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no user.
    #[tracing::instrument(name = "verify password", skip_all)]
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = self
            .blocking(move || {
                let parsed = PasswordHash::new(&hash)
                    .map_err(|e| anyhow::anyhow!("stored hash is malformed: {e}"))?;
                Ok(argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok())
            })
            .await?;
        Ok(known && matched)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(f))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .map_err(ApiError::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let h = PasswordHasher::new(1).unwrap();
        let stored = h.hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h
            .verify("correct horse".into(), Some(stored.clone()))
            .await
            .unwrap());
        assert!(!h.verify("wrong horse".into(), Some(stored)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let h = PasswordHasher::new(1).unwrap();
        assert!(!h
            .verify("not a password anybody has".into(), None)
            .await
            .unwrap());
    }
}
