//! Signing and verification keys, their `kid`, and the public JWKS for EdDSA.

use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::Sha256;

use crate::settings::{KeySource, SigningAlg};

pub struct Keys {
    pub alg: Algorithm,
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// Published at `/.well-known/jwks.json`; `None` for HS256, whose key is secret.
    pub jwks: Option<JwkSet>,
    /// HS256: HMAC-SHA256 already keyed, cloned for each verification, so the key's inner
    /// and outer pads are hashed once at start rather than on every request.
    pub hs256: Option<Hmac<Sha256>>,
    /// The secret the device credentials' key is derived from (`auth_core::device`): the
    /// HS256 secret, or the Ed25519 private key. Never published, shared by the replicas.
    pub device_secret: Vec<u8>,
}

/// The fixed DER prefix of a PKCS#8 v1 Ed25519 private key (RFC 8410), before the
/// 32-byte seed: what `openssl genpkey -algorithm ed25519` writes.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A fresh Ed25519 private key as PKCS#8 PEM.
pub fn generate_ed25519_pem() -> anyhow::Result<String> {
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&rand::random::<[u8; 32]>());
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    Ok(format!(
        "-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"
    ))
}

fn short_thumbprint(jwk: &Jwk) -> anyhow::Result<String> {
    let t = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| anyhow::anyhow!("cannot fingerprint the key: {e}"))?;
    Ok(t.chars().take(16).collect())
}

impl Keys {
    pub fn load(alg: SigningAlg, source: &KeySource) -> anyhow::Result<Self> {
        match (alg, source) {
            (SigningAlg::Hs256, KeySource::Secret(secret)) => {
                let encoding = EncodingKey::from_secret(secret);
                let jwk = Jwk::from_encoding_key(&encoding, Algorithm::HS256)
                    .map_err(|e| anyhow::anyhow!("JWT_SECRET: {e}"))?;
                Ok(Self {
                    alg: Algorithm::HS256,
                    kid: format!("hs256-{}", short_thumbprint(&jwk)?),
                    decoding: DecodingKey::from_secret(secret),
                    encoding,
                    jwks: None,
                    hs256: Some(
                        Hmac::new_from_slice(secret)
                            .map_err(|e| anyhow::anyhow!("JWT_SECRET: {e}"))?,
                    ),
                    device_secret: secret.clone(),
                })
            }
            (SigningAlg::EdDsa, KeySource::PemFile(path)) => {
                let pem = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("JWT_PRIVATE_KEY_FILE {}: cannot read: {e}", path.display())
                })?;
                Self::ed25519(&pem)
                    .map_err(|e| anyhow::anyhow!("JWT_PRIVATE_KEY_FILE {}: {e}", path.display()))
            }
            (SigningAlg::EdDsa, KeySource::Generated) => {
                Self::ed25519(generate_ed25519_pem()?.as_bytes())
            }
            (alg, _) => anyhow::bail!("JWT_ALG={alg:?} does not match the key that was given"),
        }
    }

    fn ed25519(pem: &[u8]) -> anyhow::Result<Self> {
        let encoding = EncodingKey::from_ed_pem(pem)
            .map_err(|e| anyhow::anyhow!("not a PKCS#8 PEM Ed25519 private key: {e}"))?;
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 key: {e}"))?;
        let kid = format!("ed25519-{}", short_thumbprint(&public)?);
        public.common.key_id = Some(kid.clone());
        let decoding = DecodingKey::from_jwk(&public)
            .map_err(|e| anyhow::anyhow!("cannot derive the public key: {e}"))?;
        Ok(Self {
            alg: Algorithm::EdDSA,
            kid,
            encoding,
            decoding,
            jwks: Some(JwkSet { keys: vec![public] }),
            hs256: None,
            device_secret: pem.to_vec(),
        })
    }
}
