//! Issue 14, item 5: bundles are bound to the weights. A session record carries the digest of
//! the server's part (`ServerPart::digest`); a server restarted with another part (new weights:
//! `seco model split` again) drops the stored sessions and their bundles instead of returning
//! logits of a mix of the old and the new model. Here remote-1 is stopped while the user's
//! session holds prepared bundles, its stage's weights change (negated: the same noise budget),
//! it starts again with the new part, and the user's next inference gives exactly the new
//! model's fixed-point reference: the gateway's `OnlineStart` is refused at remote-1 ("the
//! session has ended there"), the session aborts as a whole, and the user's handle runs the
//! inference in a new session, prepared with the new weights.

use std::path::PathBuf;
use std::time::Duration;

use seco_actors::config::Timeouts;
use seco_actors::dev::{local_topology, Cluster, ClusterOptions};
use seco_protocols::model::{LinearOp, Model, TestSet};

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_with_new_weights_drops_the_old_bundles() {
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
    let mut c = Cluster::start(topology, model, ClusterOptions::default())
        .await
        .unwrap();
    let session = c.user().unwrap().open_session().await.unwrap();
    let (x, old) = c.reference(tests.input(0).unwrap()).unwrap();
    session.preprocess().await.unwrap();
    assert_eq!(session.infer(&x).await.unwrap().1, old, "before the update");
    // Two bundles prepared with the old weights, then the update.
    session.preprocess().await.unwrap();
    session.preprocess().await.unwrap();
    let first = session.id();

    let remote = "remote-1";
    let index = c.plan.server_index(remote).unwrap();
    let stage = c
        .plan
        .owners
        .iter()
        .position(|&o| o == index)
        .expect("remote-1 owns a stage");
    c.stop_node(remote).await.unwrap();
    match &mut c.quant.stages[stage].linear {
        LinearOp::Dense(d) => d.weight.iter_mut().for_each(|w| *w = -*w),
        LinearOp::Conv2d(cv) => cv.weight.iter_mut().for_each(|w| *w = -*w),
        LinearOp::AvgPool2d(p) => p.coeff = -p.coeff,
    }
    c.start_node(remote).await.unwrap();

    let (x, new) = c.reference(tests.input(0).unwrap()).unwrap();
    assert_ne!(new, old, "the update changes this input's logits");
    let got = session.infer(&x).await.unwrap().1;
    assert_eq!(got, new, "after the update: the new model's reference");
    assert_ne!(session.id(), first, "the old session was replaced");
    // The old session is gone from remote-1's store, bundles included.
    let store = c.node(remote).unwrap().store();
    assert!(
        store.record(first).unwrap().is_none(),
        "the old session's record is dropped"
    );
    assert_eq!(store.bundles_of(first).unwrap(), 0, "and its bundles");
    // And the deployment goes on with the new weights.
    let (x, want) = c.reference(tests.input(1).unwrap()).unwrap();
    session.preprocess().await.unwrap();
    assert_eq!(session.infer(&x).await.unwrap().1, want);
    session.close().await.unwrap();
    c.shutdown().await.unwrap();
}
