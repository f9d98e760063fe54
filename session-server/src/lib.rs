//! The stateful server: an opaque session id in an HttpOnly cookie, the session itself
//! in Redis (or, for the experiments, in the replica's memory).

pub mod auth;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod store;
