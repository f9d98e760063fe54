//! Any bytes as the claims of a correctly signed token with this server's header: the claim
//! checks (types, iss/aud, exp/nbf/iat, lifetime) answer, never panic. Random tokens almost
//! never get past the signature; this reaches the code after it.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

#[path = "common.rs"]
mod common;

thread_local! {
    static CODEC: token_server::tokens::TokenCodec = common::codec();
}

fuzz_target!(|data: &[u8]| {
    CODEC.with(|c| {
        // This server's own access-token header, taken from a token it issued.
        let user = auth_core::contract::UserView {
            id: "u".into(),
            username: "n".into(),
            roles: vec!["user".into()],
        };
        let (issued, _) = c
            .issue_access(&user, auth_core::contract::Scopes::READ, "f")
            .expect("signs");
        let header = issued.split('.').next().unwrap_or_default();
        let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(data));
        let mut mac = Hmac::<Sha256>::new_from_slice(common::SECRET).expect("any key length");
        mac.update(message.as_bytes());
        let token = format!(
            "{message}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        let _ = c.verify_access(&token);
    });
});
