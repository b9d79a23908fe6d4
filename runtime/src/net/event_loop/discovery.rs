//! Discovery in the event loop: addresses learnt from the topology, identify, mDNS and
//! Kademlia, and the answers to Kademlia bootstrap and peer lookups.

use libp2p::{identify, kad, mdns, Multiaddr, PeerId};

use super::EventLoop;
use crate::net::error::NetError;
use crate::net::event::Event;

impl EventLoop {
    pub(super) fn remember(&mut self, peer: PeerId, addr: Multiaddr) {
        self.swarm.add_peer_address(peer, addr.clone());
        self.swarm.behaviour_mut().kad.add_address(&peer, addr);
    }

    pub(super) fn on_identify(&mut self, event: identify::Event) {
        if let identify::Event::Received { peer_id, info, .. } = event {
            if self.incarnations.announce(peer_id, &info.agent_version) {
                tracing::info!(peer = %peer_id, "peer restarted (new incarnation)");
                self.emit(Event::PeerRestarted { peer: peer_id });
            }
            for addr in info.listen_addrs {
                self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
            }
        }
    }

    pub(super) fn on_mdns(&mut self, event: mdns::Event) {
        if let mdns::Event::Discovered(found) = event {
            for (peer, addr) in found {
                if self.swarm.behaviour().allow.allowed_peers().contains(&peer) {
                    tracing::info!(%peer, %addr, "discovered by mDNS");
                    self.remember(peer, addr);
                }
            }
        }
    }

    pub(super) fn on_kad(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            return;
        };
        match result {
            kad::QueryResult::Bootstrap(r) if step.last => {
                if let Some(reply) = self.pending_bootstraps.remove(&id) {
                    let _ = reply.send(
                        r.map(|_| ())
                            .map_err(|e| NetError::Bootstrap(e.to_string())),
                    );
                }
            }
            kad::QueryResult::GetClosestPeers(r) => {
                let Some((target, reply)) = self.pending_finds.remove(&id) else {
                    return;
                };
                let peers = match r {
                    Ok(ok) => ok.peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                let addrs: Vec<Multiaddr> = peers
                    .into_iter()
                    .filter(|p| p.peer_id == target)
                    .flat_map(|p| p.addrs)
                    .collect();
                for addr in &addrs {
                    self.swarm.add_peer_address(target, addr.clone());
                }
                let _ = reply.send(if addrs.is_empty() {
                    Err(NetError::PeerNotFound(target))
                } else {
                    Ok(addrs)
                });
            }
            _ => {}
        }
    }
}
