//! Byte format of every MHE message: a fixed header (magic, version, kind, parameter id) and a
//! body of fixed-size fields and bit-packed polynomials.
//!
//! Polynomials travel in the power basis (canonical: independent of the NTT implementation a
//! node was built with), each RNS residue packed in exactly `bits(q_i)` bits. Decoders check
//! every length, count, id and residue range and answer with [`MheError`], never a panic.

use fhe_math::rq::{traits::TryConvertFrom, Poly, Representation};

use super::error::{MheError, Result};
use super::params::{ParamId, Params};
use super::PartyId;

/// Magic bytes "SM" (seco MHE).
const MAGIC: u16 = 0x534d;
/// Format version.
const VERSION: u8 = 1;
/// Header size in bytes: magic (2), version (1), kind (1), parameter id (2).
pub const HEADER_LEN: usize = 6;

/// Message kinds (one per serialized type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    KeygenCommit = 1,
    KeygenReveal = 2,
    PublicKeyShare = 3,
    PublicKey = 4,
    SecretKeyShare = 5,
    Ciphertext = 6,
    E2sRequest = 7,
    E2sShare = 8,
    ResultCiphertext = 9,
}

/// Append-only writer.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(kind: Kind, param: ParamId, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER_LEN + capacity);
        buf.extend_from_slice(&MAGIC.to_le_bytes());
        buf.push(VERSION);
        buf.push(kind as u8);
        buf.extend_from_slice(&param.code().to_le_bytes());
        Self { buf }
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// A polynomial (any representation; converted to the power basis on a copy).
    pub(crate) fn poly(&mut self, params: &Params, p: &Poly) {
        let mut c = p.clone();
        c.change_representation(Representation::PowerBasis);
        let coeffs = c.coefficients();
        for (limb, row) in coeffs.outer_iter().enumerate() {
            let bits = limb_bits(params, limb);
            pack_into(&mut self.buf, row.iter().copied(), bits);
        }
    }

    /// Residues of selected coefficients, limb-major: `values[limb][i]`.
    pub(crate) fn residues(&mut self, params: &Params, values: &[Vec<u64>]) {
        for (limb, row) in values.iter().enumerate() {
            pack_into(&mut self.buf, row.iter().copied(), limb_bits(params, limb));
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Cursor over received bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads and checks the header; returns the reader positioned on the body and the
    /// parameter id found.
    pub(crate) fn open(bytes: &'a [u8], kind: Kind) -> Result<(Self, ParamId)> {
        let mut r = Self { bytes, pos: 0 };
        let magic = u16::from_le_bytes(r.array::<2>("header")?);
        let version = r.u8("header")?;
        if magic != MAGIC || version != VERSION {
            return Err(MheError::BadHeader { magic, version });
        }
        let actual = r.u8("header")?;
        if actual != kind as u8 {
            return Err(MheError::WrongKind {
                expected: kind as u8,
                actual,
            });
        }
        let param = ParamId::from_code(r.u16("header")?)?;
        Ok((r, param))
    }

    /// Reads and checks the header of a message of one of several kinds; returns the kind
    /// code found.
    pub(crate) fn open_any(bytes: &'a [u8]) -> Result<(Self, u8, ParamId)> {
        let mut r = Self { bytes, pos: 0 };
        let magic = u16::from_le_bytes(r.array::<2>("header")?);
        let version = r.u8("header")?;
        if magic != MAGIC || version != VERSION {
            return Err(MheError::BadHeader { magic, version });
        }
        let kind = r.u8("header")?;
        let param = ParamId::from_code(r.u16("header")?)?;
        Ok((r, kind, param))
    }

    /// Like [`Reader::open`], and checks that the parameter id is the expected one.
    pub(crate) fn open_expect(bytes: &'a [u8], kind: Kind, expected: ParamId) -> Result<Self> {
        let (r, actual) = Self::open(bytes, kind)?;
        if actual != expected {
            return Err(MheError::ParamMismatch { expected, actual });
        }
        Ok(r)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let available = self.bytes.len() - self.pos;
        if n > available {
            return Err(MheError::Truncated {
                what,
                needed: n,
                available,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn array<const L: usize>(&mut self, what: &'static str) -> Result<[u8; L]> {
        let mut a = [0u8; L];
        a.copy_from_slice(self.take(L, what)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array::<2>(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array::<4>(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array::<8>(what)?))
    }

    pub(crate) fn party(&mut self) -> Result<PartyId> {
        self.u16("party id")
    }

    /// A count, checked against an upper bound before anything is allocated for it.
    pub(crate) fn count(&mut self, what: &'static str, max: usize) -> Result<usize> {
        let c = self.u32(what)? as usize;
        if c > max {
            return Err(MheError::WrongLength {
                what,
                expected: max,
                actual: c,
            });
        }
        Ok(c)
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        self.take(n, what)
    }

    /// A full polynomial, returned in the NTT representation.
    pub(crate) fn poly(&mut self, params: &Params) -> Result<Poly> {
        let n = params.degree();
        let mut flat = Vec::with_capacity(n * params.moduli().len());
        for limb in 0..params.moduli().len() {
            let row = self.residue_row(params, limb, n, "polynomial")?;
            flat.extend_from_slice(&row);
        }
        let mut p = Poly::try_convert_from(flat, &params.ctx, false, Representation::PowerBasis)?;
        p.change_representation(Representation::Ntt);
        Ok(p)
    }

    /// `count` residues per limb, limb-major, each checked to be reduced.
    pub(crate) fn residues(&mut self, params: &Params, count: usize) -> Result<Vec<Vec<u64>>> {
        (0..params.moduli().len())
            .map(|limb| self.residue_row(params, limb, count, "residues"))
            .collect()
    }

    fn residue_row(
        &mut self,
        params: &Params,
        limb: usize,
        count: usize,
        what: &'static str,
    ) -> Result<Vec<u64>> {
        let bits = limb_bits(params, limb);
        let len = packed_len(count, bits);
        let raw = self.take(len, what)?;
        let modulus = params.moduli()[limb];
        let row = unpack(raw, count, bits);
        if let Some(&value) = row.iter().find(|&&v| v >= modulus) {
            return Err(MheError::CoefficientOutOfRange { value, modulus });
        }
        Ok(row)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self, what: &'static str) -> Result<()> {
        let extra = self.bytes.len() - self.pos;
        if extra != 0 {
            return Err(MheError::TrailingBytes { what, extra });
        }
        Ok(())
    }
}

/// Bits per residue of limb `limb`: the bit length of `q_limb`.
pub(crate) fn limb_bits(params: &Params, limb: usize) -> u32 {
    64 - params.moduli()[limb].leading_zeros()
}

/// Bytes of `count` values of `bits` bits each.
pub(crate) fn packed_len(count: usize, bits: u32) -> usize {
    (count * bits as usize).div_ceil(8)
}

/// Bytes of a packed full polynomial.
pub fn poly_bytes(params: &Params) -> usize {
    (0..params.moduli().len())
        .map(|l| packed_len(params.degree(), limb_bits(params, l)))
        .sum()
}

/// Bytes of `count` packed residues in every limb.
pub fn residues_bytes(params: &Params, count: usize) -> usize {
    (0..params.moduli().len())
        .map(|l| packed_len(count, limb_bits(params, l)))
        .sum()
}

pub(crate) fn pack_into(buf: &mut Vec<u8>, values: impl Iterator<Item = u64>, bits: u32) {
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut acc: u128 = 0;
    let mut nacc: u32 = 0;
    for v in values {
        acc |= ((v & mask) as u128) << nacc;
        nacc += bits;
        while nacc >= 8 {
            buf.push(acc as u8);
            acc >>= 8;
            nacc -= 8;
        }
    }
    if nacc > 0 {
        buf.push(acc as u8);
    }
}

/// `count` values of `bits` bits each, little-endian bit order (the inverse of [`pack_into`]);
/// bytes missing at the end of `raw` read as zero. Each value is one unaligned 16-byte read
/// and a shift (a value spans at most 9 bytes), not a loop over its bytes: this runs over
/// every coefficient of every ciphertext a server receives.
pub(crate) fn unpack(raw: &[u8], count: usize, bits: u32) -> Vec<u64> {
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let bits = bits as usize;
    let read = |buf: &[u8], bit: usize| -> u64 {
        let at = bit / 8;
        let window: [u8; 16] = buf[at..at + 16].try_into().expect("16 bytes");
        ((u128::from_le_bytes(window) >> (bit % 8)) as u64) & mask
    };
    let mut out = Vec::with_capacity(count);
    // Values whose 16-byte window lies inside `raw`.
    while out.len() < count && (out.len() * bits) / 8 + 16 <= raw.len() {
        out.push(read(raw, out.len() * bits));
    }
    // The rest from a zero-padded copy of the tail.
    if out.len() < count {
        let start = (out.len() * bits) / 8;
        let mut tail = raw.get(start..).unwrap_or_default().to_vec();
        tail.resize(packed_len(count, bits as u32) - start + 16, 0);
        while out.len() < count {
            out.push(read(&tail, out.len() * bits - start * 8));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-at-a-time reading `unpack` replaced, as the reference.
    fn unpack_bytewise(raw: &[u8], count: usize, bits: u32) -> Vec<u64> {
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let (mut acc, mut nacc, mut bytes) = (0u128, 0u32, raw.iter());
        (0..count)
            .map(|_| {
                while nacc < bits {
                    acc |= (bytes.next().copied().unwrap_or(0) as u128) << nacc;
                    nacc += 8;
                }
                let v = (acc as u64) & mask;
                acc >>= bits;
                nacc -= bits;
                v
            })
            .collect()
    }

    #[test]
    fn unpack_matches_the_bytewise_reading_also_on_short_input() {
        let raw: Vec<u8> = (0..4099u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for bits in [1u32, 5, 8, 13, 31, 32, 33, 54, 55, 57, 63, 64] {
            for count in [0usize, 1, 2, 3, 17, 100, 511] {
                let need = packed_len(count, bits);
                // Exact, with bytes beyond, and truncated (missing bytes read as zero).
                for len in [need, need + 20, need / 2, 0] {
                    let r = &raw[..len.min(raw.len())];
                    assert_eq!(
                        unpack(r, count, bits),
                        unpack_bytewise(r, count, bits),
                        "bits {bits} count {count} len {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn pack_roundtrip() {
        for bits in [1u32, 7, 8, 33, 54, 55, 62, 64] {
            let mask = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            let vals: Vec<u64> = (0..37u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask)
                .collect();
            let mut buf = Vec::new();
            pack_into(&mut buf, vals.iter().copied(), bits);
            assert_eq!(buf.len(), packed_len(vals.len(), bits));
            assert_eq!(unpack(&buf, vals.len(), bits), vals);
        }
    }
}
