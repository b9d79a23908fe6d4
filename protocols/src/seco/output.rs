//! What the user asks to learn of an inference (`docs/protocol.md`, "What each party learns"),
//! and the roles that stand for server names in what reaches the user.
//!
//! - [`OutputMode::Logits`]: the logits `trunc(y)` of the last linear layer, exactly the values
//!   of the fixed-point reference (`QuantModel::infer`), not `y` itself: the truncation runs
//!   inside the last garbled circuit, so the `f` low bits of `y` never leave it.
//! - [`OutputMode::Label`]: only the index of the largest logit (first on ties, as
//!   `model::argmax`), computed inside the last garbled circuit; the user decrypts one ring
//!   element whatever the number of classes.
//!
//! The mode is agreed in the handshake: `Hello` carries it to the gateway, `Open` to every
//! remote, each checks the code ([`OutputMode::from_code`]: an unknown code is
//! [`SecoError::OutputMode`], fatal) and builds the last stage's circuit for it
//! (`schedule::Schedule::set_output`).

use super::error::{Result, SecoError};
use super::ids::Party;

/// What the user learns of each inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OutputMode {
    /// The truncated logits (scale `2^f`), as the fixed-point reference outputs them.
    #[default]
    Logits,
    /// Only the predicted class (the argmax of the logits).
    Label,
}

impl OutputMode {
    /// The code carried in `Hello` and `Open`.
    pub fn code(self) -> u8 {
        match self {
            OutputMode::Logits => 0,
            OutputMode::Label => 1,
        }
    }

    /// The mode of a code from the network; an unknown code is refused.
    pub fn from_code(code: u8) -> Result<Self> {
        match code {
            0 => Ok(OutputMode::Logits),
            1 => Ok(OutputMode::Label),
            other => Err(SecoError::OutputMode(other)),
        }
    }

    /// Parses `logits` or `label` (command lines).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "logits" => Some(OutputMode::Logits),
            "label" => Some(OutputMode::Label),
            _ => None,
        }
    }

    /// Ring elements the user decrypts per inference for `classes` logits.
    pub fn output_len(self, classes: usize) -> usize {
        match self {
            OutputMode::Logits => classes,
            OutputMode::Label => 1,
        }
    }
}

impl std::fmt::Display for OutputMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputMode::Logits => "logits",
            OutputMode::Label => "label",
        })
    }
}

/// The user's result of one inference, as its output mode gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prediction {
    /// Logits mode: the signed logits (scale `2^f`).
    Logits(Vec<i64>),
    /// Label mode: the class index.
    Label(u32),
}

/// A party's role in words, for text that reaches the user: servers are not named.
pub fn role(p: Party) -> &'static str {
    match p {
        Party::User => "the user",
        Party::Server(0) => "the gateway",
        Party::Server(_) => "a remote server",
    }
}

/// `reason` with every server named by its role instead: the names of `servers` (the split's
/// server names, gateway first) and `server i` (how parties print), longest first so that
/// `remote-10` is not read as `remote-1`. After "the" or "a" the role goes without its article
/// ("the gateway serves" stays so when the gateway is called `gateway`). Applied by the
/// gateway to every abort reason it sends to the user.
pub fn scrub(reason: &str, servers: &[String]) -> String {
    let noun = |i: usize| if i == 0 { "gateway" } else { "remote server" };
    let mut names: Vec<(String, usize)> = servers
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.is_empty())
        .map(|(i, n)| (n.clone(), i))
        .collect();
    names.extend((1..servers.len().max(2)).map(|i| (format!("server {i}"), i)));
    names.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut out = reason.to_string();
    for (name, i) in names {
        out = replace_word(&out, &name, role(Party::Server(i as u16)), noun(i));
    }
    out
}

/// Replaces `name` where it is not part of a longer name (the characters around it are not
/// among `A-Z a-z 0-9 _ -`) by `with`, or by `noun` right after an article.
fn replace_word(text: &str, name: &str, with: &str, noun: &str) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(is_name) || after.is_some_and(is_name) {
            out.push_str(name);
        } else {
            // The word before (after a space; it may follow '(' or start the text).
            let article = out.strip_suffix(' ').is_some_and(|head| {
                let word = head.rsplit(|c: char| !c.is_ascii_alphabetic()).next();
                word.is_some_and(|w| ["the", "a", "an"].contains(&w.to_ascii_lowercase().as_str()))
            });
            out.push_str(if article { noun } else { with });
        }
        rest = &rest[at + name.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_refused() {
        for m in [OutputMode::Logits, OutputMode::Label] {
            assert_eq!(OutputMode::from_code(m.code()).unwrap(), m);
            assert_eq!(OutputMode::parse(&m.to_string()), Some(m));
        }
        assert!(matches!(
            OutputMode::from_code(7),
            Err(SecoError::OutputMode(7))
        ));
    }

    #[test]
    fn scrub_names_roles_only() {
        let servers: Vec<String> = ["gw", "remote-1", "remote-10"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got = scrub(
            "server 2: lost peer remote-10: remote-1 refused Infer (gw, server 1)",
            &servers,
        );
        assert_eq!(
            got,
            "a remote server: lost peer a remote server: a remote server refused Infer \
             (the gateway, a remote server)"
        );
        assert_eq!(scrub("gwx and xgw", &servers), "gwx and xgw");
        // An article right after a bracket is an article too.
        assert_eq!(
            scrub("(the gw rejected it; area gw)", &servers),
            "(the gateway rejected it; area the gateway)"
        );
        // A name after an article keeps the article once.
        let named: Vec<String> = ["gateway", "remote-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            scrub("the gateway serves; The remote-1 lost gateway", &named),
            "the gateway serves; The remote server lost the gateway"
        );
    }
}
