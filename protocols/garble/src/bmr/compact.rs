//! Compact serde forms of [`super::BmrConfig`]'s per-wire vectors: one byte per wire (a party
//! id below [`super::MAX_GARBLERS`] + 1, or a flag 0/1) in a CBOR byte string, instead of one
//! CBOR item per wire. A stored garbling carries its config, and decoding those vectors item
//! by item was most of the time it took to load a stage's chunks in the online phase (`perf`,
//! 2026-12-06). Decoding still accepts the older form (an array of items), so garblings stored
//! before keep loading.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

use crate::circuit::PartyId;

/// Accepts a byte string, or an array of items (the older form).
struct Wires<T>(std::marker::PhantomData<T>, fn(u8) -> Option<T>);

impl<'de, T: serde::Deserialize<'de>> Visitor<'de> for Wires<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte string with one byte per wire, or an array")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<T>, E> {
        v.iter()
            .map(|&b| (self.1)(b).ok_or_else(|| E::custom(format!("invalid wire byte {b}"))))
            .collect()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(x) = seq.next_element()? {
            out.push(x);
        }
        Ok(out)
    }
}

/// Party ids, one byte each.
pub mod owners {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[PartyId], s: S) -> Result<S::Ok, S::Error> {
        let bytes = v
            .iter()
            .map(|&p| u8::try_from(p))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| serde::ser::Error::custom("a party id above 255"))?;
        s.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PartyId>, D::Error> {
        d.deserialize_any(Wires(std::marker::PhantomData, |b| Some(usize::from(b))))
    }
}

/// Flags, one byte each (0 or 1).
pub mod flags {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[bool], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&v.iter().map(|&b| u8::from(b)).collect::<Vec<u8>>())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<bool>, D::Error> {
        d.deserialize_any(Wires(std::marker::PhantomData, |b| match b {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct New {
        #[serde(with = "super::owners")]
        owners: Vec<usize>,
        #[serde(with = "super::flags")]
        flags: Vec<bool>,
    }

    #[derive(Serialize)]
    struct Old {
        owners: Vec<usize>,
        flags: Vec<bool>,
    }

    fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn compact_round_trip_reads_the_old_form_and_refuses_bad_bytes() {
        let v = New {
            owners: vec![0, 2, 64, 1],
            flags: vec![true, false, true],
        };
        let new = cbor(&v);
        assert_eq!(ciborium::from_reader::<New, _>(new.as_slice()).unwrap(), v);
        let old = cbor(&Old {
            owners: v.owners.clone(),
            flags: v.flags.clone(),
        });
        assert!(old.len() > new.len());
        assert_eq!(ciborium::from_reader::<New, _>(old.as_slice()).unwrap(), v);
        let empty = cbor(&Old {
            owners: vec![],
            flags: vec![],
        });
        assert!(ciborium::from_reader::<New, _>(empty.as_slice()).is_ok());
        let mut flag2 = new.clone();
        let last = flag2.len() - 1;
        flag2[last] = 2;
        assert!(ciborium::from_reader::<New, _>(flag2.as_slice()).is_err());
        assert!(ciborium::from_reader::<New, _>(&new[..new.len() - 2]).is_err());
    }
}
