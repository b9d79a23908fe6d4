//! A node refuses what it must refuse, and keeps working: a peer outside the topology cannot
//! reach it; garbage, unknown sessions and messages from the wrong party are refused with a
//! typed reason; a proper session still runs afterwards.

use std::path::PathBuf;
use std::time::Duration;

use seco_actors::config::Timeouts;
use seco_actors::dev::{example_keypair, local_topology, Cluster, ClusterOptions};
use seco_actors::network::{REJECT_MALFORMED, REJECT_UNKNOWN_SESSION};
use seco_actors::topology::{NodeSpec, Role};
use seco_actors::wire::{self, SECO_KIND};
use seco_protocols::fixed::FixedPoint;
use seco_protocols::model::{Dense, Layer, Model, TestSet};
use seco_protocols::seco::msg::VERSION;
use seco_protocols::seco::{Body, BundleId, Party, SecoMsg, SessionId};
use seco_runtime::net::{self, Envelope, NetConfig, NetError, Reject};

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

fn msg(from: Party, body: Body) -> SecoMsg {
    SecoMsg {
        version: VERSION,
        session: SessionId([9; 16]),
        from,
        seq: 0,
        body,
    }
}

fn rejected_with(r: net::Result<()>, code: u16) {
    match r {
        Err(NetError::Rejected {
            reason: Reject::Application(c),
            ..
        }) => assert_eq!(c, code),
        other => panic!("expected an application reject {code}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_garbage_and_wrong_parties_are_refused() {
    let _ = seco_runtime::telemetry::init(Default::default(), Some("warn"));
    let timeouts = Timeouts {
        ack: Duration::from_secs(3),
        ..Timeouts::default()
    };
    let mut topology = local_topology(3, timeouts).unwrap();
    // A second user the test drives by hand, with a raw client.
    let tester = example_keypair("tester").unwrap();
    topology.nodes.push(NodeSpec {
        name: "tester".into(),
        role: Role::User,
        peer_id: tester.public().to_peer_id(),
        listen: vec![],
        advertise: vec![],
        bootstrap: vec![],
        identity: None,
    });
    let opts = ClusterOptions {
        skip: vec!["tester".into()],
        ..ClusterOptions::default()
    };
    let model = Model::load(model_dir("digits-mlp")).unwrap();
    let c = Cluster::start(topology.clone(), model, opts).await.unwrap();
    let gw = topology.gateway().unwrap().clone();
    let gw_addr = gw.dial_addresses()[0].clone();

    // (1) A peer outside the topology: the gateway denies the connection; nothing arrives.
    let outsider = seco_runtime::identity::generate();
    let mut cfg = NetConfig::loopback([gw.peer_id]);
    cfg.ack_timeout = Duration::from_secs(3);
    let (client, _events, _task) = net::spawn(outsider, cfg).unwrap();
    let _ = client.dial(gw_addr.clone()).await;
    let hello = msg(
        Party::User,
        Body::Hello {
            model: "digits-mlp".into(),
            user_pk: Default::default(),
            part_digest: [0; 32],
            output: 0,
        },
    );
    let r = client.send(gw.peer_id, wire::to_envelope(&hello)).await;
    assert!(r.is_err(), "an outsider's message was accepted");
    let gateway = c.node("gateway").unwrap();
    assert!(gateway.sessions().await.unwrap().is_empty());
    assert_eq!(gateway.stats().phases.get("session"), None);
    client.shutdown().await;

    // (2) A peer of the topology sending garbage, unknown sessions, wrong parties.
    let mut cfg = NetConfig::loopback(topology.allowlist());
    cfg.ack_timeout = Duration::from_secs(3);
    let (client, _events, _task) = net::spawn(tester, cfg).unwrap();
    client.dial(gw_addr).await.unwrap();
    let garbage = Envelope::new(
        net::SessionId([1; 16]),
        SECO_KIND,
        0,
        b"\xff\x00garbage".to_vec(),
    );
    rejected_with(client.send(gw.peer_id, garbage).await, REJECT_MALFORMED);
    let other_kind = Envelope::new(net::SessionId([1; 16]), 77, 1, vec![1, 2, 3]);
    rejected_with(client.send(gw.peer_id, other_kind).await, REJECT_MALFORMED);
    let prep = msg(
        Party::User,
        Body::PrepRequest {
            bundle: BundleId([1; 16]),
            input_mask: vec![],
        },
    );
    rejected_with(
        client.send(gw.peer_id, wire::to_envelope(&prep)).await,
        REJECT_UNKNOWN_SESSION,
    );
    // A user cannot act as the gateway towards a remote: the remote does not even let a user
    // connect (its allowlist has servers only; `output_roles.rs` has the role check behind it).
    let remote = topology.node("remote-1").unwrap().clone();
    let _ = client.dial(remote.dial_addresses()[0].clone()).await;
    let open = msg(
        Party::GATEWAY,
        Body::Open {
            model: "digits-mlp".into(),
            skeleton: [0; 32],
            key_ids: Vec::new(),
            user_pk: Default::default(),
            output: 0,
        },
    );
    assert!(client
        .send(remote.peer_id, wire::to_envelope(&open))
        .await
        .is_err());
    // A Hello whose user key does not decode opens nothing useful: refused by the machine.
    // The session it opened is dropped at once.
    let _ = client.send(gw.peer_id, wire::to_envelope(&hello)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while gateway.stats().refused < 4 || !gateway.sessions().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            gateway.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.shutdown().await;

    // (3) The nodes still serve a proper user.
    let tests = TestSet::load(model_dir("digits-mlp")).unwrap();
    let session = c.user().unwrap().open_session().await.unwrap();
    session.preprocess().await.unwrap();
    let (x, want) = c.reference(tests.input(0).unwrap()).unwrap();
    assert_eq!(session.infer(&x).await.unwrap().1, want);
    c.shutdown().await.unwrap();
}

/// A gateway whose part misses the noise budget (a dense layer with weights of 2^20: its noise
/// is beyond what the flooding hides at 40 bits, at N = 4096 and at N = 8192) refuses the session at open, for good: the user's
/// `Hello` is rejected with `REJECT_REFUSED` (not retried) and the user's session fails with
/// the reason; nothing stays open at the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_over_the_noise_budget_refuses_the_session() {
    let _ = seco_runtime::telemetry::init(Default::default(), Some("warn"));
    let topology = local_topology(3, Timeouts::default()).unwrap();
    let fc1 = Dense {
        name: "fc1".into(),
        in_features: 64,
        out_features: 32,
        weight: vec![1_048_576.0; 64 * 32],
        bias: vec![0.0; 32],
    };
    let fc2 = Dense {
        name: "fc2".into(),
        in_features: 32,
        out_features: 10,
        weight: vec![0.5; 32 * 10],
        bias: vec![0.0; 10],
    };
    let layers = vec![Layer::Dense(fc1), Layer::Relu, Layer::Dense(fc2)];
    let model = Model::new(
        "loud".into(),
        "weights too large for the flooding".into(),
        vec![64],
        FixedPoint::default(),
        layers,
    )
    .unwrap();
    let c = Cluster::start(topology, model, ClusterOptions::default())
        .await
        .unwrap();
    let err = match c.user().unwrap().open_session().await {
        Ok(_) => panic!("a session opened with an over-budget part"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("does not fit the parameter set"), "{err}");
    let gateway = c.node("gateway").unwrap();
    assert!(gateway.sessions().await.unwrap().is_empty());
    assert!(gateway.stats().refused >= 1, "{:?}", gateway.stats());
    c.shutdown().await.unwrap();
}
