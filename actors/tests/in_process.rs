//! Every node of a deployment in one process (each with its own libp2p swarm on 127.0.0.1,
//! tokio tasks of one runtime): secure inference equals the fixed-point reference; a crashed
//! session actor resumes from the store; a lost peer ends in an error, not a hang.

use std::path::PathBuf;
use std::time::Duration;

use seco_actors::config::Timeouts;
use seco_actors::dev::{local_topology, Cluster, ClusterOptions, StoreKind};
use seco_actors::ActorError;
use seco_protocols::model::{Model, TestSet};

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

fn quick() -> Timeouts {
    Timeouts {
        open: Duration::from_secs(60),
        prep: Some(Duration::from_secs(60)),
        inference: Some(Duration::from_secs(8)),
        ack: Duration::from_secs(3),
        retry: Duration::from_secs(2),
        ..Timeouts::default()
    }
}

async fn cluster(servers: usize, opts: ClusterOptions) -> (Cluster, TestSet) {
    let _ = seco_runtime::telemetry::init(Default::default(), Some("warn"));
    let topology = local_topology(servers, quick()).unwrap();
    let model = Model::load(model_dir("digits-mlp")).unwrap();
    let tests = TestSet::load(model_dir("digits-mlp")).unwrap();
    (Cluster::start(topology, model, opts).await.unwrap(), tests)
}

/// Waits (bounded) until `cond` holds.
async fn eventually(cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_match_the_reference_and_reuse_the_key() {
    let (c, tests) = cluster(3, ClusterOptions::default()).await;
    let user = c.user().unwrap();
    let session = user.open_session().await.unwrap();
    for i in 0..2 {
        session.preprocess().await.unwrap();
        let (x, want) = c.reference(tests.input(i).unwrap()).unwrap();
        let (_, got) = session.infer(&x).await.unwrap();
        assert_eq!(got, want, "input {i}");
    }
    // A second session reuses the stored collective key (no second key generation).
    let keygen_bytes = c.node("gateway").unwrap().stats().phases["keygen"].bytes_sent;
    let second = user.open_session().await.unwrap();
    second.preprocess().await.unwrap();
    let (x, want) = c.reference(tests.input(2).unwrap()).unwrap();
    assert_eq!(second.infer(&x).await.unwrap().1, want);
    // The gateway reports an inference after sending its result: wait for the counter.
    let gateway = c.node("gateway").unwrap();
    eventually(|| gateway.stats().inferences == 3).await;
    let g = gateway.stats();
    assert_eq!(g.phases["keygen"].bytes_sent, keygen_bytes);
    assert_eq!(g.sessions_ready, 2);
    assert!(g.phases["prep"].bytes_sent > 0 && g.phases["online"].bytes_received > 0);
    // A bundle is used once: no bundle left, so another inference is refused at the user.
    assert!(matches!(
        second.infer(&x).await,
        Err(ActorError::Protocol(_))
    ));
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_session_actor_resumes_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ClusterOptions {
        store: StoreKind::Sled(dir.path().to_path_buf()),
        ..ClusterOptions::default()
    };
    let (c, tests) = cluster(3, opts).await;
    let session = c.user().unwrap().open_session().await.unwrap();
    session.preprocess().await.unwrap();
    session.preprocess().await.unwrap();
    let remote = c.node("remote-1").unwrap();
    // The first bundle is armed (out of the store, in the session actor), the second stored.
    eventually(|| remote.store().bundles_of(session.id()).unwrap() == 1).await;
    assert!(remote.store().armed_bytes() > 0);
    remote.fail_session(session.id());
    // The supervisor restarts it from sled (record + key + the stored bundle); the armed
    // bundle went with the crashed actor, never to be used.
    eventually(|| remote.stats().restarts == 1).await;
    assert_eq!(remote.store().armed_bytes(), 0);
    // The first inference's bundle is gone at remote-1: aborted, retried on the stored one.
    let (x, want) = c.reference(tests.input(0).unwrap()).unwrap();
    assert_eq!(session.infer(&x).await.unwrap().1, want);
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_remote_ends_in_an_error_not_a_hang() {
    let opts = ClusterOptions {
        faulty: vec!["remote-2".into()],
        fault_seed: 7,
        ..ClusterOptions::default()
    };
    let (c, tests) = cluster(3, opts).await;
    let mut session = c.user().unwrap().open_session().await.unwrap();
    // The first failure is the point here (peer_loss.rs tests the retries).
    session.set_retries(0);
    session.preprocess().await.unwrap();
    // remote-2 crashes between preprocessing and the online phase.
    c.faults["remote-2"].partition(
        c.topology
            .nodes
            .iter()
            .map(|n| n.peer_id)
            .collect::<Vec<_>>(),
    );
    let (x, _) = c.reference(tests.input(0).unwrap()).unwrap();
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(60), session.infer(&x))
        .await
        .expect("the inference hung");
    match r {
        Err(ActorError::Aborted { reason, .. }) => {
            // The user reads the lost peer's role, not its name.
            assert!(
                reason.contains("lost a remote server") || reason.contains("timeout"),
                "{reason}"
            );
            assert!(
                !reason.contains("remote-2") && !reason.contains("12D3KooW"),
                "names the server: {reason}"
            );
        }
        Err(ActorError::Timeout { .. }) => {}
        other => panic!("expected an abort or a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    let g = c.node("gateway").unwrap().stats();
    assert!(g.aborts >= 1);
    c.shutdown().await.unwrap();
}
