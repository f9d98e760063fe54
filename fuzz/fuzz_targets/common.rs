//! The codec the token targets verify with: HS256 with a fixed fuzzing-only secret.

use std::time::Duration;

use token_server::keys::Keys;
use token_server::settings::{KeySource, SigningAlg};
use token_server::tokens::TokenCodec;

pub const SECRET: &[u8] = b"fuzz-only-secret-fuzz-only-secret!";

pub fn codec() -> TokenCodec {
    let keys = Keys::load(SigningAlg::Hs256, &KeySource::Secret(SECRET.to_vec()))
        .expect("an HS256 key loads");
    let d = Duration::from_secs(900);
    TokenCodec::new(keys, d, d * 96, d * 96 * 30)
}
