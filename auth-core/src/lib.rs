//! What the session server and the token server have in common: the contract's types
//! and errors, the Redis-backed user directory, password hashing, throttling, settings,
//! telemetry and metrics. The two servers differ only where the auth model differs.

pub mod client;
pub mod config;
pub mod contract;
pub mod device;
pub mod error;
pub mod hash_slot;
pub mod http;
pub mod layer;
pub mod login_index;
pub mod metrics;
pub mod password;
pub mod rate_limit;
pub mod redis_conn;
pub mod state;
pub mod telemetry;
pub mod users;

pub use error::ApiError;
pub use http::{Json, MAX_BODY_BYTES};
pub use state::Core;
