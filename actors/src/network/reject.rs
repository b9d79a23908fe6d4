//! Application reject codes of SECO nodes and their meaning in words (the sender, and so the
//! user, reads why a message was refused, not a bare code).

use seco_runtime::net::{NetError, Reject};

/// Application reject code: the envelope is not a valid SECO message.
pub const REJECT_MALFORMED: u16 = 1;
/// Application reject code: no session with that id, and the message cannot open one.
pub const REJECT_UNKNOWN_SESSION: u16 = 2;
/// Application reject code: the node refuses more sessions now.
pub const REJECT_NO_SESSION_SLOT: u16 = 3;
/// Application reject code: the session has ended here (closed, aborted or expired); not
/// retried by senders, since it will not come back.
pub const REJECT_SESSION_ENDED: u16 = 4;
/// Application reject code: no new session before the collective key generation running in
/// another session has ended (retried by senders).
pub const REJECT_KEYGEN_RUNNING: u16 = 5;
/// Application reject code: the node refuses this session for good (its model part does not
/// fit the parameter set: noise or flooding budget, plane sizes; the reason is in its log).
/// Not retried.
pub const REJECT_REFUSED: u16 = 6;
/// Application reject code: this node does not talk to peers of the sender's role (a remote
/// refuses users: a user talks only to the gateway; `topology::talks_to`). Not retried.
pub const REJECT_ROLE: u16 = 7;

/// What an application reject code means, in the words the sender reports (the user sees
/// them in its error, not a bare code).
pub fn reject_text(code: u16) -> &'static str {
    match code {
        REJECT_MALFORMED => "not a valid SECO message",
        REJECT_UNKNOWN_SESSION => "no session with this id there (and the message cannot open one)",
        REJECT_NO_SESSION_SLOT => "no free session slot (its limit of open sessions is reached)",
        REJECT_SESSION_ENDED => "the session has ended there (closed, aborted or expired)",
        REJECT_KEYGEN_RUNNING => "the collective key generation of another session is running",
        REJECT_REFUSED => {
            "the session was refused: the server's model part does not fit the parameter set \
             (noise or flooding budget; the reason is in the server's log)"
        }
        REJECT_ROLE => "this node does not talk to peers of the sender's role (a user talks only to the gateway)",
        _ => "refused with an unknown code",
    }
}

/// A failed send in words: application reject codes are named ([`reject_text`]).
pub fn describe_send_error(e: &NetError) -> String {
    match e {
        NetError::Rejected {
            reason: Reject::Application(code),
            ..
        } => format!("{} (reject code {code})", reject_text(*code)),
        e => e.to_string(),
    }
}
