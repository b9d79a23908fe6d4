//! Swarms on 127.0.0.1 exchanging messages: small, chunked, three-way, rejections, timeouts,
//! Kademlia discovery.

mod common;

use std::time::Duration;

use common::*;
use seco_runtime::net::{Event, NetError, Reject};
use seco_runtime::PeerId;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn two_nodes_small_message_is_acked_after_the_application_acks() {
    let mut nodes = mesh(2, |_| {}).await;
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    let (a_client, b_peer) = (a.client.clone(), b.peer);
    let sender = tokio::spawn(async move { a_client.send(b_peer, env(7, 1, b"hello")).await });
    let mut events = b.events;
    let m = next_message(&mut events, WAIT).await.expect("message");
    assert_eq!(m.peer, a.peer);
    assert_eq!(m.envelope, env(7, 1, b"hello"));
    assert_eq!(m.envelope.chunk(), None);
    assert!(
        !sender.is_finished(),
        "the sender must wait for the application's ack"
    );
    m.reply.ack();
    sender.await.unwrap().unwrap();
}

#[tokio::test]
async fn multi_megabyte_messages_are_chunked_and_reassembled() {
    // 64 KiB chunks: a 3 MiB message is 49 chunks, 8 in flight, arriving in any order.
    let mut nodes = mesh(2, |c| {
        c.limits.chunk_size = 64 * 1024;
        c.send_window = 8;
    })
    .await;
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    let mut inbox = ack_all(b.events);
    for (seq, len) in [
        (1u64, 3 * 1024 * 1024 + 17),
        (2, 64 * 1024),
        (3, 64 * 1024 + 1),
        (4, 0),
    ] {
        let payload = bytes(len, seq);
        a.client.send(b.peer, env(2, seq, &payload)).await.unwrap();
        let (from, got) = inbox.recv().await.unwrap();
        assert_eq!(from, a.peer);
        assert_eq!((got.seq, got.payload.len()), (seq, len));
        assert!(got.payload == payload, "payload {seq} differs");
    }
}

#[tokio::test]
async fn default_limits_carry_a_16_mib_message() {
    let mut nodes = mesh(2, |_| {}).await;
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    let mut inbox = ack_all(b.events);
    let payload = bytes(16 * 1024 * 1024, 9);
    a.client.send(b.peer, env(1, 1, &payload)).await.unwrap();
    let (_, got) = inbox.recv().await.unwrap();
    assert!(got.payload == payload);
}

#[tokio::test]
async fn three_nodes_all_pairs_concurrently() {
    let nodes = mesh(3, |c| c.limits.chunk_size = 256 * 1024).await;
    let peers: Vec<PeerId> = nodes.iter().map(|n| n.peer).collect();
    let mut inboxes = Vec::new();
    let mut clients = Vec::new();
    for n in nodes {
        clients.push(n.client.clone());
        inboxes.push(ack_all(n.events));
    }
    let mut sends = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        for (j, &p) in peers.iter().enumerate() {
            if i != j {
                let c = c.clone();
                let payload = bytes(1024 * 1024 + i * 10 + j, (i * 3 + j) as u64);
                sends.push(tokio::spawn(async move {
                    c.send(p, env(1, (i * 3 + j) as u64, &payload)).await
                }));
            }
        }
    }
    for s in sends {
        s.await.unwrap().unwrap();
    }
    for (j, inbox) in inboxes.iter_mut().enumerate() {
        let mut from: Vec<PeerId> = Vec::new();
        for _ in 0..2 {
            let (peer, e) = inbox.recv().await.unwrap();
            let i = peers.iter().position(|p| *p == peer).unwrap();
            assert_eq!(
                e.payload,
                bytes(1024 * 1024 + i * 10 + j, (i * 3 + j) as u64)
            );
            from.push(peer);
        }
        from.sort();
        let mut expected: Vec<PeerId> = peers
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != j)
            .map(|(_, p)| *p)
            .collect();
        expected.sort();
        assert_eq!(from, expected);
    }
}

#[tokio::test]
async fn application_rejection_and_dropped_reply_reach_the_sender() {
    let mut nodes = mesh(2, |_| {}).await;
    let mut b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    let (c, p) = (a.client.clone(), b.peer);
    let s = tokio::spawn(async move { c.send(p, env(1, 1, b"x")).await });
    next_message(&mut b.events, WAIT)
        .await
        .unwrap()
        .reply
        .reject(7);
    let err = s.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Rejected {
                reason: Reject::Application(7),
                ..
            }
        ),
        "{err}"
    );

    let (c, p) = (a.client.clone(), b.peer);
    let s = tokio::spawn(async move { c.send(p, env(1, 2, b"y")).await });
    drop(next_message(&mut b.events, WAIT).await.unwrap());
    let err = s.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Rejected {
                reason: Reject::Dropped,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn unanswered_message_times_out() {
    let mut nodes = mesh(2, |c| c.ack_timeout = Duration::from_millis(500)).await;
    let mut b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    let (c, p) = (a.client.clone(), b.peer);
    let s = tokio::spawn(async move { c.send(p, env(1, 1, b"x")).await });
    let held = next_message(&mut b.events, WAIT).await.unwrap();
    let err = s.await.unwrap().unwrap_err();
    assert!(
        matches!(err, NetError::Timeout { .. } | NetError::Failed { .. }),
        "{err}"
    );
    drop(held);
}

#[tokio::test]
async fn peer_gone_is_an_error_not_a_hang() {
    let mut nodes = mesh(2, |c| c.ack_timeout = Duration::from_secs(2)).await;
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    let b_events = ack_all(b.events);
    a.client.send(b.peer, env(1, 1, b"before")).await.unwrap();
    b.client.shutdown().await;
    b.task.await.unwrap();
    drop(b_events);
    let err = a
        .client
        .send(b.peer, env(1, 2, b"after"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Failed { .. } | NetError::Timeout { .. }),
        "{err}"
    );
    // The stopped node's own client reports the shutdown.
    assert!(matches!(
        b.client.send(a.peer, env(1, 3, b"x")).await,
        Err(NetError::Shutdown)
    ));
}

#[tokio::test]
async fn local_refusals_too_large_and_not_allowed() {
    let nodes = mesh(2, |c| c.limits.max_message = 1000).await;
    let err = nodes[0]
        .client
        .send(nodes[1].peer, env(1, 1, &[0; 1001]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NetError::TooLarge {
                len: 1001,
                max: 1000
            }
        ),
        "{err}"
    );
    let stranger = PeerId::random();
    let err = nodes[0]
        .client
        .send(stranger, env(1, 1, b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::NotAllowed(p) if p == stranger),
        "{err}"
    );
}

#[tokio::test]
async fn full_event_queue_answers_busy() {
    let mut nodes = mesh(2, |c| c.limits.event_queue = 1).await;
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    // Nobody reads b's events: the first message fills the queue (and waits for its ack),
    // the second is refused at once.
    let (c, p) = (a.client.clone(), b.peer);
    let first = tokio::spawn(async move { c.send(p, env(1, 1, b"1")).await });
    let mut busy = false;
    for seq in 2..20 {
        if let Err(NetError::Rejected {
            reason: Reject::Busy,
            ..
        }) = a.client.send(b.peer, env(1, seq, b"2")).await
        {
            busy = true;
            break;
        }
    }
    assert!(busy);
    drop(b.events);
    assert!(first.await.unwrap().is_err());
}

#[tokio::test]
async fn kademlia_finds_a_peer_known_only_to_the_bootstrap_node() {
    let keys: Vec<_> = (0..3)
        .map(|_| seco_runtime::Keypair::generate_ed25519())
        .collect();
    let peers: Vec<PeerId> = keys.iter().map(|k| k.public().to_peer_id()).collect();
    let mut it = keys.into_iter();
    // B is the bootstrap node; A and C only know B's address.
    let b = start(it.next().unwrap(), config(peers.iter().copied())).await;
    let mut bootstrap = config(peers.iter().copied());
    bootstrap.bootstrap = vec![p2p_addr(&b)];
    let a = start(it.next().unwrap(), bootstrap.clone()).await;
    let c = start(it.next().unwrap(), bootstrap).await;
    let _b_inbox = ack_all(b.events);
    let mut c_inbox = ack_all(c.events);
    // Wait until C is connected to B and identified (B then knows C's listen address).
    for _ in 0..100 {
        if b.client.connected_peers().await.unwrap().contains(&c.peer) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut found = Err(NetError::PeerNotFound(c.peer));
    for _ in 0..20 {
        found = a.client.find_peer(c.peer).await;
        if found.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let addrs = found.expect("C found through B");
    assert!(
        addrs
            .iter()
            .all(|a| a.to_string().starts_with("/ip4/127.0.0.1/")),
        "{addrs:?}"
    );
    a.client.send(c.peer, env(1, 1, b"via dht")).await.unwrap();
    assert_eq!(c_inbox.recv().await.unwrap().1.payload, b"via dht");
    drop(a.events);
}

#[tokio::test]
async fn status_events_report_listening_and_connections() {
    let mut nodes = mesh(2, |_| {}).await;
    let mut b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    a.client.dial(p2p_addr(&b)).await.unwrap();
    let mut saw_listen = false;
    let mut saw_connect = false;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), b.events.recv()).await {
        match e {
            Event::Listening { address } => saw_listen |= address == b.addr,
            Event::PeerConnected { peer, .. } => saw_connect |= peer == a.peer,
            _ => {}
        }
        if saw_listen && saw_connect {
            break;
        }
    }
    assert!(saw_listen && saw_connect);
}
