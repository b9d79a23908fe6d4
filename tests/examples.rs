//! Runs the core of every example (`examples/common/mod.rs`) on the fast model: each topology
//! file deploys, and every secure result equals the fixed-point reference.

#[path = "../examples/common/mod.rs"]
mod common;

async fn check(file: &str, servers: usize) {
    // Warnings only, unless `SECO_LOG` says more (e.g. when chasing a failure).
    let filter = std::env::var("SECO_LOG").unwrap_or_else(|_| "warn".into());
    let _ = seco::runtime::telemetry::init(Default::default(), Some(&filter));
    let topology = common::repo().join("examples/topologies").join(file);
    let report = common::run(&topology, "digits-mlp", 1).await.unwrap();
    assert_eq!(report.servers.len(), servers);
    assert_eq!(report.equal, [true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_gateway_and_two_remotes() {
    check("paper.toml", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_and_four_remotes() {
    check("five-servers.toml", 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_level_hierarchy_found_through_kademlia() {
    check("hierarchy.toml", 4).await;
}
