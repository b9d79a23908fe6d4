//! Fault injection between the application and the [`Client`], configured at run time by tests.
//!
//! [`FaultyClient`] implements [`Outbox`] like [`Client`], so code written against `Outbox` runs
//! unchanged under faults. Its [`Faults`] handle sets, at any time:
//!
//! | fault | outbound effect | seen by the sender |
//! | --- | --- | --- |
//! | drop (next N, or probability p) | message not sent | `Timeout` after `ack_timeout` |
//! | delay (fixed + jitter) | sent late | later `Ok` |
//! | duplicate (next N) | sent twice in a row | `Ok` (the receiver sees the same `seq` twice) |
//! | reorder (next N) | held until N are queued (or `ack_timeout` passes), then sent one by one in a shuffled order | each its own result |
//! | partition (set of peers) | not sent to them; their inbound messages are swallowed unanswered | `Timeout`, on both sides |
//! | crash | the event loop is stopped, every connection closes | `Shutdown` here, a failure or `Timeout` at peers |
//!
//! Randomness (drop probability, jitter, shuffles) comes from a ChaCha8 RNG seeded by the test, so
//! a run is reproducible as long as the test issues its sends in a fixed order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use libp2p::PeerId;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, oneshot};

use crate::net::{Client, Envelope, Event, NetError, Outbox, Reply, Result};

/// Parked replies of swallowed inbound messages, at most (beyond, they are dropped: the sender
/// then gets a `Dropped` rejection instead of a timeout).
const MAX_PARKED: usize = 4096;

/// Counters of what the layer did (for assertions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Outbound messages dropped.
    pub dropped: u64,
    /// Outbound messages sent twice.
    pub duplicated: u64,
    /// Outbound messages delayed.
    pub delayed: u64,
    /// Outbound messages held for reordering.
    pub reordered: u64,
    /// Batches of two or more held messages released in an order other than the one they were
    /// sent in (a batch released alone after `ack_timeout` is not one).
    pub shuffled_batches: u64,
    /// Outbound messages not sent because of a partition.
    pub partitioned: u64,
    /// Inbound messages swallowed (partition or crash).
    pub swallowed: u64,
}

type Held = (PeerId, Envelope, oneshot::Sender<Result<()>>);

#[derive(Debug)]
struct State {
    rng: ChaCha8Rng,
    drop_next: usize,
    drop_probability: f64,
    delay: Duration,
    jitter: Duration,
    duplicate_next: usize,
    reorder_next: usize,
    held: Vec<Held>,
    partition: HashSet<PeerId>,
    crashed: bool,
    parked: Vec<Reply>,
    stats: FaultStats,
}

/// The control handle of a [`FaultyClient`]; clones share the same configuration.
#[derive(Debug, Clone)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Faults {
    fn new(seed: u64) -> Self {
        let state = State {
            rng: ChaCha8Rng::seed_from_u64(seed),
            drop_next: 0,
            drop_probability: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            duplicate_next: 0,
            reorder_next: 0,
            held: Vec::new(),
            partition: HashSet::new(),
            crashed: false,
            parked: Vec::new(),
            stats: FaultStats::default(),
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the next `n` outbound messages.
    pub fn drop_next(&self, n: usize) {
        self.lock().drop_next = n;
    }

    /// Drops each outbound message with probability `p` (clamped to `0..=1`).
    pub fn drop_probability(&self, p: f64) {
        self.lock().drop_probability = p.clamp(0.0, 1.0);
    }

    /// Delays every outbound message by `fixed` plus a uniform jitter in `0..=jitter`.
    pub fn delay(&self, fixed: Duration, jitter: Duration) {
        let mut s = self.lock();
        s.delay = fixed;
        s.jitter = jitter;
    }

    /// Sends each of the next `n` outbound messages twice.
    pub fn duplicate_next(&self, n: usize) {
        self.lock().duplicate_next = n;
    }

    /// Holds the next `n` outbound messages and releases them in a shuffled order (never the
    /// original order when `n >= 2`).
    pub fn reorder_next(&self, n: usize) {
        self.lock().reorder_next = n;
    }

    /// Cuts this node off from `peers`, both ways (until [`Faults::heal`]).
    pub fn partition(&self, peers: impl IntoIterator<Item = PeerId>) {
        self.lock().partition.extend(peers);
    }

    /// Ends every partition; swallowed inbound messages get a `Dropped` answer.
    pub fn heal(&self) {
        let mut s = self.lock();
        s.partition.clear();
        s.parked.clear();
    }

    /// Removes every fault except a crash.
    pub fn clear(&self) {
        let mut s = self.lock();
        s.drop_next = 0;
        s.drop_probability = 0.0;
        s.delay = Duration::ZERO;
        s.jitter = Duration::ZERO;
        s.duplicate_next = 0;
        s.reorder_next = 0;
        s.partition.clear();
        s.parked.clear();
    }

    /// What the layer has done so far.
    pub fn stats(&self) -> FaultStats {
        self.lock().stats
    }

    /// Whether the node was crashed.
    pub fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Decides what to do with one inbound message: `Some(reply)` to deliver, `None` if swallowed.
    fn inbound(&self, peer: PeerId) -> bool {
        let s = self.lock();
        !(s.crashed || s.partition.contains(&peer))
    }

    fn park(&self, reply: Reply) {
        let mut s = self.lock();
        s.stats.swallowed += 1;
        if s.parked.len() < MAX_PARKED {
            s.parked.push(reply);
        }
    }
}

/// What happens to one outbound message.
enum Plan {
    Crashed,
    Lost,
    Hold(oneshot::Receiver<Result<()>>),
    Send { delay: Duration, copies: usize },
}

/// A [`Client`] with faults injected on the way out (and, through [`FaultyClient::events`], on
/// the way in).
#[derive(Debug, Clone)]
pub struct FaultyClient {
    client: Client,
    faults: Faults,
}

impl FaultyClient {
    /// Wraps `client`; `seed` makes the random faults reproducible.
    pub fn new(client: Client, seed: u64) -> Self {
        Self {
            client,
            faults: Faults::new(seed),
        }
    }

    /// The control handle.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The wrapped client (for listen, dial and other commands).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Filters an event stream: messages from partitioned peers, or any after a crash, are
    /// swallowed without an answer (their senders time out). Spawns a forwarding task.
    pub fn events(&self, mut inner: mpsc::Receiver<Event>) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(inner.max_capacity().max(1));
        let faults = self.faults.clone();
        tokio::spawn(async move {
            while let Some(event) = inner.recv().await {
                let event = match event {
                    Event::Message(m) if !faults.inbound(m.peer) => {
                        tracing::debug!(peer = %m.peer, "fault injection: swallowing inbound message");
                        faults.park(m.reply);
                        continue;
                    }
                    other => other,
                };
                if tx.send(event).await.is_err() {
                    break;
                }
            }
        });
        rx
    }

    /// Crashes the node: the event loop stops (connections close) and every later send fails
    /// with [`NetError::Shutdown`]; inbound messages are swallowed.
    pub async fn crash(&self) {
        self.faults.lock().crashed = true;
        self.client.shutdown().await;
    }

    fn plan(&self, peer: PeerId, envelope: &mut Option<Envelope>) -> Plan {
        let mut s = self.faults.lock();
        if s.crashed {
            return Plan::Crashed;
        }
        if s.partition.contains(&peer) {
            s.stats.partitioned += 1;
            return Plan::Lost;
        }
        let p = s.drop_probability;
        if s.drop_next > 0 || (p > 0.0 && s.rng.random_bool(p)) {
            s.drop_next = s.drop_next.saturating_sub(1);
            s.stats.dropped += 1;
            return Plan::Lost;
        }
        if s.reorder_next > 0 {
            if let Some(env) = envelope.take() {
                return Plan::Hold(hold(&mut s, &self.client, peer, env));
            }
        }
        let copies = if s.duplicate_next > 0 {
            s.duplicate_next -= 1;
            s.stats.duplicated += 1;
            2
        } else {
            1
        };
        let mut delay = s.delay;
        if !s.jitter.is_zero() {
            let max = u64::try_from(s.jitter.as_micros()).unwrap_or(u64::MAX);
            let j = s.rng.random_range(0..=max);
            delay += Duration::from_micros(j);
        }
        if !delay.is_zero() {
            s.stats.delayed += 1;
        }
        Plan::Send { delay, copies }
    }

    async fn send_faulty(&self, peer: PeerId, envelope: Envelope) -> Result<()> {
        let mut env = Some(envelope);
        let timeout = self.client.ack_timeout();
        match self.plan(peer, &mut env) {
            Plan::Crashed => Err(NetError::Shutdown),
            Plan::Lost => {
                // A lost message is seen by its sender as a missing ack.
                tokio::time::sleep(timeout).await;
                Err(NetError::Timeout { peer, timeout })
            }
            Plan::Hold(rx) => self.wait_held(rx, timeout).await,
            Plan::Send { delay, copies } => {
                let Some(env) = env else {
                    return Err(NetError::Shutdown);
                };
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if copies > 1 {
                    let first = self.client.send(peer, env.clone()).await;
                    let _ = self.client.send(peer, env).await;
                    return first;
                }
                self.client.send(peer, env).await
            }
        }
    }

    /// Waits for a held message's result; if the batch never fills, releases it after `timeout`.
    async fn wait_held(
        &self,
        mut rx: oneshot::Receiver<Result<()>>,
        timeout: Duration,
    ) -> Result<()> {
        tokio::select! {
            r = &mut rx => return r.unwrap_or(Err(NetError::Shutdown)),
            _ = tokio::time::sleep(timeout) => {}
        }
        {
            let mut s = self.faults.lock();
            if !s.held.is_empty() {
                s.reorder_next = 0;
                release(&mut s, &self.client);
            }
        }
        rx.await.unwrap_or(Err(NetError::Shutdown))
    }
}

/// Queues a message for reordering; releases the batch once `reorder_next` messages are held.
fn hold(
    s: &mut State,
    client: &Client,
    peer: PeerId,
    env: Envelope,
) -> oneshot::Receiver<Result<()>> {
    let (tx, rx) = oneshot::channel();
    s.held.push((peer, env, tx));
    s.stats.reordered += 1;
    if s.held.len() >= s.reorder_next {
        s.reorder_next = 0;
        release(s, client);
    }
    rx
}

/// Sends the held messages one after the other in a shuffled order that differs from the
/// original one (a deterministic function of the seed).
fn release(s: &mut State, client: &Client) {
    let held = std::mem::take(&mut s.held);
    let n = held.len();
    // Shuffle positions, not messages compared by `seq`: messages to different peers can carry
    // the same `seq`, and a reversal decided on equal `seq`s could restore the original order.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut s.rng);
    if n >= 2 && order.iter().copied().eq(0..n) {
        order.reverse();
    }
    if n >= 2 {
        s.stats.shuffled_batches += 1;
    }
    let mut slots: Vec<Option<Held>> = held.into_iter().map(Some).collect();
    let held: Vec<Held> = order.iter().filter_map(|&i| slots[i].take()).collect();
    let client = client.clone();
    tokio::spawn(async move {
        for (peer, env, tx) in held {
            let _ = tx.send(client.send(peer, env).await);
        }
    });
}

impl Outbox for FaultyClient {
    fn send(
        &self,
        peer: PeerId,
        envelope: Envelope,
    ) -> impl std::future::Future<Output = Result<()>> + Send {
        self.send_faulty(peer, envelope)
    }

    fn local_peer_id(&self) -> PeerId {
        self.client.local_peer_id()
    }
}
