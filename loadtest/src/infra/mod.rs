//! What the measurement stands on: processes started and stopped by PID (Redis, replicas,
//! nginx), CPU budgets, and readers of what those processes expose (`/proc`, Redis `INFO`,
//! Prometheus text). Nothing here knows about scenarios, plans or reports.

pub mod cpu_budget;
pub mod delay_proxy;
pub mod engine;
pub mod env_info;
pub mod procfs;
pub mod prometheus_text;
pub mod redis_info;
pub mod topology;
