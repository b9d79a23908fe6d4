//! Issue 14, item 2: a collective key serves a bounded number of bundles (docs/mhe.md, "Lifetime
//! of a key"). With a lifetime of 2 bundles per owner, a third bundle aborts the session with
//! the reason; the user's handle opens a new session, whose key generation makes a new key
//! (the spent one is not offered any more), and the results on both sides of the rotation
//! equal the fixed-point reference. The counts are durable (`seco.key_uses`).

use std::path::PathBuf;
use std::time::Duration;

use seco_actors::config::{Limits, Timeouts};
use seco_actors::dev::{local_topology, Cluster, ClusterOptions};
use seco_protocols::model::{Model, TestSet};

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_key_is_rotated_and_results_stay_exact() {
    let _ = seco_runtime::telemetry::init(Default::default(), Some("warn"));
    let t = Timeouts {
        open: Duration::from_secs(60),
        prep: Some(Duration::from_secs(60)),
        inference: Some(Duration::from_secs(20)),
        ack: Duration::from_secs(5),
        retry: Duration::from_secs(5),
        ..Timeouts::default()
    };
    let topology = local_topology(3, t).unwrap();
    let model = Model::load(model_dir("digits-mlp")).unwrap();
    let tests = TestSet::load(model_dir("digits-mlp")).unwrap();
    let opts = ClusterOptions {
        limits: Limits {
            key_lifetime: Some(2),
            ..Limits::default()
        },
        ..ClusterOptions::default()
    };
    let c = Cluster::start(topology, model, opts).await.unwrap();
    let gateway = c.node("gateway").unwrap();
    let user = c.user().unwrap();
    let session = user.open_session().await.unwrap();
    let first_key = gateway
        .store()
        .keys()
        .unwrap()
        .expect("a key after the open");
    // Two bundles under the first key: exact.
    for i in 0..2 {
        session.preprocess().await.unwrap();
        let (x, want) = c.reference(tests.input(i).unwrap()).unwrap();
        assert_eq!(session.infer(&x).await.unwrap().1, want, "input {i}");
    }
    assert_eq!(gateway.store().key_ring().unwrap().len(), 1);
    let first_id = session.id();
    // The third bundle would exceed the lifetime: the session aborts, the handle opens a new
    // session, which generates a new key, and the inference is exact under it.
    session.preprocess().await.unwrap();
    let (x, want) = c.reference(tests.input(2).unwrap()).unwrap();
    assert_eq!(session.infer(&x).await.unwrap().1, want);
    assert_ne!(session.id(), first_id, "the session was replaced");
    let ring = gateway.store().key_ring().unwrap();
    assert_eq!(ring.len(), 2, "a new key beside the spent one");
    assert_ne!(ring[0].as_slice(), first_key.as_slice());
    // Every server holds the new key, and the owners' counts of the first key are durable.
    let mut counted = 0;
    for name in ["gateway", "remote-1", "remote-2"] {
        let store = c.node(name).unwrap().store();
        assert_eq!(store.key_ring().unwrap().len(), 2, "{name}");
        let first = seco_protocols::seco::KeyMaterial::from_bytes(
            &store.key_ring().unwrap()[1],
            seco_protocols::mhe::ParamId::Bfv4096T32V1,
            match name {
                "gateway" => 0,
                "remote-1" => 1,
                _ => 2,
            },
        )
        .unwrap();
        let uses = store
            .key_uses(&first.key_id)
            .unwrap()
            .load(std::sync::atomic::Ordering::SeqCst);
        assert!(uses <= 2, "{name}: {uses}");
        counted += uses;
    }
    assert!(counted >= 2, "the owners counted the first key's bundles");
    // More inferences under the new key.
    session.preprocess().await.unwrap();
    let (x, want) = c.reference(tests.input(3).unwrap()).unwrap();
    assert_eq!(session.infer(&x).await.unwrap().1, want);
    session.close().await.unwrap();
    c.shutdown().await.unwrap();
}
