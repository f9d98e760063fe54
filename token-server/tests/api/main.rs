//! The token server's one test binary: the shared contract suite, then what only
//! tokens have.

mod helpers;
mod refresh;
mod startup;
mod tokens;

mod contract {
    conformance::suite!(crate::helpers::TokenServer);
}

/// The same contract with the store on a 3-primary Redis Cluster.
mod contract_on_cluster {
    conformance::suite!(conformance::OnCluster<crate::helpers::TokenServer>);
}
