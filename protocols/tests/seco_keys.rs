//! Collective keys never lock out (`seco/server/open.rs`): servers keep their previous keys,
//! a session runs under the newest key every server holds, and when they hold none in common a
//! fresh key generation runs. The situation of a key generation interrupted after the gateway
//! stored the new key but before a remote did (the lockout seen before key versions) opens a
//! session under the previous key, with no operator step.

mod seco_common;

use std::collections::VecDeque;

use seco_common::{server_config, setup};
use seco_protocols::mhe::ParamId;
use seco_protocols::model::QuantModel;
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::keys::KeyMaterial;
use seco_protocols::seco::msg::{Body, MAX_KEYS};
use seco_protocols::seco::{
    Event, Input, Machine, OutputMode, Party, Persist, ServerSession, SessionId, UserConfig,
    UserSession,
};

const PARAM: ParamId = ParamId::Bfv4096T32V1;

/// What one session open produced.
struct Opened {
    /// The key each server runs under.
    chosen: Vec<Option<[u8; 32]>>,
    /// Key material each server persisted (a key generation ran).
    new_keys: Vec<Vec<Vec<u8>>>,
    /// Whether the user was welcomed.
    welcomed: bool,
    /// Message names in delivery order.
    trace: Vec<&'static str>,
}

fn decode(bytes: &[u8], i: usize) -> KeyMaterial {
    KeyMaterial::from_bytes(bytes, PARAM, i as u16).unwrap()
}

/// Opens one session among 3 servers holding `rings` (newest first) and a user.
fn open(q: &QuantModel, plan: &SplitPlan, rings: Vec<Vec<Vec<u8>>>, tag: u8) -> Opened {
    let session = SessionId([tag; 16]);
    let ucfg = UserConfig {
        session,
        part: plan.user_part(q),
        param: PARAM,
        user_param: ParamId::Bfv2048T32V1,
        output: OutputMode::Logits,
    };
    let (user, hello) = UserSession::new(ucfg, [tag; 32]).unwrap();
    let mut servers: Vec<ServerSession> = rings
        .iter()
        .enumerate()
        .map(|(i, ring)| {
            let ring = ring.iter().map(|b| decode(b, i)).collect();
            ServerSession::new(
                server_config(q, plan, i, session),
                ring,
                [tag + i as u8; 32],
            )
            .unwrap()
        })
        .collect();
    let mut user: Box<dyn Machine> = Box::new(user);
    let mut queue: VecDeque<_> = hello
        .send
        .into_iter()
        .map(|(t, m)| (Party::User, t, m))
        .collect();
    let mut out = Opened {
        chosen: Vec::new(),
        new_keys: vec![Vec::new(); 3],
        welcomed: false,
        trace: Vec::new(),
    };
    while let Some((from, to, m)) = queue.pop_front() {
        out.trace.push(m.body.name());
        let input = Input::Message { from, msg: m };
        let ready = match to {
            Party::User => user.handle(input),
            Party::Server(i) => servers[usize::from(i)].handle(input),
        }
        .unwrap_or_else(|e| panic!("{to}: {e}"));
        for p in &ready.persist {
            if let (Persist::Keys(bytes), Party::Server(i)) = (p, to) {
                out.new_keys[usize::from(i)].push(bytes.clone());
            }
        }
        if to == Party::User && ready.events.contains(&Event::SessionReady) {
            out.welcomed = true;
        }
        queue.extend(ready.send.into_iter().map(|(t, m2)| (to, t, m2)));
    }
    out.chosen = servers.iter().map(ServerSession::key_id).collect();
    out
}

fn id(bytes: &[u8], i: usize) -> [u8; 32] {
    decode(bytes, i).key_id
}

#[test]
fn sessions_fall_back_to_the_newest_key_all_hold_or_generate_one() {
    let (_, q, plan) = setup();
    // No keys: a key generation runs, every server persists the same key.
    let first = open(&q, &plan, vec![Vec::new(); 3], 1);
    assert!(first.welcomed);
    assert!(first.trace.contains(&"Keygen"));
    let k1: Vec<Vec<u8>> = first.new_keys.iter().map(|v| v[0].clone()).collect();
    let k1_id = id(&k1[0], 0);
    assert!(first.chosen.iter().all(|c| *c == Some(k1_id)));

    // Every server holds k1: it is reused, no key generation.
    let again = open(&q, &plan, k1.iter().map(|k| vec![k.clone()]).collect(), 2);
    assert!(again.welcomed);
    assert!(!again.trace.contains(&"Keygen"), "{:?}", again.trace);
    assert!(again.chosen.iter().all(|c| *c == Some(k1_id)));
    assert!(again.new_keys.iter().all(Vec::is_empty));

    // A second key generation (as a rotation would run), for every server.
    let second = open(&q, &plan, vec![Vec::new(); 3], 3);
    let k2: Vec<Vec<u8>> = second.new_keys.iter().map(|v| v[0].clone()).collect();
    let k2_id = id(&k2[0], 0);
    assert_ne!(k1_id, k2_id);

    // The lockout case: the gateway and remote 1 stored k2, remote 2 crashed before it did.
    // The session runs under k1, the newest key all three hold.
    let rings = vec![
        vec![k2[0].clone(), k1[0].clone()],
        vec![k2[1].clone(), k1[1].clone()],
        vec![k1[2].clone()],
    ];
    let fallback = open(&q, &plan, rings, 4);
    assert!(fallback.welcomed);
    assert!(!fallback.trace.contains(&"Keygen"));
    assert!(fallback.trace.contains(&"UseKey"));
    assert!(
        fallback.chosen.iter().all(|c| *c == Some(k1_id)),
        "{:?}",
        fallback.chosen
    );

    // No key in common (remote 2 holds only k1, the others only k2): a fresh key generation
    // runs and every server ends on the same new key, beside the ones it had.
    let rings = vec![
        vec![k2[0].clone()],
        vec![k2[1].clone()],
        vec![k1[2].clone()],
    ];
    let fresh = open(&q, &plan, rings, 5);
    assert!(fresh.welcomed);
    assert!(fresh.trace.contains(&"Keygen"));
    let k3_id = id(&fresh.new_keys[0][0], 0);
    assert!(k3_id != k1_id && k3_id != k2_id);
    assert!(fresh.chosen.iter().all(|c| *c == Some(k3_id)));
    for (i, keys) in fresh.new_keys.iter().enumerate() {
        assert_eq!(keys.len(), 1);
        assert_eq!(id(&keys[0], i), k3_id);
    }
}

#[test]
fn open_and_open_ack_lists_are_bounded() {
    let (_, q, plan) = setup();
    let session = SessionId([9; 16]);
    let mut remote =
        ServerSession::new(server_config(&q, &plan, 1, session), Vec::new(), [1; 32]).unwrap();
    let part = plan.server_part(&q, 1).unwrap();
    let open = seco_common::msg(
        session,
        Party::GATEWAY,
        0,
        Body::Open {
            model: part.model.clone(),
            skeleton: remote.schedule().digest,
            key_ids: vec![[7; 32]; MAX_KEYS + 1],
            user_pk: Default::default(),
            output: 0,
        },
    );
    let err = remote
        .handle(Input::Message {
            from: Party::GATEWAY,
            msg: open,
        })
        .unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
}
