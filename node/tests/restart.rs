//! A server process (a remote, then the gateway) is killed (SIGKILL) between preprocessing and
//! the online phase and restarted with the same data directory: its key share, its session
//! record and its bundles come back from sled, it resumes the session, and the inferences still
//! equal the reference. The bundle it had armed for the next inference (taken from the store
//! ahead of it, `actors/src/session/armed.rs`) is lost, never reused: that inference is aborted
//! and retried on another bundle.

mod common;

use std::sync::Arc;

use common::Deployment;
use seco_actors::node::{Node, UserSetup};
use seco_actors::topology::Topology;
use seco_protocols::model::{Model, TestSet};
use seco_protocols::plan::UserPart;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_remote_resumes_from_sled() {
    restart_between_phases("remote-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_resumes_from_sled() {
    restart_between_phases("gateway").await;
}

/// Prepares two bundles, kills `victim` (SIGKILL), restarts it, runs two inferences: the first
/// bundle was armed at the victim, so gone with the crash; its inference is aborted and retried
/// by the user's handle on the stored one, the second on a fresh one.
async fn restart_between_phases(victim: &str) {
    let d = Deployment::new("digits-mlp", 3);
    let mut nodes: Vec<_> = d.servers.iter().map(|s| d.start(s)).collect();

    // The user, in this process, over libp2p.
    let topology = Arc::new(Topology::load(&d.topology).unwrap());
    let part: UserPart =
        serde_json::from_str(&std::fs::read_to_string(d.path("parts/user.json")).unwrap()).unwrap();
    let key = seco_runtime::identity::load(&d.path("user.key")).unwrap();
    let network = Node::network(&topology, "user", key, false).unwrap();
    let user = Node::start_user(UserSetup {
        name: "user".into(),
        topology,
        part,
        store: Arc::new(seco_runtime::store::MemStore::new()),
        network,
    })
    .await
    .unwrap();
    let session = user.open_session().await.unwrap();
    session.preprocess().await.unwrap();
    session.preprocess().await.unwrap();

    // Crash the victim and start it again on the same data directory.
    let i = d.servers.iter().position(|s| s == victim).unwrap();
    nodes.remove(i).kill();
    let restarted = d.start(victim);
    assert!(
        restarted
            .ready
            .contains("collective key present, 1 session records, 1 bundles"),
        "{}",
        restarted.ready
    );

    let dir = common::repo().join("models/digits-mlp");
    let model = Model::load(&dir).unwrap();
    let tests = TestSet::load(&dir).unwrap();
    let q = model.quantize().unwrap();
    for i in 0..2 {
        let x = model.encode_input(tests.input(i).unwrap()).unwrap();
        let want: Vec<i64> = q
            .infer(&x)
            .unwrap()
            .iter()
            .map(|&v| model.fixed_point.to_signed(v))
            .collect();
        let (_, got) = session.infer(&x).await.unwrap();
        assert_eq!(got, want, "input {i}");
    }
    assert!(
        restarted
            .log_text()
            .contains("session resumed from the store"),
        "{}",
        restarted.log_text()
    );
    user.shutdown().await.unwrap();
    drop(nodes);
}
