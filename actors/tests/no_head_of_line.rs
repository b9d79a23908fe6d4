//! Issue 13, item 4: no head-of-line blocking between sessions. Every (peer, session) pair has
//! its own ordered queue, so a session whose messages to a peer are being retried does not
//! delay another session's messages to that peer.

use std::path::PathBuf;
use std::time::Duration;

use seco_actors::config::Timeouts;
use seco_actors::dev::{local_topology, Cluster, ClusterOptions};
use seco_protocols::model::{Model, TestSet};
use seco_protocols::seco::msg::VERSION;
use seco_protocols::seco::{Body, BundleId, Party, SecoMsg, SessionId};
use tokio::sync::oneshot::error::TryRecvError;

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_retrying_to_a_peer_does_not_delay_another_session() {
    let _ = seco_runtime::telemetry::init(Default::default(), Some("warn"));
    // Sends are retried for 90 s: under one sender per peer, the stuck messages below would
    // hold the real session's messages for 3 x 90 s, far beyond its 60 s open deadline.
    let t = Timeouts {
        open: Duration::from_secs(60),
        prep: Some(Duration::from_secs(60)),
        inference: Some(Duration::from_secs(30)),
        ack: Duration::from_secs(5),
        retry: Duration::from_secs(90),
        ..Timeouts::default()
    };
    let topology = local_topology(3, t).unwrap();
    let model = Model::load(model_dir("digits-mlp")).unwrap();
    let tests = TestSet::load(model_dir("digits-mlp")).unwrap();
    let c = Cluster::start(topology, model, ClusterOptions::default())
        .await
        .unwrap();
    let gateway = c.node("gateway").unwrap();
    // Messages of a session the remotes do not know: each is refused ("unknown session",
    // which senders retry: a key-generation message may overtake the gateway's Open).
    let stale = SessionId([7; 16]);
    let mut stuck = Vec::new();
    for remote in ["remote-1", "remote-2"] {
        let peer = c.node(remote).unwrap().peer_id();
        for seq in 0..3u8 {
            let msg = SecoMsg {
                version: VERSION,
                session: stale,
                from: Party::Server(0),
                seq: u64::from(seq),
                body: Body::PrepRequest {
                    bundle: BundleId([seq; 16]),
                    input_mask: Vec::new(),
                },
            };
            stuck.push(gateway.send_raw(peer, msg));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another session (its key generation, OT setup, preprocessing and inference all send
    // gateway -> remotes) completes while those are still being retried.
    let session = c.user().unwrap().open_session().await.unwrap();
    session.preprocess().await.unwrap();
    let (x, want) = c.reference(tests.input(0).unwrap()).unwrap();
    assert_eq!(session.infer(&x).await.unwrap().1, want);
    for (i, rx) in stuck.iter_mut().enumerate() {
        assert!(
            matches!(rx.try_recv(), Err(TryRecvError::Empty)),
            "stuck message {i} is not being retried any more: the test proves nothing"
        );
    }
    session.close().await.unwrap();
    c.shutdown().await.unwrap();
}
