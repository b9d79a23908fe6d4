//! `Debug` for types that hold secrets (issue 14): they print `[redacted]` instead of their
//! contents, so that a secret cannot reach a log through `{:?}`, `tracing`'s `?field` or an
//! `assert_eq!` failure message.
//!
//! - [`Redacted`] is a field placeholder for a hand-written `Debug` that keeps the public fields
//!   (ids, counts) and hides the secret ones: `.field("offset", &Redacted)`.
//! - [`redacted_debug!`](crate::redacted_debug) implements the whole `Debug` of a type:
//!   `redacted_debug!(Type)` prints `Type([redacted])`, and
//!   `redacted_debug!(Type, |t| t.values.len())` prints `Type { len: N, .. [redacted] }`, for
//!   types whose length is useful when debugging.
//!
//! Wiping the memory is separate: the secret fields are `zeroize::Zeroizing`, or the type
//! zeroizes them on drop (docs/operations.md, "Secrets in memory").

use std::fmt;

/// Prints `[redacted]`: the `Debug` of a secret field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Prints `name([redacted])`.
pub fn fmt_redacted(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    write!(f, "{name}([redacted])")
}

/// Prints `name { len: N, .. [redacted] }`.
pub fn fmt_redacted_len(f: &mut fmt::Formatter<'_>, name: &str, len: usize) -> fmt::Result {
    write!(f, "{name} {{ len: {len}, .. [redacted] }}")
}

/// Implements `Debug` printing `Type([redacted])`, or with a length function
/// `Type { len: N, .. [redacted] }`.
#[macro_export]
macro_rules! redacted_debug {
    ($ty:ident) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::redact::fmt_redacted(f, stringify!($ty))
            }
        }
    };
    ($ty:ident, $len:expr) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let len: fn(&$ty) -> usize = $len;
                $crate::redact::fmt_redacted_len(f, stringify!($ty), len(self))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::Redacted;

    struct Key([u8; 4]);
    crate::redacted_debug!(Key);

    struct Values(Vec<u64>);
    crate::redacted_debug!(Values, |v| v.0.len());

    #[test]
    fn whole_type() {
        let key = Key([1, 2, 3, 4]);
        assert_eq!(format!("{key:?}"), "Key([redacted])");
        assert_eq!(format!("{key:#?}"), "Key([redacted])");
        assert_eq!(key.0, [1, 2, 3, 4]);
    }

    #[test]
    fn with_length() {
        let v = Values(vec![12345, 67890]);
        assert_eq!(format!("{v:?}"), "Values { len: 2, .. [redacted] }");
    }

    #[test]
    fn field_placeholder() {
        let s = format!("{:?}", (7u8, Redacted));
        assert_eq!(s, "(7, [redacted])");
    }
}
