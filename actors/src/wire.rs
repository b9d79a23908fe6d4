//! SECO messages in runtime envelopes.
//!
//! | envelope field | value |
//! | --- | --- |
//! | `session` | the SECO session id (same 16 bytes) |
//! | `kind` | [`SECO_KIND`] |
//! | `seq` | `SecoMsg::seq`, unique per sender and session, so that the runtime's reassembly key `(peer, session, kind, seq)` is unique |
//! | `payload` | `SecoMsg::to_bytes()` (CBOR) |
//!
//! Decoding checks the kind, decodes the message (version and size checked by
//! [`SecoMsg::from_bytes`]) and checks that the envelope's session and seq are the message's:
//! garbage is a typed [`WireError`], never a panic.

use seco_protocols::seco::{SecoError, SecoMsg, SessionId};
use seco_runtime::net::{self, Envelope};

/// Envelope kind of SECO protocol messages.
pub const SECO_KIND: u16 = 0x5EC0;

/// Why an inbound envelope is not a SECO message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Another kind of envelope.
    #[error("envelope kind {0:#06x} is not a SECO message")]
    WrongKind(u16),
    /// The payload does not decode.
    #[error("undecodable SECO message: {0}")]
    Decode(#[from] SecoError),
    /// The envelope and the message disagree on the session.
    #[error("envelope session {envelope} differs from the message's")]
    SessionMismatch {
        /// The envelope's session.
        envelope: net::SessionId,
    },
    /// The envelope and the message disagree on the sequence number.
    #[error("envelope seq {envelope} differs from the message's {message}")]
    SeqMismatch {
        /// Envelope seq.
        envelope: u64,
        /// Message seq.
        message: u64,
    },
}

/// The runtime's session id of a SECO session.
pub fn net_session(s: SessionId) -> net::SessionId {
    net::SessionId(s.0)
}

/// The SECO session id of a runtime session.
pub fn seco_session(s: net::SessionId) -> SessionId {
    SessionId(s.0)
}

/// Wraps a message into an envelope.
pub fn to_envelope(msg: &SecoMsg) -> Envelope {
    Envelope::new(net_session(msg.session), SECO_KIND, msg.seq, msg.to_bytes())
}

/// Unwraps and checks a message.
pub fn from_envelope(env: &Envelope) -> Result<SecoMsg, WireError> {
    if env.kind != SECO_KIND {
        return Err(WireError::WrongKind(env.kind));
    }
    let msg = SecoMsg::from_bytes(&env.payload)?;
    if msg.session.0 != env.session.0 {
        return Err(WireError::SessionMismatch {
            envelope: env.session,
        });
    }
    if msg.seq != env.seq {
        return Err(WireError::SeqMismatch {
            envelope: env.seq,
            message: msg.seq,
        });
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seco_protocols::seco::{Body, Party};

    fn msg() -> SecoMsg {
        SecoMsg {
            version: seco_protocols::seco::msg::VERSION,
            session: SessionId([3; 16]),
            from: Party::User,
            seq: 7,
            body: Body::Abort {
                bundle: None,
                reason: "x".into(),
                kind: Default::default(),
            },
        }
    }

    #[test]
    fn roundtrip_and_checks() {
        let m = msg();
        let env = to_envelope(&m);
        assert_eq!(from_envelope(&env).unwrap(), m);
        let other = Envelope::new(env.session, 1, env.seq, env.payload.clone());
        assert!(matches!(
            from_envelope(&other),
            Err(WireError::WrongKind(1))
        ));
        let other = Envelope::new(net::SessionId([4; 16]), SECO_KIND, 7, env.payload.clone());
        assert!(matches!(
            from_envelope(&other),
            Err(WireError::SessionMismatch { .. })
        ));
        let other = Envelope::new(env.session, SECO_KIND, 8, env.payload.clone());
        assert!(matches!(
            from_envelope(&other),
            Err(WireError::SeqMismatch { .. })
        ));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for payload in [
            vec![],
            vec![0xff; 3],
            b"not cbor at all".to_vec(),
            vec![0xa1; 100],
        ] {
            let env = Envelope::new(net::SessionId([0; 16]), SECO_KIND, 0, payload);
            assert!(matches!(from_envelope(&env), Err(WireError::Decode(_))));
        }
    }
}
