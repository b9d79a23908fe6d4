//! The servers' pairwise OT setup inside a SECO session (phase 1b): the user is welcomed only
//! once every server's setup is complete, garblings skip the base OTs, bad setup messages are
//! typed errors, and a restarted server sets up again and the session goes on.

mod seco_common;

use std::collections::VecDeque;

use seco_common::{input, msg, recording, reference, server_config, setup};
use seco_protocols::bmr::{BmrError, BmrMsg, SetupMsg};
use seco_protocols::mhe::ParamId;
use seco_protocols::model::QuantModel;
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::local::{LocalDeployment, LocalOptions};
use seco_protocols::seco::msg::{Body, Bytes, SecoMsg};
use seco_protocols::seco::{
    BundleId, Input, Machine, OutputMode, Party, Phase, SecoError, ServerSession, SessionId,
    UserConfig, UserSession,
};

#[test]
fn the_user_is_welcomed_after_every_setup_and_garblings_skip_base_ots() {
    let (model, q, plan) = setup();
    let opts = LocalOptions {
        record: true,
        shuffle: true,
        seed: 3,
        ..LocalOptions::default()
    };
    let mut d = LocalDeployment::new(&q, &plan, opts).unwrap();
    let pos = |name: &str| -> Vec<usize> {
        d.trace
            .iter()
            .enumerate()
            .filter(|(_, m)| m.msg.body.name() == name)
            .map(|(i, _)| i)
            .collect()
    };
    let (setups, readies, welcome) = (pos("OtSetup"), pos("OtReady"), pos("Welcome"));
    assert_eq!(setups.len(), 3 * 2, "one half per ordered pair");
    assert_eq!(readies.len(), 2, "one OtReady per remote");
    assert_eq!(welcome.len(), 1);
    assert!(readies.iter().all(|&r| r < welcome[0]));
    assert!(setups.iter().all(|&r| r < welcome[0]));
    let setup_bytes: u64 = (0..3)
        .map(|i| d.accounting.get(Party::Server(i), Phase::Setup).bytes_sent)
        .sum();
    assert!(setup_bytes > 6 * 128 * 64, "{setup_bytes}");
    // Preprocessing: BMR messages start at round 2 (no base OTs), and the result is right.
    let start = d.trace.len();
    d.preprocess(2).unwrap();
    let mut bmr = 0;
    for m in &d.trace[start..] {
        if let Body::BmrOffline { msg, .. } = &m.msg.body {
            let b: BmrMsg = ciborium::from_reader(msg.as_slice()).unwrap();
            assert_ne!(b.body.round_index(), 1, "base OTs in a garbling");
            bmr += 1;
        }
        assert_ne!(m.msg.body.name(), "OtSetup");
    }
    assert!(bmr > 0);
    for i in 0..2 {
        let x = input(&model, i);
        assert_eq!(d.infer(&x).unwrap(), reference(&model, &q, &x));
    }
}

fn server(q: &QuantModel, plan: &SplitPlan, i: usize, session: SessionId) -> ServerSession {
    let cfg = server_config(q, plan, i, session);
    ServerSession::new(cfg, Vec::new(), [i as u8 + 1; 32]).unwrap()
}

/// The servers and the user by hand; `drop` decides which messages are lost.
fn run_until_quiet(
    parties: &mut [Box<dyn Machine>],
    queue: &mut VecDeque<(Party, Party, SecoMsg)>,
    drop: impl Fn(Party, Party, &SecoMsg) -> bool,
) {
    let index = |p: Party| match p {
        Party::User => 3,
        Party::Server(i) => usize::from(i),
    };
    while let Some((from, to, m)) = queue.pop_front() {
        if drop(from, to, &m) {
            continue;
        }
        if let Ok(ready) = parties[index(to)].handle(Input::Message { from, msg: m }) {
            for (t, m2) in ready.send {
                queue.push_back((to, t, m2));
            }
        }
    }
}

#[test]
fn no_welcome_and_no_preprocessing_while_a_setup_is_incomplete() {
    let (_, q, plan) = setup();
    let session = SessionId([4; 16]);
    let ucfg = UserConfig {
        session,
        part: plan.user_part(&q),
        param: ParamId::Bfv4096T32V1,
        user_param: ParamId::Bfv2048T32V1,
        output: OutputMode::Logits,
    };
    let (user, hello) = UserSession::new(ucfg, [9; 32]).unwrap();
    let mut parties: Vec<Box<dyn Machine>> = (0..3)
        .map(|i| Box::new(server(&q, &plan, i, session)) as Box<dyn Machine>)
        .collect();
    parties.push(Box::new(user));
    let mut queue: VecDeque<_> = hello
        .send
        .into_iter()
        .map(|(t, m)| (Party::User, t, m))
        .collect();
    // Remote 2 never gets remote 1's half: its setup (and remote 1's) cannot complete.
    run_until_quiet(&mut parties, &mut queue, |from, to, m| {
        from == Party::Server(1) && to == Party::Server(2) && m.body.name() == "OtSetup"
    });
    // The gateway has keys but is waiting for the setups: a preprocessing request is refused.
    let prep = msg(
        session,
        Party::User,
        1_000,
        Body::PrepRequest {
            bundle: BundleId([1; 16]),
            input_mask: vec![],
        },
    );
    let err = parties[0]
        .handle(Input::Message {
            from: Party::User,
            msg: prep,
        })
        .unwrap_err();
    assert!(
        matches!(&err, SecoError::WrongPhase { current, .. } if current == "await-ot-setup"),
        "{err}"
    );
    // A remote that is not set up refuses preprocessing too.
    let start = msg(
        session,
        Party::GATEWAY,
        1_000,
        Body::PrepStart {
            bundle: BundleId([1; 16]),
        },
    );
    assert!(matches!(
        parties[2].handle(Input::Message {
            from: Party::GATEWAY,
            msg: start,
        }),
        Err(SecoError::WrongPhase { .. })
    ));
}

#[test]
fn bad_setup_messages_are_typed_errors() {
    let (_, q, plan) = setup();
    let session = SessionId([7; 16]);
    let mut g = server(&q, &plan, 0, session);
    let mut r = server(&q, &plan, 1, session);
    let deliver =
        |s: &mut ServerSession, from: Party, m: SecoMsg| s.handle(Input::Message { from, msg: m });
    // OtReady: the gateway before the session is open, a remote ever, the user ever.
    let e = deliver(
        &mut g,
        Party::Server(1),
        msg(session, Party::Server(1), 0, Body::OtReady),
    );
    assert!(matches!(e, Err(SecoError::WrongPhase { .. })), "{e:?}");
    let e = deliver(
        &mut r,
        Party::GATEWAY,
        msg(session, Party::GATEWAY, 0, Body::OtReady),
    );
    assert!(matches!(e, Err(SecoError::WrongPhase { .. })), "{e:?}");
    let e = deliver(
        &mut g,
        Party::User,
        msg(session, Party::User, 0, Body::OtReady),
    );
    assert!(matches!(e, Err(SecoError::WrongSender { .. })), "{e:?}");
    // Setup halves from the user, and garbage bytes.
    let e = deliver(
        &mut g,
        Party::User,
        msg(
            session,
            Party::User,
            1,
            Body::OtSetup(Bytes::from(vec![1, 2])),
        ),
    );
    assert!(matches!(e, Err(SecoError::WrongSender { .. })), "{e:?}");
    for (seq, bytes) in [vec![], vec![0xff; 3], b"not cbor".to_vec()]
        .into_iter()
        .enumerate()
    {
        let m = msg(
            session,
            Party::Server(2),
            seq as u64,
            Body::OtSetup(Bytes::from(bytes)),
        );
        assert!(matches!(
            deliver(&mut r, Party::Server(2), m),
            Err(SecoError::Decode(_))
        ));
    }
}

/// Recorded setup halves of a live session, replayed or altered with fresh sequence numbers.
#[test]
fn replayed_or_altered_setup_halves_are_refused() {
    let (model, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, recording()).unwrap();
    let s = d.session();
    let half = d
        .trace
        .iter()
        .find(|m| {
            m.from == Party::Server(1) && m.to == Party::Server(2) && m.msg.body.name() == "OtSetup"
        })
        .cloned()
        .unwrap();
    let Body::OtSetup(bytes) = &half.msg.body else {
        unreachable!()
    };
    let orig: SetupMsg = ciborium::from_reader(bytes.as_slice()).unwrap();
    let send = |d: &mut LocalDeployment, from: u16, seq: u64, m: &SetupMsg| {
        let mut b = Vec::new();
        ciborium::into_writer(m, &mut b).unwrap();
        let body = Body::OtSetup(Bytes::from(b));
        let bytes = msg(s, Party::Server(from), seq, body).to_bytes();
        d.deliver_one(Party::Server(from), Party::Server(2), &bytes)
    };
    let bmr = |e: SecoError| match e {
        SecoError::Bmr(b) => b,
        other => panic!("not a BMR error: {other}"),
    };
    // The same half again (new sequence number): a duplicate.
    let e = bmr(send(&mut d, 1, 50_000, &orig).unwrap_err());
    assert!(matches!(e, BmrError::Duplicate { .. }), "{e}");
    // Another session's half, a half claiming another sender, points that do not decode.
    let mut other = orig.clone();
    other.session = [0; 16];
    other.nonce = [1; 16];
    let e = bmr(send(&mut d, 1, 50_001, &other).unwrap_err());
    assert!(matches!(e, BmrError::WrongSession), "{e}");
    let mut forged = orig.clone();
    forged.nonce = [2; 16];
    let e = bmr(send(&mut d, 0, 50_002, &forged).unwrap_err());
    assert!(matches!(e, BmrError::WrongSender { .. }), "{e}");
    let mut bad = orig.clone();
    bad.nonce = [3; 16];
    bad.ot_receiver.r[0].1 = [0xee; 32];
    let e = bmr(send(&mut d, 1, 50_003, &bad).unwrap_err());
    assert!(matches!(e, BmrError::Ot(_)), "{e}");
    let mut stale = orig.clone();
    stale.nonce = [4; 16];
    stale.reply_to = Some([5; 16]);
    let e = bmr(send(&mut d, 1, 50_004, &stale).unwrap_err());
    assert!(matches!(e, BmrError::StaleSetup { .. }), "{e}");
    // None of it disturbed the session.
    d.run().unwrap();
    d.preprocess(1).unwrap();
    let x = input(&model, 3);
    assert_eq!(d.infer(&x).unwrap(), reference(&model, &q, &x));
}

#[test]
fn a_garbling_id_is_never_drawn_twice() {
    let (_, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, LocalOptions::default()).unwrap();
    let s = d.session();
    let bundle = BundleId([0x42; 16]);
    let start = |seq| msg(s, Party::GATEWAY, seq, Body::PrepStart { bundle }).to_bytes();
    d.deliver_one(Party::GATEWAY, Party::Server(1), &start(60_000))
        .unwrap();
    let abort = msg(
        s,
        Party::GATEWAY,
        60_001,
        Body::Abort {
            bundle: Some(bundle),
            reason: "test".into(),
            kind: Default::default(),
        },
    );
    d.deliver_one(Party::GATEWAY, Party::Server(1), &abort.to_bytes())
        .unwrap();
    // Preparing the same bundle again would reuse its garbling ids: refused.
    let e = d
        .deliver_one(Party::GATEWAY, Party::Server(1), &start(60_002))
        .unwrap_err();
    assert!(matches!(e, SecoError::Bmr(BmrError::GarblingReused)), "{e}");
}

#[test]
fn a_restarted_server_sets_up_again_and_the_session_goes_on() {
    let (model, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, recording()).unwrap();
    d.preprocess(4).unwrap();
    let x = input(&model, 0);
    assert_eq!(d.infer(&x).unwrap(), reference(&model, &q, &x));
    for (k, restarted) in [1usize, 0, 2].into_iter().enumerate() {
        let before = d.trace.len();
        d.restart_server(restarted, k as u64).unwrap();
        assert!(
            d.server_ready(restarted),
            "server {restarted} did not resume"
        );
        assert!(d.refused.is_empty(), "{:?}", d.refused);
        // Its halves went out and every peer answered.
        let halves = d.trace[before..]
            .iter()
            .filter(|m| m.msg.body.name() == "OtSetup")
            .count();
        assert_eq!(halves, 4, "server {restarted}: 2 halves and 2 answers");
        // A bundle prepared before the restart and one prepared after both work.
        d.preprocess(1).unwrap();
        for i in 0..2 {
            let x = input(&model, 1 + 2 * k + i);
            assert_eq!(d.infer(&x).unwrap(), reference(&model, &q, &x));
        }
    }
}

#[test]
fn a_resumed_server_serves_stored_bundles_before_its_setup_completes() {
    let (model, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, LocalOptions::default()).unwrap();
    d.preprocess(2).unwrap();
    for restarted in [1usize, 0] {
        d.resume_server(restarted, 7).unwrap();
        // Its setup halves are held back: the peers do not know of the restart yet.
        let held = d.take_queued();
        assert!(!held.is_empty());
        assert!(!d.server_ready(restarted));
        let x = input(&model, restarted);
        assert_eq!(d.infer(&x).unwrap(), reference(&model, &q, &x));
        assert!(d.refused.is_empty(), "{:?}", d.refused);
        // Preprocessing waits for the setup: once the halves arrive, it works again.
        for (from, to, bytes) in held {
            d.inject(from, to, bytes);
        }
        d.run().unwrap();
        assert!(d.server_ready(restarted));
        d.preprocess(1).unwrap();
    }
    let x = input(&model, 5);
    assert_eq!(d.infer(&x).unwrap(), reference(&model, &q, &x));
}

/// The session offset `R^i` is kept once, in the session record: no stored chunk garbling
/// holds it (issue 14 item 7), and a restarted server restores it from the record (the
/// restart tests above use bundles stored before the restart).
#[test]
fn stored_garblings_do_not_hold_the_session_offset() {
    let (model, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, LocalOptions::default()).unwrap();
    d.preprocess(1).unwrap();
    for i in 0..3u16 {
        let records = d.chunk_records(Party::Server(i));
        assert!(!records.is_empty());
        for bytes in records {
            let p = seco_protocols::bmr::Prepared::from_record(bytes).unwrap();
            if let Some(g) = &p.garbler {
                assert_eq!(
                    g.offset,
                    seco_protocols::garble::block::Block::ZERO,
                    "server {i}"
                );
            }
        }
    }
    d.restart_server(1, 3).unwrap();
    let x = input(&model, 0);
    assert_eq!(d.infer(&x).unwrap(), reference(&model, &q, &x));
}
