//! Fast loss detection (issue 13, item 1): when the last connection to a server closes, a
//! watcher tries to reach it again (its topology addresses, else a Kademlia lookup) for
//! `Timeouts::grace`; a server that cannot be reached by then is lost, and every session
//! actor hears it ([`super::NetworkMsg::PeerLost`]): a session with work in flight aborts at
//! once, naming the phase and the peer's role, instead of waiting for its phase deadline.
//!
//! A connection that closes because it was idle, or a peer that restarts within the grace,
//! is reached again and nothing happens (a restarted peer's own session state decides then).
//! A frozen peer (SIGSTOP) keeps its connection open; the runtime's heartbeat
//! (`Timeouts::heartbeat`) closes a connection whose peer answers no ping for that long, and
//! the watcher then finds the peer unreachable (a frozen process completes no handshake).
//!
//! A server that restarted within the grace is recognised when it connects again: its identify
//! agent version names another incarnation (`seco_runtime::net`, `incarnation.rs`). Every
//! session that existed when its last connection closed hears it
//! ([`SessionMsg::PeerRestarted`]): one still opening (key generation, OT setup) aborts at
//! once (the restarted server lost that state), a ready one aborts its bundles in preparation
//! (`session/loss.rs`). Sessions opened since are left alone: nothing of them reached the
//! old process.

use std::time::Duration;

use ractor::ActorRef;
use seco_runtime::{Multiaddr, PeerId};
use tokio::time::Instant;

use super::{NetworkMsg, NetworkState, Transport};
use crate::msgs::SessionMsg;
use crate::topology::PeerRole;

/// Pause between two attempts to reach the peer again.
const ATTEMPT_EVERY: Duration = Duration::from_millis(250);

/// Watches `peer` after its last connection closed; reports [`NetworkMsg::PeerLost`] to
/// `actor` if it cannot be reached within `grace`, else [`NetworkMsg::PeerBack`].
pub(super) fn watch(
    transport: Transport,
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    grace: Duration,
    actor: ActorRef<NetworkMsg>,
) {
    tokio::spawn(async move {
        let reached = reach(&transport, peer, &addrs, grace).await;
        let msg = if reached {
            NetworkMsg::PeerBack(peer)
        } else {
            NetworkMsg::PeerLost(peer)
        };
        let _ = actor.cast(msg);
    });
}

/// Whether `peer` is connected again, or can be dialed, before `grace` has passed.
async fn reach(transport: &Transport, peer: PeerId, addrs: &[Multiaddr], grace: Duration) -> bool {
    let client = transport.client();
    let deadline = Instant::now() + grace;
    loop {
        match client.connected_peers().await {
            Ok(peers) if peers.contains(&peer) => return true,
            Ok(_) => {}
            // The network is shutting down: nothing to report.
            Err(_) => return true,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut targets = addrs.to_vec();
        if targets.is_empty() {
            if let Ok(Ok(found)) = tokio::time::timeout(left, client.find_peer(peer)).await {
                targets = found;
            }
        }
        for addr in targets {
            // `dial` wants the peer id at the end of the address.
            let addr = addr.clone().with_p2p(peer).unwrap_or(addr);
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(Ok(_)) = tokio::time::timeout(left, client.dial(addr)).await {
                return true;
            }
        }
        tokio::time::sleep(ATTEMPT_EVERY.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }
}

impl NetworkState {
    /// A server's last connection closed: remembered for restart detection, and watched.
    pub(super) fn peer_disconnected(&mut self, peer: PeerId) {
        if let Some(PeerRole::Server(_)) = self.topology.peer_role(&peer) {
            self.disconnected.insert(peer, std::time::Instant::now());
        }
        self.watch(peer);
    }

    /// A server announced a new incarnation: it restarted (module docs).
    pub(super) fn peer_restarted(&mut self, peer: PeerId) {
        // Servers only: a user runs one process per `seco infer`, several at once under one
        // identity, and each announces its own incarnation.
        let Some(role @ PeerRole::Server(_)) = self.topology.peer_role(&peer) else {
            return;
        };
        // Without a closed connection seen here, every session is older than the restart.
        let since = self
            .disconnected
            .get(&peer)
            .copied()
            .unwrap_or_else(std::time::Instant::now);
        tracing::warn!(node = %self.name, %peer, "server restarted: its sessions' in-memory state is gone");
        for route in self.routes.values() {
            let _ = route
                .actor
                .cast(SessionMsg::PeerRestarted { peer, role, since });
        }
    }
}
