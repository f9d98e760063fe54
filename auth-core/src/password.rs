//! Password hashing: argon2id with OWASP's parameters, off the async workers, bounded.

use std::sync::{Arc, Mutex};

use argon2::password_hash::{rand_core::OsRng, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// OWASP's recommended argon2id settings: 19 MiB, 2 passes, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;
/// Bytes of hash output, argon2's default.
const OUTPUT_LEN: usize = 32;

/// Argon2's working memory (19 MiB), allocated once per permit and reused. Allocating it per
/// login left it with whichever blocking thread ran the hash: glibc keeps such freed memory
/// in per-thread arenas, so 300 logins left a server at about 594 MB resident.
type Memory = Vec<Block>;

#[derive(Clone)]
pub struct PasswordHasher {
    /// One permit per core: a login flood waits here instead of allocating 19 MiB per
    /// request on the blocking pool.
    permits: Arc<Semaphore>,
    /// At most one buffer per permit, handed from hash to hash.
    memory: Arc<Mutex<Vec<Memory>>>,
    /// Verified against when the username is unknown, so the answer takes as long as for a
    /// wrong password and does not reveal which names exist.
    dummy_hash: Arc<str>,
}

fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(OUTPUT_LEN))
        .expect("the OWASP argon2 parameters are valid")
}

fn new_memory(params: &Params) -> Memory {
    vec![Block::default(); params.block_count()]
}

/// A PHC string (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`) for `password`.
fn hash_now(password: &str, memory: &mut Memory) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let params = params();
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let out = Output::new(&out).map_err(|e| anyhow::anyhow!("hash output: {e}"))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        salt.as_str(),
        out
    ))
}

/// Checks `password` against a stored PHC string, in constant time.
fn verify_now(password: &str, stored: &str, memory: &mut Memory) -> anyhow::Result<bool> {
    let parsed =
        PasswordHash::new(stored).map_err(|e| anyhow::anyhow!("stored hash is malformed: {e}"))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        anyhow::bail!("stored hash has no salt or output");
    };
    let algorithm = Algorithm::try_from(parsed.algorithm)
        .map_err(|e| anyhow::anyhow!("stored hash algorithm: {e}"))?;
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .map_err(|e| anyhow::anyhow!("stored hash version: {e}"))?;
    let mut stored_params =
        Params::try_from(&parsed).map_err(|e| anyhow::anyhow!("stored hash params: {e}"))?;
    if stored_params.output_len().is_none() {
        stored_params = Params::new(
            stored_params.m_cost(),
            stored_params.t_cost(),
            stored_params.p_cost(),
            Some(expected.len()),
        )
        .map_err(|e| anyhow::anyhow!("stored hash params: {e}"))?;
    }
    // A hash made with other settings (older, larger) gets memory of its own.
    if memory.len() < stored_params.block_count() {
        *memory = new_memory(&stored_params);
    }
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_buf)
        .map_err(|e| anyhow::anyhow!("stored salt: {e}"))?;
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, stored_params)
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, &mut *memory)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let computed = Output::new(&out).map_err(|e| anyhow::anyhow!("hash output: {e}"))?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let mut memory = new_memory(&params());
        let dummy = hash_now("not a password anybody has", &mut memory)?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            memory: Arc::new(Mutex::new(vec![memory])),
            dummy_hash: dummy.into(),
        })
    }

    /// A human-readable summary for reports.
    pub fn describe() -> String {
        format!("argon2id m={MEMORY_KIB}KiB t={ITERATIONS} p={PARALLELISM}")
    }

    #[tracing::instrument(name = "hash password", skip_all)]
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.blocking(move |memory| hash_now(&password, memory))
            .await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no user.
    #[tracing::instrument(name = "verify password", skip_all)]
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = self
            .blocking(move |memory| verify_now(&password, &hash, memory))
            .await?;
        Ok(known && matched)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        // Never more buffers than permits: one is free for every permit held.
        let taken = self.memory.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut memory = taken.unwrap_or_else(|| new_memory(&params()));
        let span = tracing::Span::current();
        let (result, memory) = tokio::task::spawn_blocking(move || {
            let r = span.in_scope(|| f(&mut memory));
            (r, memory)
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(memory);
        result.map_err(ApiError::Internal)
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
    async fn hashes_made_by_the_allocating_api_still_verify() {
        use argon2::PasswordHasher as _;
        let salt = SaltString::generate(&mut OsRng);
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"pw-123456", &salt)
            .unwrap()
            .to_string();
        let h = PasswordHasher::new(1).unwrap();
        assert!(h
            .verify("pw-123456".into(), Some(stored.clone()))
            .await
            .unwrap());
        assert!(!h.verify("pw-1234567".into(), Some(stored)).await.unwrap());
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
