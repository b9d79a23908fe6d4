//! 128-bit blocks (wire labels, keys, OT rows) and compact serde encodings for them.
//!
//! On the wire a [`Block`] is 16 little-endian bytes, a `Vec<Block>` one byte string of
//! `16 * len` bytes ([`blocks_bytes`]), and a bit vector one byte string plus its length
//! ([`PackedBits`]); decoding checks the lengths.

use std::fmt;
use std::ops::{BitAnd, BitXor, BitXorAssign};

use rand::{CryptoRng, Rng};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A 128-bit block.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Block(pub u128);

impl Block {
    pub const ZERO: Block = Block(0);
    pub const ONE: Block = Block(1);
    pub const ALL_ONES: Block = Block(u128::MAX);

    /// A uniformly random block.
    pub fn random<R: Rng + CryptoRng + ?Sized>(rng: &mut R) -> Block {
        Block(rng.random())
    }

    /// The least significant bit (the point-and-permute / external-value bit).
    #[inline(always)]
    pub fn lsb(self) -> bool {
        self.0 & 1 == 1
    }

    /// `self` if `bit`, else zero.
    #[inline(always)]
    pub fn select(self, bit: bool) -> Block {
        Block(self.0 & (u128::from(bit)).wrapping_neg())
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    pub fn from_bytes(b: [u8; 16]) -> Block {
        Block(u128::from_le_bytes(b))
    }

    /// Blocks from their little-endian bytes, 16 each (a trailing partial block is ignored:
    /// callers check the length).
    pub fn vec_from_le_bytes(raw: &[u8]) -> Vec<Block> {
        raw.chunks_exact(16)
            .map(|c| {
                let mut a = [0u8; 16];
                a.copy_from_slice(c);
                Block::from_bytes(a)
            })
            .collect()
    }
}

impl zeroize::Zeroize for Block {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Block({:032x})", self.0)
    }
}

impl BitXor for Block {
    type Output = Block;
    #[inline(always)]
    fn bitxor(self, rhs: Block) -> Block {
        Block(self.0 ^ rhs.0)
    }
}

impl BitXorAssign for Block {
    #[inline(always)]
    fn bitxor_assign(&mut self, rhs: Block) {
        self.0 ^= rhs.0;
    }
}

impl BitAnd for Block {
    type Output = Block;
    #[inline(always)]
    fn bitand(self, rhs: Block) -> Block {
        Block(self.0 & rhs.0)
    }
}

impl Serialize for Block {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Block {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_byte_buf(BytesVisitor)?;
        let arr: [u8; 16] = v
            .as_slice()
            .try_into()
            .map_err(|_| de::Error::invalid_length(v.len(), &"16 bytes"))?;
        Ok(Block::from_bytes(arr))
    }
}

/// Accepts a byte string (or a sequence of bytes, for formats without byte strings).
struct BytesVisitor;

impl<'de> de::Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(v)
    }
}

/// Serde for `Vec<u8>` as one byte string.
pub mod bytes {
    use super::*;
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

/// Serde for `Vec<Block>` as one byte string of `16 * len` bytes.
pub mod blocks_bytes {
    use super::*;
    pub fn serialize<S: Serializer>(v: &[Block], s: S) -> Result<S::Ok, S::Error> {
        let mut out = Vec::with_capacity(v.len() * 16);
        for b in v {
            out.extend_from_slice(&b.to_bytes());
        }
        s.serialize_bytes(&out)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Block>, D::Error> {
        let raw = d.deserialize_byte_buf(BytesVisitor)?;
        if raw.len() % 16 != 0 {
            return Err(de::Error::invalid_length(
                raw.len(),
                &"a multiple of 16 bytes",
            ));
        }
        Ok(Block::vec_from_le_bytes(&raw))
    }
}

/// A bit vector packed 8 bits per byte (bit i in byte i/8, position i%8).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawBits", into = "RawBits")]
pub struct PackedBits {
    len: usize,
    bytes: Vec<u8>,
}

/// Wipes the bits (and empties the vector): mask bits are secret.
impl zeroize::Zeroize for PackedBits {
    fn zeroize(&mut self) {
        self.bytes.zeroize();
        self.len = 0;
    }
}

#[derive(Serialize, Deserialize)]
struct RawBits {
    len: u64,
    #[serde(with = "bytes")]
    bytes: Vec<u8>,
}

impl TryFrom<RawBits> for PackedBits {
    type Error = String;
    fn try_from(r: RawBits) -> Result<Self, String> {
        let len = usize::try_from(r.len).map_err(|_| "bit length overflows".to_string())?;
        if r.bytes.len() != len.div_ceil(8) {
            return Err(format!(
                "{} bits need {} bytes, got {}",
                len,
                len.div_ceil(8),
                r.bytes.len()
            ));
        }
        Ok(PackedBits {
            len,
            bytes: r.bytes,
        })
    }
}

impl From<PackedBits> for RawBits {
    fn from(p: PackedBits) -> Self {
        RawBits {
            len: p.len as u64,
            bytes: p.bytes,
        }
    }
}

impl PackedBits {
    /// Packs bools.
    pub fn from_bools(bits: &[bool]) -> Self {
        let mut bytes = vec![0u8; bits.len().div_ceil(8)];
        for (i, &b) in bits.iter().enumerate() {
            bytes[i / 8] |= u8::from(b) << (i % 8);
        }
        PackedBits {
            len: bits.len(),
            bytes,
        }
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bit `i` (false beyond the end).
    pub fn get(&self, i: usize) -> bool {
        i < self.len && (self.bytes[i / 8] >> (i % 8)) & 1 == 1
    }

    /// Unpacks to bools.
    pub fn to_bools(&self) -> Vec<bool> {
        (0..self.len).map(|i| self.get(i)).collect()
    }

    /// The packed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Exact length of `value`'s CBOR encoding (the encoding the runtime's codec sends).
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Counting never fails; an unserializable value would count as what was written.
    let _ = ciborium::into_writer(value, &mut c);
    c.0
}
