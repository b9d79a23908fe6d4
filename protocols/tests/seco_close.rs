//! The end of a session: the user's `Close` ends it at every server, an expiry at the gateway
//! tells the remotes and the user, a closed session refuses everything; a `Hello` with the
//! digest of another user part is refused with a typed error.

mod seco_common;

use rand::SeedableRng;
use seco_common::{input, server_config, setup};
use seco_protocols::mhe::{ParamId, SessionKey};
use seco_protocols::seco::local::{LocalDeployment, LocalOptions};
use seco_protocols::seco::msg::{pack_ring, Body, Bytes};
use seco_protocols::seco::{
    BundleId, CloseReason, Event, Input, Machine, Party, SecoError, ServerSession, SessionId,
};

fn msg(session: SessionId, from: Party, seq: u64, body: Body) -> Vec<u8> {
    seco_common::msg(session, from, seq, body).to_bytes()
}

fn closed_events(d: &LocalDeployment, reason: CloseReason) -> Vec<Party> {
    d.events
        .iter()
        .filter(|(_, e)| *e == Event::Closed(reason))
        .map(|(p, _)| *p)
        .collect()
}

#[test]
fn the_users_close_ends_the_session_at_every_server() {
    let (model, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, LocalOptions::default()).unwrap();
    d.preprocess(2).unwrap();
    let x = input(&model, 0);
    d.infer(&x).unwrap();
    let s = d.session();
    let close = msg(
        s,
        Party::User,
        1_000,
        Body::Close {
            reason: CloseReason::Done,
        },
    );
    d.deliver_one(Party::User, Party::GATEWAY, &close).unwrap();
    d.run().unwrap();
    let n = plan.servers.len();
    for i in 0..n {
        assert!(d.server_mut(i).has_ended(), "server {i}");
    }
    let mut closed = closed_events(&d, CloseReason::Done);
    closed.sort();
    let servers: Vec<Party> = (0..n).map(|i| Party::Server(i as u16)).collect();
    assert_eq!(closed, servers);
    // Nothing is taken after the close: an inference on the unused bundle is refused.
    let bundle = BundleId([3; 16]);
    let infer = msg(
        s,
        Party::User,
        1_001,
        Body::Infer {
            bundle,
            masked_input: pack_ring(&x, 32),
        },
    );
    let err = d
        .deliver_one(Party::User, Party::GATEWAY, &infer)
        .unwrap_err();
    assert!(matches!(err, SecoError::Closed(CloseReason::Done)), "{err}");
}

#[test]
fn an_expiry_at_the_gateway_tells_the_remotes_and_the_user() {
    let (_, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, LocalOptions::default()).unwrap();
    d.preprocess(1).unwrap();
    let ready = d.server_mut(0).close(CloseReason::Expired);
    let mut to: Vec<Party> = ready
        .send
        .iter()
        .filter(|(_, m)| {
            m.body
                == Body::Close {
                    reason: CloseReason::Expired,
                }
        })
        .map(|(p, _)| *p)
        .collect();
    to.sort();
    let mut want: Vec<Party> = (1..plan.servers.len())
        .map(|i| Party::Server(i as u16))
        .collect();
    want.push(Party::User);
    want.sort();
    assert_eq!(to, want);
    assert_eq!(ready.events, vec![Event::Closed(CloseReason::Expired)]);
    // Closing again does nothing.
    assert!(d.server_mut(0).close(CloseReason::Expired).is_empty());
}

#[test]
fn only_the_user_closes_the_gateway_and_only_the_gateway_a_remote() {
    let (_, q, plan) = setup();
    let s = SessionId([7; 16]);
    let close = |from| {
        seco_common::msg(
            s,
            from,
            0,
            Body::Close {
                reason: CloseReason::Done,
            },
        )
    };
    let mut g = ServerSession::new(server_config(&q, &plan, 0, s), Vec::new(), [1; 32]).unwrap();
    let err = g
        .handle(Input::Message {
            from: Party::Server(1),
            msg: close(Party::Server(1)),
        })
        .unwrap_err();
    assert!(matches!(err, SecoError::WrongSender { .. }), "{err}");
    let mut r = ServerSession::new(server_config(&q, &plan, 1, s), Vec::new(), [1; 32]).unwrap();
    let err = r
        .handle(Input::Message {
            from: Party::User,
            msg: close(Party::User),
        })
        .unwrap_err();
    assert!(matches!(err, SecoError::WrongSender { .. }), "{err}");
    // A gateway closed before it opened anything sends nothing to the remotes.
    let ready = g
        .handle(Input::Message {
            from: Party::User,
            msg: close(Party::User),
        })
        .unwrap();
    assert!(ready.send.is_empty());
    assert_eq!(ready.events, vec![Event::Closed(CloseReason::Done)]);
}

#[test]
fn a_hello_with_another_user_part_is_refused() {
    let (_, q, plan) = setup();
    let user = plan.user_part(&q);
    for i in 0..plan.servers.len() {
        assert_eq!(plan.server_part(&q, i).unwrap().user_part(), user);
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let key = SessionKey::generate(ParamId::Bfv2048T32V1, &mut rng).unwrap();
    let s = SessionId([7; 16]);
    let hello = |part_digest| {
        seco_common::msg(
            s,
            Party::User,
            0,
            Body::Hello {
                model: user.model.clone(),
                user_pk: Bytes::from(key.public_key().to_bytes()),
                part_digest,
                output: 0,
            },
        )
    };
    let mut variants = Vec::new();
    let mut other = user.clone();
    other.fixed_point.frac_bits += 1;
    variants.push(other);
    let mut other = user.clone();
    other.output_len += 1;
    variants.push(other);
    let mut other = user.clone();
    other.input_shape.push(1);
    variants.push(other);
    for other in variants {
        assert_ne!(other.digest(), user.digest());
        let mut g =
            ServerSession::new(server_config(&q, &plan, 0, s), Vec::new(), [1; 32]).unwrap();
        let err = g
            .handle(Input::Message {
                from: Party::User,
                msg: hello(other.digest()),
            })
            .unwrap_err();
        assert!(matches!(err, SecoError::UserPartMismatch { .. }), "{err}");
        assert!(err.is_fatal());
        assert!(err.to_string().contains("f = "), "{err}");
        // The driver aborts: the user hears why, the remotes (never opened) hear nothing.
        let ready = g.abort(None, &err.to_string());
        let to: Vec<Party> = ready.send.iter().map(|(p, _)| *p).collect();
        assert_eq!(to, vec![Party::User]);
    }
    let mut g = ServerSession::new(server_config(&q, &plan, 0, s), Vec::new(), [1; 32]).unwrap();
    g.handle(Input::Message {
        from: Party::User,
        msg: hello(user.digest()),
    })
    .unwrap();
}
