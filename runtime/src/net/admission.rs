//! Admission of incoming connections: bounds that keep a flood of handshakes from peers outside
//! the topology from starving the peers in it.
//!
//! A peer outside the allowlist is refused once its Noise handshake has told its peer id
//! (`allow` in `behaviour.rs`), but by then the node has done the handshake's work (X25519,
//! Ed25519, Yamux) for it. Three bounds come before that:
//!
//! | bound | where | default |
//! | --- | --- | --- |
//! | a token bucket per source IP: an incoming connection takes a token before its handshake starts; a connection that becomes an established one with an allowed peer gives it back, so only refused or failed handshakes use the bucket up | [`Behaviour`] (here) | 16 at once, 2 more per second |
//! | incoming connections in their handshake at once, from anyone | libp2p `connection_limits` | 64 |
//! | established connections with one peer (both directions) | libp2p `connection_limits` | 8 |
//!
//! Connections refused by these bounds are dropped before any byte of the handshake is read.
//! A legitimate peer whose source address is shared with a flooding one (the same NAT) can be
//! refused while the bucket of that address is empty; it dials again, and its sends retry.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::IpAddr;
use std::task::{Context, Poll};
use std::time::Instant;

use libp2p::core::{multiaddr::Protocol, transport::PortUse, ConnectedPoint, Endpoint, Multiaddr};
use libp2p::swarm::{
    behaviour::ConnectionEstablished, dummy, ConnectionDenied, ConnectionId, FromSwarm,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{connection_limits, PeerId};

/// Bounds on incoming connections (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnLimits {
    /// Incoming connections in their handshake at once, from anyone. Default 64.
    pub max_pending_incoming: u32,
    /// Established connections with one peer, both directions. Default 8.
    pub max_established_per_peer: u32,
    /// Incoming connections one source IP may start at once (the bucket's size). Default 16.
    pub per_ip_burst: u32,
    /// Tokens a source IP regains per second. Default 2.
    pub per_ip_per_second: f64,
    /// Source IPs whose buckets are remembered; a full bucket is forgotten first. Beyond, a new
    /// address is admitted untracked (the pending bound still holds). Default 4096.
    pub max_tracked_ips: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_pending_incoming: 64,
            max_established_per_peer: 8,
            per_ip_burst: 16,
            per_ip_per_second: 2.0,
            max_tracked_ips: 4096,
        }
    }
}

impl ConnLimits {
    /// libp2p's `connection_limits` behaviour for the pending and per-peer bounds.
    pub(crate) fn libp2p(&self) -> connection_limits::Behaviour {
        connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(self.max_pending_incoming))
                .with_max_established_per_peer(Some(self.max_established_per_peer)),
        )
    }
}

/// Why an incoming connection was refused before its handshake.
#[derive(Debug, Clone, Copy)]
pub struct RateLimited {
    /// The source address.
    pub ip: IpAddr,
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "too many incoming connections from {} (rate limit per source address)",
            self.ip
        )
    }
}

impl std::error::Error for RateLimited {}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The per-source-IP token bucket, as a behaviour without a protocol.
pub(crate) struct Behaviour {
    limits: ConnLimits,
    buckets: HashMap<IpAddr, Bucket>,
    /// Connections refused here so far (logs).
    pub(crate) refused: u64,
}

impl Behaviour {
    pub(crate) fn new(limits: ConnLimits) -> Self {
        Self {
            limits,
            buckets: HashMap::new(),
            refused: 0,
        }
    }

    fn burst(&self) -> f64 {
        f64::from(self.limits.per_ip_burst.max(1))
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let gained = now.duration_since(b.at).as_secs_f64() * self.limits.per_ip_per_second;
        b.tokens = (b.tokens + gained).min(self.burst());
        b.at = now;
    }

    /// Takes a token of `ip`; `false` when its bucket is empty.
    fn take(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.limits.max_tracked_ips {
            let burst = self.burst();
            let rate = self.limits.per_ip_per_second;
            self.buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if self.buckets.len() >= self.limits.max_tracked_ips {
                return true;
            }
        }
        let fresh = Bucket {
            tokens: self.burst(),
            at: now,
        };
        let mut b = *self.buckets.get(&ip).unwrap_or(&fresh);
        self.refill(&mut b, now);
        let ok = b.tokens >= 1.0;
        if ok {
            b.tokens -= 1.0;
        }
        self.buckets.insert(ip, b);
        ok
    }

    /// Gives `ip` its token back (an allowed peer got through).
    fn give_back(&mut self, ip: IpAddr, now: Instant) {
        let burst = self.burst();
        if let Some(mut b) = self.buckets.get(&ip).copied() {
            self.refill(&mut b, now);
            b.tokens = (b.tokens + 1.0).min(burst);
            self.buckets.insert(ip, b);
        }
    }
}

/// The IP address of a multiaddr (`/ip4/..` or `/ip6/..` first).
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        if self.take(ip, Instant::now()) {
            Ok(())
        } else {
            self.refused += 1;
            Err(ConnectionDenied::new(RateLimited { ip }))
        }
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        // Every behaviour accepted it: an allowed peer, its token goes back.
        if let FromSwarm::ConnectionEstablished(ConnectionEstablished {
            endpoint: ConnectedPoint::Listener { send_back_addr, .. },
            ..
        }) = event
        {
            if let Some(ip) = ip_of(send_back_addr) {
                self.give_back(ip, Instant::now());
            }
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// The logs of refused incoming connections: each at debug, and at warn the first one and then
/// at most one summary per [`RefusalLog::EVERY`] (a flood must not flood the logs too).
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    /// Refused by the allowlist, the rate limit, the connection bounds (since the start).
    counts: [u64; 3],
    /// The counts at the last warning, and when it was.
    warned: Option<([u64; 3], Instant)>,
}

impl RefusalLog {
    /// Time between two warnings.
    pub(crate) const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    /// Notes a connection refused with `cause` (from `ListenError::Denied`).
    pub(crate) fn note(
        &mut self,
        peer: Option<PeerId>,
        from: &Multiaddr,
        cause: &ConnectionDenied,
    ) {
        let kind = if cause.downcast_ref::<RateLimited>().is_some() {
            1
        } else if cause
            .downcast_ref::<connection_limits::Exceeded>()
            .is_some()
        {
            2
        } else {
            0
        };
        self.counts[kind] += 1;
        tracing::debug!(peer = ?peer, %from, %cause, "refused an incoming connection");
        let now = Instant::now();
        let [allow, rate, bound] = self.counts;
        match self.warned {
            // The first one in words (the words of the allowlist refusal are what operators
            // and `node/tests/processes.rs` look for).
            None if kind == 0 => tracing::warn!(peer = ?peer, %from, %cause, "refused connection from a peer outside the allowlist (further refusals are summed up every 10 s)"),
            None => tracing::warn!(peer = ?peer, %from, %cause, "refused an incoming connection before its handshake (further refusals are summed up every 10 s)"),
            Some((before, at)) if now.duration_since(at) >= Self::EVERY => tracing::warn!(
                outside_allowlist = allow - before[0],
                rate_limited = rate - before[1],
                over_connection_bounds = bound - before[2],
                "refused incoming connections in the last {:?} ({allow}, {rate}, {bound} since the start)",
                now.duration_since(at)
            ),
            Some(_) => return,
        }
        self.warned = Some((self.counts, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_refuses_beyond_its_burst_refills_and_takes_tokens_back() {
        let mut b = Behaviour::new(ConnLimits {
            per_ip_burst: 3,
            per_ip_per_second: 1.0,
            ..ConnLimits::default()
        });
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        let t = Instant::now();
        assert!((0..3).all(|_| b.take(ip, t)));
        assert!(!b.take(ip, t));
        assert!(b.take(other, t), "buckets are per address");
        assert!(b.take(ip, t + Duration::from_millis(1100)));
        assert!(!b.take(ip, t + Duration::from_millis(1100)));
        b.give_back(ip, t + Duration::from_millis(1100));
        assert!(b.take(ip, t + Duration::from_millis(1100)));
    }

    #[test]
    fn tracked_addresses_are_bounded() {
        let mut b = Behaviour::new(ConnLimits {
            per_ip_burst: 1,
            max_tracked_ips: 2,
            ..ConnLimits::default()
        });
        let t = Instant::now();
        let ips: Vec<IpAddr> = (2..6)
            .map(|i| format!("127.0.0.{i}").parse().unwrap())
            .collect();
        assert!(b.take(ips[0], t) && b.take(ips[1], t));
        // Both tracked buckets are empty: a third address is admitted untracked.
        assert!(b.take(ips[2], t) && b.take(ips[2], t));
        assert_eq!(b.buckets.len(), 2);
        // Once they are full again they are forgotten for a new one.
        assert!(b.take(ips[3], t + Duration::from_secs(10)));
        assert!(b.buckets.len() <= 2);
    }
}
