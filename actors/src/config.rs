//! Settings shared by the actors: parameter sets, timeouts per phase, bounds.

use std::time::Duration;

use seco_protocols::mhe::ParamId;

// The collective key's parameter set is the split's (`ServerPart::param`, chosen by
// `seco_protocols::plan::choose_param`), not a constant of the deployment.
/// Parameter set of the user's session key (result delivery).
pub const USER_PARAM: ParamId = ParamId::Bfv2048T32V1;

/// Explicit timeouts per phase (DESIGN.md s.7: a lost peer surfaces as a session error, not a
/// hang). A topology file may set all but `tick` in `[timeouts]` (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Session open, including the collective key generation of the first session: from the
    /// user's `Hello` (gateway), the gateway's `Open` (remote) or session creation (user) until
    /// the session is ready. Default 120 s.
    pub open: Duration,
    /// Preparation of one bundle, from its first message at this party until it is complete
    /// (gateway: until every server reported it). Default 300 s.
    pub prep: Duration,
    /// One inference, from its first message at this party until its result. Default 60 s.
    pub inference: Duration,
    /// Acknowledgement of one message (chunk) by the receiving node. Default 30 s.
    pub ack: Duration,
    /// How long sends to an unreachable peer are retried (dial failures, busy receiver) before
    /// the message counts as lost. Default 10 s.
    pub retry: Duration,
    /// A session with no message for this long expires: the gateway closes it on every peer
    /// (`Close { Expired }` to the remotes and the user), its records and unused bundles are
    /// deleted and its slot is freed. A remote waits twice as long before it expires a session
    /// on its own (the gateway's `Close` normally comes first); a record found in the store at
    /// start expires if no message for it arrives within this time. Default 5 min.
    pub idle: Duration,
    /// A server whose connection closed and that cannot be reached again within this time is
    /// lost: every session with work in flight (opening, a bundle in preparation, an
    /// inference) aborts at once with the phase and the peer's role, instead of waiting for
    /// its phase deadline. Default 3 s.
    pub grace: Duration,
    /// How often deadlines are checked. Default 250 ms.
    pub tick: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            open: Duration::from_secs(120),
            prep: Duration::from_secs(300),
            inference: Duration::from_secs(60),
            ack: Duration::from_secs(30),
            retry: Duration::from_secs(10),
            idle: Duration::from_secs(300),
            grace: Duration::from_secs(3),
            tick: Duration::from_millis(250),
        }
    }
}

/// Bounds on what peers can make a node hold (STYLE.md 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sessions open at once at a server; further `Hello`/`Open` are refused. Default 64.
    pub max_sessions: usize,
    /// Inbound messages queued for one session actor and not yet handled; beyond, the sender is
    /// answered `Busy` and retries. Default 256.
    pub max_session_queue: usize,
    /// Times a crashed session actor is restarted from the store before the session is aborted.
    /// Default 3.
    pub max_restarts: u32,
    /// Messages of sessions without an actor queued for the node actor; beyond, senders are
    /// answered `Busy` and retry. Default 64.
    pub max_unrouted: usize,
    /// Bytes of outbound messages queued for one peer and not yet acknowledged (over all
    /// sessions); beyond, a session's message fails at once ("outbound queue full"), which
    /// aborts what it belonged to. `Abort` and `Close` are always queued. Default 512 MiB.
    pub max_queued_per_peer: usize,
    /// The same over every peer. Default 1 GiB.
    pub max_queued_bytes: usize,
    /// Messages sent to one peer at once (each of its own session's queue; every message
    /// keeps up to the network's send window of chunks in flight, below the runtime's
    /// concurrent stream limit per connection). Default 16.
    pub max_sends_per_peer: usize,
    /// Bundles this server may lead under one collective key, if shorter than its noise budget
    /// gives (`ServerSession::key_lifetime`, docs/mhe.md "Lifetime of a key"). Default none.
    pub key_lifetime: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: 64,
            max_session_queue: 256,
            max_restarts: 3,
            max_unrouted: 64,
            max_queued_per_peer: 512 * 1024 * 1024,
            max_queued_bytes: 1024 * 1024 * 1024,
            max_sends_per_peer: 16,
            key_lifetime: None,
        }
    }
}
