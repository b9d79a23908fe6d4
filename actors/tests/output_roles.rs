//! Through the actors, each node on its own libp2p swarm on 127.0.0.1 (issue 14, items 4 and 9):
//! a label-mode session gives the reference's class and a logits-mode session its logits;
//! an abort that reaches the user names no server; a user may talk only to the gateway (the
//! remotes' allowlists leave users out, and a remote that lets a user's connection in anyway
//! refuses its messages with `REJECT_ROLE`).

use std::path::PathBuf;
use std::time::Duration;

use seco_actors::config::Timeouts;
use seco_actors::dev::{example_keypair, local_topology, Cluster, ClusterOptions};
use seco_actors::network::REJECT_ROLE;
use seco_actors::topology::{NodeSpec, Role};
use seco_actors::wire;
use seco_actors::ActorError;
use seco_protocols::model::{argmax, Model, TestSet};
use seco_protocols::seco::io::Persist;
use seco_protocols::seco::msg::VERSION;
use seco_protocols::seco::{Body, OutputMode, Party, Prediction, SecoMsg, SessionId};
use seco_runtime::net::{self, NetConfig, NetError, Reject};

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

fn quick() -> Timeouts {
    Timeouts {
        open: Duration::from_secs(60),
        prep: Some(Duration::from_secs(60)),
        inference: Some(Duration::from_secs(20)),
        ack: Duration::from_secs(3),
        retry: Duration::from_secs(2),
        ..Timeouts::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_logits_sessions_match_the_reference_and_aborts_name_no_server() {
    let _ = seco_runtime::telemetry::init(Default::default(), Some("warn"));
    let topology = local_topology(3, quick()).unwrap();
    let model = Model::load(model_dir("digits-mlp")).unwrap();
    let tests = TestSet::load(model_dir("digits-mlp")).unwrap();
    let c = Cluster::start(topology, model, ClusterOptions::default())
        .await
        .unwrap();
    let user = c.user().unwrap();

    let label = user.open_session_with(OutputMode::Label).await.unwrap();
    let mut logits = user.open_session().await.unwrap();
    // The abort below is the point (the handle would retry it with a fresh bundle).
    logits.set_retries(0);
    for i in 0..2 {
        let (x, want) = c.reference(tests.input(i).unwrap()).unwrap();
        label.preprocess().await.unwrap();
        let (_, got) = label.predict(&x).await.unwrap();
        assert_eq!(got, Prediction::Label(argmax(&want) as u32), "input {i}");
        logits.preprocess().await.unwrap();
        assert_eq!(logits.infer(&x).await.unwrap().1, want, "input {i}");
    }
    // A label-mode session has no logits to give.
    label.preprocess().await.unwrap();
    let (x, _) = c.reference(tests.input(2).unwrap()).unwrap();
    assert!(matches!(
        label.infer(&x).await,
        Err(ActorError::Unsupported(_))
    ));

    // remote-2 loses the stored garbled tables of a bundle: its inference aborts there, and
    // the reason the user reads names a role, not the server. (The next bundle is armed, out
    // of the store, so the one after it loses its tables.)
    logits.preprocess().await.unwrap();
    let bundle = logits.preprocess().await.unwrap();
    let remote = c.node("remote-2").unwrap();
    remote
        .store()
        .commit(logits.id(), &[Persist::ForgetChunks(bundle)])
        .unwrap();
    let (x, want) = c.reference(tests.input(3).unwrap()).unwrap();
    assert_eq!(logits.infer(&x).await.unwrap().1, want);
    let reason = match logits.infer(&x).await {
        Err(ActorError::Aborted { reason, .. }) => reason,
        other => panic!("expected an abort, got {other:?}"),
    };
    assert!(reason.contains("a remote server"), "{reason}");
    for name in ["remote-1", "remote-2", "server 1", "server 2"] {
        assert!(!reason.contains(name), "the user reads {name:?}: {reason}");
    }
    // The session goes on.
    logits.preprocess().await.unwrap();
    let (x, want) = c.reference(tests.input(4).unwrap()).unwrap();
    assert_eq!(logits.infer(&x).await.unwrap().1, want);
    c.shutdown().await.unwrap();
}

fn hello() -> SecoMsg {
    SecoMsg {
        version: VERSION,
        session: SessionId([8; 16]),
        from: Party::User,
        seq: 0,
        body: Body::Hello {
            model: "digits-mlp".into(),
            user_pk: Default::default(),
            part_digest: [0; 32],
            output: 0,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_may_talk_only_to_the_gateway() {
    let _ = seco_runtime::telemetry::init(Default::default(), Some("warn"));
    let mut topology = local_topology(3, quick()).unwrap();
    let tester = example_keypair("tester").unwrap();
    let tester_id = tester.public().to_peer_id();
    topology.nodes.push(NodeSpec {
        name: "tester".into(),
        role: Role::User,
        peer_id: tester_id,
        listen: vec![],
        advertise: vec![],
        bootstrap: vec![],
        identity: None,
    });
    let remote = topology.node("remote-1").unwrap().clone();
    let gw = topology.gateway().unwrap().clone();
    // The allowlists by role: the remote's leaves every user out, the user's has the gateway
    // only, the gateway's everyone.
    assert!(!topology.allowlist_for(&remote).contains(&tester_id));
    let user_spec = topology.node("user").unwrap().clone();
    assert_eq!(
        topology
            .allowlist_for(&user_spec)
            .into_iter()
            .collect::<Vec<_>>(),
        vec![gw.peer_id]
    );
    assert!(topology.allowlist_for(&gw).contains(&tester_id));
    let opts = ClusterOptions {
        skip: vec!["tester".into()],
        ..ClusterOptions::default()
    };
    let model = Model::load(model_dir("digits-mlp")).unwrap();
    let c = Cluster::start(topology.clone(), model, opts).await.unwrap();

    // (1) A user dialling a remote: the remote denies the connection; nothing arrives.
    let mut cfg = NetConfig::loopback(topology.allowlist());
    cfg.ack_timeout = Duration::from_secs(3);
    let (client, _events, _task) = net::spawn(tester, cfg).unwrap();
    let dialled = client.dial(remote.dial_addresses()[0].clone()).await;
    let sent = client
        .send(remote.peer_id, wire::to_envelope(&hello()))
        .await;
    assert!(
        dialled.is_err() || sent.is_err(),
        "a remote took a user's message"
    );
    let node = c.node("remote-1").unwrap();
    assert!(node.sessions().await.unwrap().is_empty());
    assert_eq!(node.stats().phases.get("session"), None);

    // (2) Defense in depth: a remote whose runtime lets the user in anyway (allowlist widened
    // by hand) refuses its messages by role, with a typed reject code.
    node.client().allow(tester_id).await.unwrap();
    client
        .dial(remote.dial_addresses()[0].clone())
        .await
        .unwrap();
    match client
        .send(remote.peer_id, wire::to_envelope(&hello()))
        .await
    {
        Err(NetError::Rejected {
            reason: Reject::Application(code),
            ..
        }) => assert_eq!(code, REJECT_ROLE),
        other => panic!("expected REJECT_ROLE, got {other:?}"),
    }
    assert!(node.sessions().await.unwrap().is_empty());
    assert!(node.stats().refused >= 1);
    client.shutdown().await;
    c.shutdown().await.unwrap();
}
