//! The session server's one test binary: the shared contract suite, then what only
//! sessions have.

mod helpers;
mod sessions;
mod startup;

mod contract {
    conformance::suite!(crate::helpers::SessionServer);
}

/// The same contract with the store on a 3-primary Redis Cluster.
mod contract_on_cluster {
    conformance::suite!(conformance::OnCluster<crate::helpers::SessionServer>);
}
