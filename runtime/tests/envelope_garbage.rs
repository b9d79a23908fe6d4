//! Property tests: envelopes round-trip, and garbage or mutated bytes decode to a typed error,
//! never a panic.

use proptest::prelude::*;
use seco_runtime::net::{Envelope, EnvelopeError, SessionId};

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|(s, k, q, p)| Envelope::new(SessionId(s), k, q, p))
}

proptest! {
    #[test]
    fn roundtrip(e in envelope()) {
        let bytes = e.encode().unwrap();
        prop_assert_eq!(Envelope::decode(&bytes, 1 << 20).unwrap(), e);
    }

    #[test]
    fn garbage_is_a_typed_error(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        // Either a valid envelope by chance or a typed error; a panic fails the test.
        let _ = Envelope::decode(&bytes, 1 << 20);
    }

    #[test]
    fn mutations_are_caught_or_harmless(e in envelope(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let bytes = e.encode().unwrap();
        let mut mutated = bytes.clone();
        mutated[at.index(bytes.len())] = byte;
        let _ = Envelope::decode(&mutated, 1 << 20);
        // A strict prefix of a valid envelope is never valid.
        let truncated = &bytes[..cut.index(bytes.len())];
        prop_assert!(Envelope::decode(truncated, 1 << 20).is_err());
    }

    #[test]
    fn size_limit_is_checked_first(len in 65usize..4096) {
        let bytes = vec![0u8; len];
        let is_too_large = matches!(Envelope::decode(&bytes, 64), Err(EnvelopeError::TooLarge { .. }));
        prop_assert!(is_too_large);
    }
}

#[test]
fn huge_declared_byte_string_does_not_allocate_up_front() {
    // A CBOR map whose payload claims 2^60 bytes: must fail on the missing data, quickly.
    let mut bytes = vec![0xa6, 0x61, b'v', 0x01, 0x61, b's', 0x50];
    bytes.extend_from_slice(&[0; 16]);
    bytes.extend_from_slice(&[
        0x61, b'k', 0x00, 0x61, b'q', 0x00, 0x61, b'c', 0xf6, 0x61, b'p',
    ]);
    bytes.extend_from_slice(&[0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(
        Envelope::decode(&bytes, 1 << 20),
        Err(EnvelopeError::Cbor(_))
    ));
}

#[test]
fn array_instead_of_bytes_is_refused() {
    // Same map with the payload as an array of integers: a type error, not a slow decode.
    let mut bytes = vec![0xa6, 0x61, b'v', 0x01, 0x61, b's', 0x50];
    bytes.extend_from_slice(&[0; 16]);
    bytes.extend_from_slice(&[
        0x61, b'k', 0x00, 0x61, b'q', 0x00, 0x61, b'c', 0xf6, 0x61, b'p', 0x82, 0x01, 0x02,
    ]);
    assert!(matches!(
        Envelope::decode(&bytes, 1 << 20),
        Err(EnvelopeError::Cbor(_))
    ));
}
