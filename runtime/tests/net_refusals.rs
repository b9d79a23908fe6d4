//! Hostile and unknown peers: allowlist refusal, oversized frames from a hand-made peer, garbage
//! envelopes answered with a typed rejection.

mod common;

use std::io;
use std::time::Duration;

use common::*;
use futures::prelude::*;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{noise, tcp, yamux, StreamProtocol, Swarm, SwarmBuilder};
use seco_runtime::net::{
    read_frame, Ack, Event, NetError, Reject, DEFAULT_MAX_FRAME, MAX_ACK_FRAME, MESSAGE_PROTOCOL,
};
use seco_runtime::{Keypair, PeerId};

/// A peer with an identity that `b` does not know connects and sends: nothing is delivered, the
/// connection is refused.
#[tokio::test]
async fn unknown_identity_is_refused_and_nothing_delivered() {
    let b_key = Keypair::generate_ed25519();
    let b_peer = b_key.public().to_peer_id();
    let friend = Keypair::generate_ed25519();
    let mut b = start(b_key, config([friend.public().to_peer_id()])).await;
    // The outsider allows b (so it tries), b does not allow the outsider.
    let outsider = start(Keypair::generate_ed25519(), config([b_peer])).await;
    outsider
        .client
        .add_address(b_peer, b.addr.clone())
        .await
        .unwrap();
    let err = outsider
        .client
        .send(b_peer, env(1, 1, b"let me in"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Failed { .. } | NetError::Timeout { .. }),
        "{err}"
    );
    // The outsider's own side may complete the handshake, but b drops the connection at once.
    let _ = outsider.client.dial(p2p_addr(&b)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!outsider
        .client
        .connected_peers()
        .await
        .unwrap()
        .contains(&b_peer));
    assert!(!b
        .client
        .connected_peers()
        .await
        .unwrap()
        .contains(&outsider.peer));
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(300), b.events.recv()).await
    {
        assert!(
            !matches!(e, Event::Message(_) | Event::PeerConnected { .. }),
            "delivered: {e:?}"
        );
    }
}

/// Removing a peer from the allowlist at run time closes its connections and stops its messages.
#[tokio::test]
async fn disallow_at_run_time_cuts_the_peer_off() {
    let mut nodes = mesh(2, |c| c.ack_timeout = Duration::from_secs(2)).await;
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    let mut inbox = ack_all(b.events);
    a.client.send(b.peer, env(1, 1, b"ok")).await.unwrap();
    inbox.recv().await.unwrap();
    b.client.disallow(a.peer).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(a.client.send(b.peer, env(1, 2, b"no")).await.is_err());
    assert!(inbox.try_recv().is_err());
    assert!(!b.client.connected_peers().await.unwrap().contains(&a.peer));
}

/// A codec that writes raw bytes as the request (no framing of its own) and reads our ack frame.
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Ack;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::Unsupported.into())
    }
    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Ack> {
        let body = read_frame(io, MAX_ACK_FRAME).await?;
        ciborium::from_reader(body.as_slice()).map_err(|e| io::Error::other(e.to_string()))
    }
    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&req).await?;
        io.flush().await
    }
    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Ack,
    ) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[derive(NetworkBehaviour)]
struct RawBehaviour {
    rr: request_response::Behaviour<RawCodec>,
}

fn raw_swarm(key: Keypair) -> Swarm<RawBehaviour> {
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| RawBehaviour {
            rr: request_response::Behaviour::new(
                [(MESSAGE_PROTOCOL, ProtocolSupport::Outbound)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(5)),
            ),
        })
        .unwrap()
        .build()
}

/// Sends `raw` from the hand-made peer to `to` and returns the outcome.
async fn raw_request(
    swarm: &mut Swarm<RawBehaviour>,
    to: PeerId,
    raw: Vec<u8>,
) -> Result<Ack, String> {
    swarm.behaviour_mut().rr.send_request(&to, raw);
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::Behaviour(RawBehaviourEvent::Rr(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            })) => return Ok(response),
            SwarmEvent::Behaviour(RawBehaviourEvent::Rr(
                request_response::Event::OutboundFailure { error, .. },
            )) => return Err(error.to_string()),
            _ => {}
        }
    }
}

fn frame(len_field: u32, body: &[u8]) -> Vec<u8> {
    let mut v = len_field.to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[tokio::test]
async fn oversized_and_garbage_frames_from_a_hand_made_peer() {
    let raw_key = Keypair::generate_ed25519();
    let raw_peer = raw_key.public().to_peer_id();
    let b_key = Keypair::generate_ed25519();
    let b_peer = b_key.public().to_peer_id();
    let friend = start(Keypair::generate_ed25519(), config([b_peer])).await;
    let b = start(b_key, config([raw_peer, friend.peer])).await;
    friend
        .client
        .add_address(b_peer, b.addr.clone())
        .await
        .unwrap();
    let mut inbox = ack_all(b.events);
    let mut raw = raw_swarm(raw_key);
    raw.add_peer_address(b_peer, b.addr.clone());

    // A 3 GiB announcement followed by a few bytes: refused after the 4-byte header.
    let r = raw_request(&mut raw, b_peer, frame(3 << 30, &[0; 64])).await;
    assert!(r.is_err(), "{r:?}");
    // One byte over the limit, with the bytes actually sent.
    let over = (DEFAULT_MAX_FRAME + 1) as u32;
    let r = raw_request(
        &mut raw,
        b_peer,
        frame(over, &vec![0; DEFAULT_MAX_FRAME + 1]),
    )
    .await;
    assert!(r.is_err(), "{r:?}");
    // A well-framed garbage envelope: a typed rejection comes back.
    let r = raw_request(&mut raw, b_peer, frame(5, b"\xff\x00garb")).await;
    assert_eq!(r, Ok(Ack::Rejected(Reject::Malformed)));
    // Truncated frame (announces 100, sends 10, closes): refused.
    let r = raw_request(&mut raw, b_peer, frame(100, &[1; 10])).await;
    assert!(
        r.is_err() || r == Ok(Ack::Rejected(Reject::Malformed)),
        "{r:?}"
    );

    // Nothing was delivered, and b still serves well-behaved peers.
    assert!(inbox.try_recv().is_err());
    friend
        .client
        .send(b_peer, env(1, 1, b"fine"))
        .await
        .unwrap();
    assert_eq!(inbox.recv().await.unwrap().1.payload, b"fine");
}
