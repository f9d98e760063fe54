//! The token server's one test binary: the shared contract suite, then what only
//! tokens have.

mod helpers;
mod refresh;
mod startup;
mod tokens;

mod contract {
    conformance::suite!(crate::helpers::TokenServer);
}
