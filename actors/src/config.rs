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
    /// (gateway: until every server reported it). Default (`None`): scaled to the split's
    /// circuits at a server ([`Timeouts::prep_for`]), [`USER_PREP`] at the user.
    pub prep: Option<Duration>,
    /// One inference, from its first message at this party until its result. Default
    /// (`None`): scaled at a server ([`Timeouts::inference_for`]), [`USER_INFERENCE`] at the
    /// user.
    pub inference: Option<Duration>,
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
    /// Heartbeat: a connection whose peer does not answer a ping (sent every half of this)
    /// within this time is closed, so a frozen peer (SIGSTOP, a hung host) is then handled as
    /// a lost one (`grace`) instead of only through ack timeouts. Default 10 s.
    pub heartbeat: Duration,
    /// How often deadlines are checked. Default 250 ms.
    pub tick: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            open: Duration::from_secs(120),
            prep: None,
            inference: None,
            ack: Duration::from_secs(30),
            retry: Duration::from_secs(10),
            idle: Duration::from_secs(300),
            grace: Duration::from_secs(3),
            heartbeat: Duration::from_secs(10),
            tick: Duration::from_millis(250),
        }
    }
}

/// The user's wait for one bundle when the topology sets no `prep`: it does not know the
/// split's circuits, and the gateway's scaled deadline (which aborts with the reason) comes
/// first for every shipped model.
pub const USER_PREP: Duration = Duration::from_secs(300);
/// The user's wait for one inference when the topology sets no `inference`.
pub const USER_INFERENCE: Duration = Duration::from_secs(60);

/// Scaled deadlines (issue 13): a fixed part for round trips and store flushes, plus a part
/// proportional to the split's garbled tables per bundle (the bytes every garbler computes and
/// the evaluator receives and reads: they grow with the non-linear elements and with the
/// square of the number of servers). The rates are about a tenth to a twentieth of what this
/// 2-core machine reached (docs/operations.md, "Phase deadlines").
const PREP_FIXED: Duration = Duration::from_secs(30);
/// Garbled table bytes per second allowed in preprocessing (measured: 44 MB/s with cifar-cnn
/// and 3 servers, 24 MB/s with 5).
const PREP_BYTES_PER_SEC: f64 = 2e6;
const INFERENCE_FIXED: Duration = Duration::from_secs(10);
/// Garbled table bytes per second allowed in the online phase (measured: 220 MB/s with
/// cifar-cnn and 3 servers, 150 MB/s with 5).
const INFERENCE_BYTES_PER_SEC: f64 = 20e6;

impl Timeouts {
    /// The deadline of one bundle's preparation at a server whose split garbles `table_bytes`
    /// bytes of tables per bundle: the topology's `prep` if set, else scaled.
    pub fn prep_for(&self, table_bytes: u64) -> Duration {
        self.prep
            .unwrap_or_else(|| scaled(PREP_FIXED, table_bytes, PREP_BYTES_PER_SEC))
    }

    /// The deadline of one inference at a server (see [`Timeouts::prep_for`]).
    pub fn inference_for(&self, table_bytes: u64) -> Duration {
        self.inference
            .unwrap_or_else(|| scaled(INFERENCE_FIXED, table_bytes, INFERENCE_BYTES_PER_SEC))
    }

    /// The user's wait for one bundle.
    pub fn user_prep(&self) -> Duration {
        self.prep.unwrap_or(USER_PREP)
    }

    /// The user's wait for one inference.
    pub fn user_inference(&self) -> Duration {
        self.inference.unwrap_or(USER_INFERENCE)
    }
}

fn scaled(fixed: Duration, bytes: u64, rate: f64) -> Duration {
    // At most a day, like a deadline set in the topology.
    fixed + Duration::from_secs_f64((bytes as f64 / rate).min(86_400.0))
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
    /// Bytes of bundles a server holds in memory ahead of their inference ("armed": taken
    /// from the store whole, `session/armed.rs`) over all its sessions; a session arms only if
    /// its garbled tables per bundle fit in this. 0 turns arming off.
    /// Default 256 MiB.
    pub armed_bytes: usize,
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
            armed_bytes: 256 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_scale_with_the_garbled_tables_unless_set() {
        let t = Timeouts::default();
        // mnist-mlp with 3 servers: about 2.8 MB of tables per bundle.
        let small = 2_800_000;
        // cifar-cnn with 5 servers: about 404 MB (`phase deadlines` in the gateway's log).
        let large = 404_000_000;
        assert_eq!(t.prep_for(small), Duration::from_secs_f64(31.4));
        assert_eq!(t.prep_for(large), Duration::from_secs_f64(232.0));
        assert_eq!(t.inference_for(small), Duration::from_secs_f64(10.14));
        assert_eq!(t.inference_for(large), Duration::from_secs_f64(30.2));
        // Bounded like a configured deadline.
        assert!(t.prep_for(u64::MAX) <= PREP_FIXED + Duration::from_secs(86_400));
        // Set in the topology: used as is, whatever the split.
        let set = Timeouts {
            prep: Some(Duration::from_secs(5)),
            inference: Some(Duration::from_secs(2)),
            ..t
        };
        assert_eq!(set.prep_for(large), Duration::from_secs(5));
        assert_eq!(set.inference_for(large), Duration::from_secs(2));
        assert_eq!(set.user_inference(), Duration::from_secs(2));
        assert_eq!(t.user_inference(), USER_INFERENCE);
    }
}
