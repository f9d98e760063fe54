//! The device credential (OWASP's "device cookie"): proof that this client logged in as this
//! user before. The failed-login limits per client and per username (`rate_limit`) do not
//! hold back a login that carries one, so a stranger's wrong guesses, from however many
//! addresses, cannot lock the owner out of a device they used before.
//!
//! It is `d1.<expiry, unix s>.<HMAC-SHA256 of the username and the expiry, base64url>`: bound
//! to the user (it proves nothing for another name) and signed with a key derived from the
//! server's own secret, so every replica that shares the secret accepts it. It does not carry
//! the username (the client already knows it; a stolen cookie should not say whose it is)
//! and is no credential for anything but the login limits: the password is still checked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "d1";

/// The key that signs device credentials, and how long they live (`DEVICE_TTL`).
#[derive(Clone)]
pub struct DeviceKey {
    mac: HmacSha256,
    ttl: Duration,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey(<redacted>, ttl {:?})", self.ttl)
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DeviceKey {
    /// A key derived from `secret` (the server's cookie or token key): a key of its own, so a
    /// device credential can never be mistaken for anything the secret signs directly.
    pub fn derive(secret: &[u8], ttl: Duration) -> Self {
        let mut derive = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any size");
        derive.update(b"session-vs-token device credential v1");
        let key = derive.finalize().into_bytes();
        Self {
            mac: HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any size"),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn tag(&self, username: &str, expires_s: u64) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(VERSION.as_bytes());
        mac.update(&(username.len() as u64).to_be_bytes());
        mac.update(username.as_bytes());
        mac.update(&expires_s.to_be_bytes());
        mac
    }

    /// A credential for `username`, valid for `DEVICE_TTL` from now.
    pub fn issue(&self, username: &str) -> String {
        let expires_s = now_s() + self.ttl.as_secs();
        let tag = self.tag(username, expires_s).finalize().into_bytes();
        format!("{VERSION}.{expires_s}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Whether `credential` is a live one of `username` (compared in constant time).
    pub fn verify(&self, credential: &str, username: &str) -> bool {
        let mut parts = credential.split('.');
        let (Some(VERSION), Some(expires), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(expires_s), Ok(tag)) = (expires.parse::<u64>(), URL_SAFE_NO_PAD.decode(tag)) else {
            return false;
        };
        expires_s > now_s() && self.tag(username, expires_s).verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DeviceKey {
        DeviceKey::derive(b"a secret of this test", Duration::from_secs(60))
    }

    #[test]
    fn a_credential_proves_its_user_only() {
        let k = key();
        let c = k.issue("alice");
        assert!(k.verify(&c, "alice"));
        assert!(!k.verify(&c, "bob"));
        assert!(!k.verify(&c, "alic"));
        assert!(!c.contains("alice"), "{c}");
    }

    #[test]
    fn another_key_an_altered_or_expired_credential_prove_nothing() {
        let k = key();
        let c = k.issue("alice");
        let other = DeviceKey::derive(b"another secret", Duration::from_secs(60));
        assert!(!other.verify(&c, "alice"));
        let parts: Vec<&str> = c.split('.').collect();
        let later = format!("d1.{}.{}", parts[1].parse::<u64>().unwrap() + 1, parts[2]);
        assert!(!k.verify(&later, "alice"), "the expiry is signed");
        let past = now_s() - 1;
        let expired = format!(
            "d1.{past}.{}",
            URL_SAFE_NO_PAD.encode(k.tag("alice", past).finalize().into_bytes())
        );
        assert!(!k.verify(&expired, "alice"));
        for junk in ["", "d1", "d1..", "d2.1.x", &format!("{c}.x"), "d1.x.y"] {
            assert!(!k.verify(junk, "alice"), "{junk}");
        }
    }
}
