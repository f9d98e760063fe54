//! Any bytes as the JSON body of each route, and as a login scope, a role list and an
//! `X-Forwarded-For` chain: parsing and validation answer, never panic.
#![no_main]

use auth_core::client::TrustedProxies;
use auth_core::contract::{Credentials, LoginRequest, RefreshRequest, RolesRequest, Scopes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = serde_json::from_slice::<Credentials>(data) {
        let _ = c.validate_for_signup();
        let _ = c.validate_for_login();
    }
    if let Ok(l) = serde_json::from_slice::<LoginRequest>(data) {
        let _ = l.credentials.validate_for_login();
        let roles = vec!["user".to_string(), "admin".to_string()];
        let _ = Scopes::grant(l.scope.as_deref(), &roles);
    }
    let _ = serde_json::from_slice::<RefreshRequest>(data);
    if let Ok(r) = serde_json::from_slice::<RolesRequest>(data) {
        let _ = r.validated();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Scopes::parse(text);
        let proxies =
            TrustedProxies::parse(&["127.0.0.0/8".into(), "::1".into()]).expect("valid ranges");
        let _ = proxies.client("127.0.0.1".parse().expect("an address"), &[text]);
        let _ = TrustedProxies::parse(&[text.to_string()]);
        let _ = auth_core::config::parse_origin(text);
    }
});
