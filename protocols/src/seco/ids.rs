//! Identifiers of the SECO protocol: parties, sessions, bundles.

use serde::{Deserialize, Serialize};

/// A participant of a session. Servers are numbered as in the split plan: `Server(0)` is the
/// gateway, `Server(1..n)` the remotes. The user talks only to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Party {
    /// The user `U`.
    User,
    /// Server `i` (`0` = gateway `G`).
    Server(u16),
}

impl Party {
    /// The gateway.
    pub const GATEWAY: Party = Party::Server(0);

    /// The server index, if a server.
    pub fn server(self) -> Option<usize> {
        match self {
            Party::Server(i) => Some(usize::from(i)),
            Party::User => None,
        }
    }
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Party::User => write!(f, "user"),
            Party::Server(0) => write!(f, "gateway"),
            Party::Server(i) => write!(f, "server {i}"),
        }
    }
}

/// A session: one user's connection to the servers (its session key, its bundles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(pub [u8; 16]);

/// A bundle: the input-independent material of one future inference (DESIGN.md s.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BundleId(pub [u8; 16]);

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0[..6]))
    }
}

impl std::fmt::Display for BundleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0[..6]))
    }
}

impl SessionId {
    /// A fresh random id.
    pub fn random<R: rand::RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Self(b)
    }
}

impl BundleId {
    /// A fresh random id.
    pub fn random<R: rand::RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Self(b)
    }

    /// The bytes as a store key.
    pub fn key(&self) -> [u8; 16] {
        self.0
    }
}
