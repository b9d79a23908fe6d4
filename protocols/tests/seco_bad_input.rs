//! Hostile or mistaken messages: typed errors, never a panic, no bundle used twice.

mod seco_common;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use seco_common::{input, recording, reference, server_config, setup};
use seco_protocols::model::QuantModel;
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::local::{LocalDeployment, LocalOptions};
use seco_protocols::seco::msg::{pack_ring, Body, Bytes, SecoMsg};
use seco_protocols::seco::{
    BundleId, Event, Input, Machine, Party, SecoError, ServerSession, SessionId,
};

fn msg(session: SessionId, from: Party, seq: u64, body: Body) -> Vec<u8> {
    seco_common::msg(session, from, seq, body).to_bytes()
}

fn fresh_server(q: &QuantModel, plan: &SplitPlan, i: usize) -> ServerSession {
    let cfg = server_config(q, plan, i, SessionId([7; 16]));
    ServerSession::new(cfg, Vec::new(), [1; 32]).unwrap()
}

#[test]
fn a_bundle_is_never_used_twice() {
    let (model, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, recording()).unwrap();
    let bundle = d.preprocess(1).unwrap()[0];
    let x = input(&model, 0);
    d.infer(&x).unwrap();
    let s = d.session();
    // The user (or anyone replaying its request) asks again with the same bundle.
    let again = msg(
        s,
        Party::User,
        1_000,
        Body::Infer {
            bundle,
            masked_input: pack_ring(&x, 32),
        },
    );
    let err = d
        .deliver_one(Party::User, Party::GATEWAY, &again)
        .unwrap_err();
    assert!(matches!(err, SecoError::Bundle { .. }), "{err}");
    // A remote asked to start the online phase of a used bundle refuses too.
    let start = msg(s, Party::GATEWAY, 1_000, Body::OnlineStart { bundle });
    let err = d
        .deliver_one(Party::GATEWAY, Party::Server(1), &start)
        .unwrap_err();
    assert!(matches!(err, SecoError::Bundle { .. }), "{err}");
    // The user has no bundle left.
    assert!(matches!(d.infer(&x), Err(SecoError::NotReady(_))));
}

#[test]
fn an_unknown_or_corrupt_stored_bundle_aborts_that_inference() {
    let (model, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, LocalOptions::default()).unwrap();
    let s = d.session();
    // Never prepared: the store has nothing, the remote aborts that bundle on every peer.
    let ghost = BundleId([9; 16]);
    d.deliver_one(
        Party::GATEWAY,
        Party::Server(1),
        &msg(s, Party::GATEWAY, 500, Body::OnlineStart { bundle: ghost }),
    )
    .unwrap();
    d.run().unwrap();
    let aborted = |d: &LocalDeployment, b: BundleId, p: Party| {
        d.events
            .iter()
            .any(|(q, e)| *q == p && matches!(e, Event::Aborted { bundle: Some(x), .. } if *x == b))
    };
    assert!(aborted(&d, ghost, Party::Server(1)));
    assert!(
        aborted(&d, ghost, Party::Server(2)),
        "the abort reaches the other servers"
    );
    // Corrupt bytes in the store: the inference aborts with a reason, nothing panics, and the
    // session goes on with the next bundle.
    let ids = d.preprocess(2).unwrap();
    d.put_bundle(Party::Server(2), ids[0], b"not a bundle".to_vec());
    let x = input(&model, 1);
    assert!(d.infer(&x).is_err());
    assert!(
        aborted(&d, ids[0], Party::User),
        "the user learns of the abort"
    );
    assert_eq!(d.infer(&x).unwrap(), reference(&model, &q, &x));
}

#[test]
fn messages_out_of_phase_or_session_or_from_the_wrong_sender_are_refused() {
    let (_, q, plan) = setup();
    let s = SessionId([7; 16]);
    let mut g = fresh_server(&q, &plan, 0);
    let deliver = |m: &mut ServerSession, from: Party, bytes: Vec<u8>| {
        m.handle(Input::Message {
            from,
            msg: SecoMsg::from_bytes(&bytes).unwrap(),
        })
    };
    // Preprocessing before the session is open.
    let prep = msg(
        s,
        Party::User,
        0,
        Body::PrepRequest {
            bundle: BundleId([1; 16]),
            input_mask: vec![],
        },
    );
    assert!(matches!(
        deliver(&mut g, Party::User, prep),
        Err(SecoError::WrongPhase { .. })
    ));
    // Another session.
    let other = msg(
        SessionId([8; 16]),
        Party::User,
        1,
        Body::Hello {
            model: "digits-mlp".into(),
            user_pk: Bytes::new(),
            part_digest: [0; 32],
            output: 0,
        },
    );
    assert!(matches!(
        deliver(&mut g, Party::User, other),
        Err(SecoError::WrongSession)
    ));
    // A claimed sender that is not the transport's sender.
    let spoof = msg(
        s,
        Party::Server(2),
        2,
        Body::OpenAck {
            key_ids: Vec::new(),
        },
    );
    assert!(matches!(
        deliver(&mut g, Party::Server(1), spoof),
        Err(SecoError::WrongSender { .. })
    ));
    // A remote does not take a Hello (only the gateway talks to users) nor Infer.
    let mut r = fresh_server(&q, &plan, 1);
    let hello = msg(
        s,
        Party::User,
        0,
        Body::Hello {
            model: "digits-mlp".into(),
            user_pk: Bytes::new(),
            part_digest: [0; 32],
            output: 0,
        },
    );
    assert!(matches!(
        deliver(&mut r, Party::User, hello),
        Err(SecoError::WrongSender { .. })
    ));
    let open = |from: Party| {
        msg(
            s,
            from,
            0,
            Body::Open {
                model: "digits-mlp".into(),
                skeleton: [0; 32],
                key_ids: Vec::new(),
                user_pk: Bytes::new(),
                output: 0,
            },
        )
    };
    assert!(matches!(
        deliver(&mut r, Party::Server(2), open(Party::Server(2))),
        Err(SecoError::WrongSender { .. })
    ));
    // A gateway's Open for another split is refused as a mismatch.
    assert!(matches!(
        deliver(&mut r, Party::GATEWAY, open(Party::GATEWAY)),
        Err(SecoError::Mismatch(_))
    ));
    // The same sequence number twice.
    let a = msg(
        s,
        Party::User,
        5,
        Body::PrepStart {
            bundle: BundleId([1; 16]),
        },
    );
    let _ = deliver(&mut g, Party::User, a.clone());
    assert!(matches!(
        deliver(&mut g, Party::User, a),
        Err(SecoError::Duplicate { .. })
    ));
}

#[test]
fn a_malformed_input_mask_is_refused_before_any_server_starts() {
    let (_, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, recording()).unwrap();
    d.preprocess(1).unwrap();
    let s = d.session();
    for (seq, mask) in [(1_000, vec![]), (1_001, vec![Bytes::from(vec![1u8, 2, 3])])] {
        let bad = msg(
            s,
            Party::User,
            seq,
            Body::PrepRequest {
                bundle: BundleId([9; 16]),
                input_mask: mask,
            },
        );
        let err = d
            .deliver_one(Party::User, Party::GATEWAY, &bad)
            .unwrap_err();
        assert!(
            matches!(err, SecoError::Length { .. } | SecoError::Mhe(_)),
            "{err}"
        );
        // No `PrepStart` (nor anything else) went out.
        assert!(d.take_queued().is_empty());
    }
    // The session goes on.
    assert_eq!(d.preprocess(1).unwrap().len(), 1);
}

#[test]
fn replayed_messages_are_duplicates() {
    let (_, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, recording()).unwrap();
    d.preprocess(1).unwrap();
    let trace = d.trace.clone();
    for m in trace.iter().filter(|m| m.to != Party::User).step_by(3) {
        let err = d.deliver_one(m.from, m.to, &m.msg.to_bytes()).unwrap_err();
        assert!(
            matches!(err, SecoError::Duplicate { .. }),
            "{}: {err}",
            m.msg.body.name()
        );
    }
}

#[test]
fn garbage_bytes_are_decode_errors() {
    for bytes in [
        &b""[..],
        b"\x00",
        b"\xff\xff\xff",
        b"garbage that is not cbor",
    ] {
        assert!(matches!(
            SecoMsg::from_bytes(bytes),
            Err(SecoError::Decode(_))
        ));
    }
    let mut old = SecoMsg {
        version: 99,
        session: SessionId([0; 16]),
        from: Party::User,
        seq: 0,
        body: Body::PrepStart {
            bundle: BundleId([0; 16]),
        },
    }
    .to_bytes();
    assert!(matches!(
        SecoMsg::from_bytes(&old),
        Err(SecoError::Version { .. })
    ));
    old.truncate(old.len() / 2);
    assert!(SecoMsg::from_bytes(&old).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = SecoMsg::from_bytes(&bytes);
    }
}

/// Every recorded message of a real run, mutated and delivered to its receiver: errors, no
/// panic (the deployment may end up aborted, which is fine).
#[test]
fn mutated_protocol_messages_never_panic() {
    let (model, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, recording()).unwrap();
    d.preprocess(2).unwrap();
    let x = input(&model, 0);
    d.infer(&x).unwrap();
    let trace = d.trace.clone();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let mut refused = 0;
    for round in 0..600 {
        let m = &trace[rng.random_range(0..trace.len())];
        // Re-encode with a fresh sequence number so the duplicate check does not hide the rest.
        let mut msg = m.msg.clone();
        msg.seq = 10_000 + round;
        let mut bytes = msg.to_bytes();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..bytes.len());
            bytes[i] ^= 1 << rng.random_range(0..8);
        }
        if rng.random_bool(0.2) {
            bytes.truncate(rng.random_range(0..bytes.len()));
        }
        if d.deliver_one(m.from, m.to, &bytes).is_err() {
            refused += 1;
        }
        let _ = d.run();
    }
    assert!(refused > 0);
}

/// A stage owner takes one masked input per inference (issue 14 item 7): a second one for a
/// bundle whose inference is running is refused, whether it comes in a second `Infer` (the
/// gateway owns the first stage) or a second `MaskedInput` (a remote owns it), and the
/// inference goes on with the first.
#[test]
fn a_second_masked_input_for_a_running_inference_is_refused() {
    let (model, q, _) = setup();
    let x = input(&model, 0);
    let other = input(&model, 1);
    for first in ["gateway", "remote-1"] {
        let text = format!(
            "model = \"digits-mlp\"\nservers = [\"gateway\", \"remote-1\", \"remote-2\"]\n\
             [owners]\nfc1 = \"{first}\"\nfc2 = \"remote-2\"\n"
        );
        let plan = seco_protocols::plan::PlanFile::from_toml(&text)
            .unwrap()
            .resolve(&q)
            .unwrap();
        let mut d = LocalDeployment::new(&q, &plan, LocalOptions::default()).unwrap();
        let bundle = d.preprocess(1).unwrap()[0];
        let s = d.session();
        let infer = |seq: u64, v: &[u64]| {
            msg(
                s,
                Party::User,
                seq,
                Body::Infer {
                    bundle,
                    masked_input: pack_ring(v, 32),
                },
            )
        };
        d.deliver_one(Party::User, Party::GATEWAY, &infer(500_000, &x))
            .unwrap();
        let err = if first == "gateway" {
            d.deliver_one(Party::User, Party::GATEWAY, &infer(500_001, &other))
                .unwrap_err()
        } else {
            // The gateway's OnlineStart and MaskedInput reach the owner, then a second one.
            for (from, to, bytes) in d.take_queued() {
                d.deliver_one(from, to, &bytes).unwrap();
            }
            let again = msg(
                s,
                Party::GATEWAY,
                500_000,
                Body::MaskedInput {
                    bundle,
                    values: pack_ring(&other, 32),
                },
            );
            d.deliver_one(Party::GATEWAY, Party::Server(1), &again)
                .unwrap_err()
        };
        let why = if first == "gateway" {
            "already in use"
        } else {
            "second masked input"
        };
        assert!(
            matches!(err, SecoError::Bundle { .. }) && err.to_string().contains(why),
            "{first}: {err}"
        );
        // The refusal left the inference running: it completes at every server, unaborted.
        let _ = d.run();
        assert!(
            !d.events.iter().any(|(p, e)| p.server().is_some()
                && matches!(e, Event::Aborted { bundle: Some(b), .. } if *b == bundle)),
            "{first}: {:?}",
            d.events
        );
    }
}

/// The kind of an abort travels in `Abort`; a `Retry` abort is encoded exactly as before the
/// field existed (so both directions work with nodes of the previous build), and one without
/// the field decodes as `Retry`.
#[test]
fn an_abort_kind_travels_and_its_absence_means_retry() {
    use seco_protocols::seco::AbortKind;
    let s = SessionId([9; 16]);
    let abort = |kind| {
        msg(
            s,
            Party::GATEWAY,
            1,
            Body::Abort {
                bundle: None,
                reason: "refused".into(),
                kind,
            },
        )
    };
    let final_bytes = abort(AbortKind::Final);
    let kind_of = |bytes: &[u8]| match SecoMsg::from_bytes(bytes).unwrap().body {
        Body::Abort { kind, .. } => kind,
        other => panic!("not an abort: {}", other.name()),
    };
    assert_eq!(kind_of(&final_bytes), AbortKind::Final);
    let retry_bytes = abort(AbortKind::Retry);
    assert_eq!(kind_of(&retry_bytes), AbortKind::Retry);
    assert!(
        !retry_bytes.windows(4).any(|w| w == b"kind"),
        "a Retry abort carries no kind field (the previous encoding)"
    );
    assert!(final_bytes.windows(4).any(|w| w == b"kind"));
}
