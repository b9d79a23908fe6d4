//! The fault-injection layer behaves as configured, and the ack/timeout machinery turns every
//! lost message or peer into an error, never a hang.

mod common;

use std::time::{Duration, Instant};

use common::*;
use seco_runtime::fault::FaultyClient;
use seco_runtime::net::{NetError, Outbox};

const ACK: Duration = Duration::from_millis(400);

async fn pair() -> (Node, Node) {
    let mut nodes = mesh(2, |c| c.ack_timeout = ACK).await;
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    // Connect first, so that the short ack timeout only covers steady-state round trips.
    a.client.dial(p2p_addr(&b)).await.unwrap();
    (a, b)
}

#[tokio::test]
async fn drop_next_loses_exactly_n_messages_as_timeouts() {
    let (a, b) = pair().await;
    let mut inbox = ack_all(b.events);
    let fa = FaultyClient::new(a.client.clone(), 1);
    fa.faults().drop_next(2);
    for seq in 1..=2 {
        let err = fa.send(b.peer, env(1, seq, b"x")).await.unwrap_err();
        assert!(matches!(err, NetError::Timeout { .. }), "{err}");
    }
    fa.send(b.peer, env(1, 3, b"x")).await.unwrap();
    assert_eq!(inbox.recv().await.unwrap().1.seq, 3);
    assert!(inbox.try_recv().is_err());
    assert_eq!(fa.faults().stats().dropped, 2);
}

#[tokio::test]
async fn drop_probability_is_deterministic_given_the_seed() {
    let (a, b) = pair().await;
    let _inbox = ack_all(b.events);
    let mut patterns = Vec::new();
    for _ in 0..2 {
        let fa = FaultyClient::new(a.client.clone(), 42);
        fa.faults().drop_probability(0.5);
        let mut pattern = Vec::new();
        for seq in 0..8 {
            pattern.push(fa.send(b.peer, env(1, seq, b"p")).await.is_ok());
        }
        patterns.push(pattern);
    }
    assert_eq!(patterns[0], patterns[1]);
    assert!(
        patterns[0].contains(&true) && patterns[0].contains(&false),
        "{:?}",
        patterns[0]
    );
}

#[tokio::test]
async fn delay_postpones_delivery() {
    let (a, b) = pair().await;
    let mut inbox = ack_all(b.events);
    let fa = FaultyClient::new(a.client.clone(), 2);
    fa.faults()
        .delay(Duration::from_millis(150), Duration::from_millis(50));
    let t = Instant::now();
    fa.send(b.peer, env(1, 1, b"late")).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(inbox.recv().await.unwrap().1.payload, b"late");
    assert_eq!(fa.faults().stats().delayed, 1);
}

#[tokio::test]
async fn duplicate_delivers_the_same_seq_twice() {
    let (a, b) = pair().await;
    let mut inbox = ack_all(b.events);
    let fa = FaultyClient::new(a.client.clone(), 3);
    fa.faults().duplicate_next(1);
    fa.send(b.peer, env(1, 10, b"dup")).await.unwrap();
    fa.send(b.peer, env(1, 11, b"once")).await.unwrap();
    let seqs: Vec<u64> = [(); 3].iter().map(|_| 0).collect();
    let mut got = Vec::new();
    for _ in seqs {
        got.push(inbox.recv().await.unwrap().1.seq);
    }
    assert_eq!(got, vec![10, 10, 11]);
}

#[tokio::test]
async fn reorder_releases_held_messages_out_of_order() {
    let (a, b) = pair().await;
    let mut inbox = ack_all(b.events);
    let fa = FaultyClient::new(a.client.clone(), 4);
    fa.faults().reorder_next(4);
    let sends: Vec<_> = (1..=4u64)
        .map(|seq| {
            let (fa, p) = (fa.clone(), b.peer);
            tokio::spawn(async move { fa.send(p, env(1, seq, b"r")).await })
        })
        .collect();
    for s in sends {
        s.await.unwrap().unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(inbox.recv().await.unwrap().1.seq);
    }
    assert_ne!(got, vec![1, 2, 3, 4]);
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1, 2, 3, 4]);
    // An unfilled batch is released after the ack timeout instead of hanging.
    fa.faults().reorder_next(3);
    fa.send(b.peer, env(1, 5, b"alone")).await.unwrap();
    assert_eq!(inbox.recv().await.unwrap().1.seq, 5);
}

#[tokio::test]
async fn partition_blocks_both_directions_until_healed() {
    let (a, b) = pair().await;
    let fa = FaultyClient::new(a.client.clone(), 5);
    let a_events = ack_all(fa.events(a.events));
    let mut b_inbox = ack_all(b.events);
    let mut a_inbox = a_events;
    fa.faults().partition([b.peer]);
    let err = fa.send(b.peer, env(1, 1, b"out")).await.unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }), "{err}");
    let err = b.client.send(a.peer, env(1, 1, b"in")).await.unwrap_err();
    assert!(
        matches!(err, NetError::Timeout { .. } | NetError::Failed { .. }),
        "{err}"
    );
    assert!(b_inbox.try_recv().is_err() && a_inbox.try_recv().is_err());
    assert_eq!(fa.faults().stats().swallowed, 1);
    fa.faults().heal();
    fa.send(b.peer, env(1, 2, b"out")).await.unwrap();
    b.client.send(a.peer, env(1, 2, b"in")).await.unwrap();
    assert_eq!(b_inbox.recv().await.unwrap().1.seq, 2);
    assert_eq!(a_inbox.recv().await.unwrap().1.seq, 2);
}

#[tokio::test]
async fn crash_surfaces_as_errors_on_both_sides() {
    let (a, b) = pair().await;
    let _a_inbox = ack_all(a.events);
    let fb = FaultyClient::new(b.client.clone(), 6);
    let _b_inbox = ack_all(fb.events(b.events));
    a.client.send(b.peer, env(1, 1, b"alive")).await.unwrap();
    fb.crash().await;
    assert!(fb.faults().is_crashed());
    assert!(matches!(
        fb.send(a.peer, env(1, 1, b"x")).await,
        Err(NetError::Shutdown)
    ));
    b.task.await.unwrap();
    let t = Instant::now();
    let err = a
        .client
        .send(b.peer, env(1, 2, b"dead?"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Failed { .. } | NetError::Timeout { .. }),
        "{err}"
    );
    // Bounded by the ack timeout (plus scheduling slack), not a hang.
    assert!(t.elapsed() < ACK * 10);
}
