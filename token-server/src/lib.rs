//! The stateless server: a short-lived signed access token that needs no lookup, and a
//! long-lived refresh token whose validity lives in Redis.

pub mod auth;
pub mod denylist;
pub mod keys;
pub mod refresh_tokens;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod tokens;
