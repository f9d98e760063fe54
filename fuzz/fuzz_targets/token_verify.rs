//! Any bytes as an access or refresh token: verification answers, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

thread_local! {
    static CODEC: token_server::tokens::TokenCodec = common::codec();
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    CODEC.with(|c| {
        let _ = c.verify_access(token);
        let _ = c.verify_refresh(token);
    });
});
