//! The session server's one test binary: the shared contract suite, then what only
//! sessions have.

mod helpers;
mod sessions;
mod startup;

mod contract {
    conformance::suite!(crate::helpers::SessionServer);
}
