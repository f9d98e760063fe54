//! The contract suite: `TestApp` and a private Redis (or Redis Cluster), and the tests of `API.md` written
//! once. Each server's `tests/api/main.rs` runs them with `conformance::suite!(Server)`.

pub mod app;
pub mod process;
pub mod redis_process;
pub mod suite;
pub mod suite_v2;
pub mod suite_v3;

pub use app::{
    random_username, session_cookie, Credential, Kind, OnCluster, Options, Reply, Server, Store,
    TestApp, PASSWORD,
};
pub use redis_process::RedisProcess;
