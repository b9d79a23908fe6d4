//! The fixed-point ring `Z_{2^k}` with scale `2^f` (DESIGN.md s.3).
//!
//! Values are k-bit two's-complement integers stored in a `u64` whose bits above `k` are zero.
//! All arithmetic wraps mod `2^k`. A real number `v` is represented by `round(v * 2^f)`; the
//! product of two such values has scale `2^(2f)` and is brought back to scale `2^f` by
//! [`FixedPoint::trunc`], an arithmetic shift right by `f` of the signed value (floor division).
//! In the secure protocol the truncation happens inside a garbled circuit on the reconstructed
//! value, so it is exact: the reference evaluator and the protocol agree bit for bit.

use serde::{Deserialize, Serialize};

/// Smallest supported ring size in bits.
pub const MIN_RING_BITS: u32 = 8;
/// Largest supported ring size in bits (values live in `u64`; products are computed in `u128`).
pub const MAX_RING_BITS: u32 = 64;

/// Errors of fixed-point parameters and encodings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FixedError {
    /// `ring_bits` outside `[MIN_RING_BITS, MAX_RING_BITS]` or `frac_bits` too large for it.
    #[error("invalid fixed-point parameters: ring_bits = {ring_bits}, frac_bits = {frac_bits} (need {MIN_RING_BITS} <= ring_bits <= {MAX_RING_BITS} and 2*frac_bits < ring_bits)")]
    InvalidParams {
        /// Requested `k`.
        ring_bits: u32,
        /// Requested `f`.
        frac_bits: u32,
    },
    /// A real value is NaN or infinite.
    #[error("value {value} is not finite")]
    NotFinite {
        /// The offending value.
        value: f64,
    },
    /// A real value does not fit the signed ring at the requested scale.
    #[error("value {value} at scale 2^{scale_bits} does not fit in a signed {ring_bits}-bit ring")]
    OutOfRange {
        /// The offending value.
        value: f64,
        /// The scale exponent used for the encoding.
        scale_bits: u32,
        /// The ring size.
        ring_bits: u32,
    },
}

/// Fixed-point parameters: ring `Z_{2^k}` with `k = ring_bits`, scale `2^f` with `f = frac_bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FixedPoint {
    /// `k`: the ring is `Z_{2^k}`; also the BFV plaintext modulus `t = 2^k`.
    pub ring_bits: u32,
    /// `f`: values are scaled by `2^f`; linear-layer outputs (scale `2^(2f)`) are truncated by `f`.
    pub frac_bits: u32,
}

impl Default for FixedPoint {
    fn default() -> Self {
        Self {
            ring_bits: 32,
            frac_bits: 10,
        }
    }
}

impl FixedPoint {
    /// Checked constructor: `8 <= k <= 64` and `2f < k` (a scale-`2f` value must leave room for
    /// its sign and integer part).
    pub fn new(ring_bits: u32, frac_bits: u32) -> Result<Self, FixedError> {
        let fp = Self {
            ring_bits,
            frac_bits,
        };
        fp.validate()?;
        Ok(fp)
    }

    /// Checks the invariants of [`FixedPoint::new`] (for values that came from a file).
    pub fn validate(&self) -> Result<(), FixedError> {
        let ok = (MIN_RING_BITS..=MAX_RING_BITS).contains(&self.ring_bits)
            && self
                .frac_bits
                .checked_mul(2)
                .is_some_and(|d| d < self.ring_bits);
        if ok {
            Ok(())
        } else {
            Err(FixedError::InvalidParams {
                ring_bits: self.ring_bits,
                frac_bits: self.frac_bits,
            })
        }
    }

    /// `2^k - 1`: the mask that reduces a `u64` into the ring.
    #[inline]
    pub fn mask(&self) -> u64 {
        if self.ring_bits >= 64 {
            u64::MAX
        } else {
            (1u64 << self.ring_bits) - 1
        }
    }

    /// Reduces a `u64` mod `2^k`.
    #[inline]
    pub fn reduce(&self, x: u64) -> u64 {
        x & self.mask()
    }

    /// Reduces a signed integer mod `2^k` (two's complement).
    #[inline]
    pub fn from_signed(&self, x: i64) -> u64 {
        (x as u64) & self.mask()
    }

    /// Reduces an `i128` mod `2^k` (two's complement).
    #[inline]
    pub fn from_i128(&self, x: i128) -> u64 {
        (x as u64) & self.mask()
    }

    /// The signed value (in `[-2^(k-1), 2^(k-1))`) of a ring element.
    #[inline]
    pub fn to_signed(&self, x: u64) -> i64 {
        let shift = 64 - self.ring_bits;
        ((x << shift) as i64) >> shift
    }

    /// Ring addition.
    #[inline]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        self.reduce(a.wrapping_add(b))
    }

    /// Ring subtraction.
    #[inline]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        self.reduce(a.wrapping_sub(b))
    }

    /// Ring negation.
    #[inline]
    pub fn neg(&self, a: u64) -> u64 {
        self.reduce(a.wrapping_neg())
    }

    /// Ring multiplication.
    #[inline]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce(a.wrapping_mul(b))
    }

    /// Truncation `signed(y) >> f` (arithmetic shift = floor division by `2^f`), reduced mod
    /// `2^k`. Applied to every linear layer's output (scale `2^(2f)` back to `2^f`).
    #[inline]
    pub fn trunc(&self, y: u64) -> u64 {
        self.from_signed(self.to_signed(y) >> self.frac_bits)
    }

    /// `ReLU` on the signed value.
    #[inline]
    pub fn relu(&self, v: u64) -> u64 {
        if self.to_signed(v) < 0 {
            0
        } else {
            v
        }
    }

    /// Maximum of two ring elements compared as signed values.
    #[inline]
    pub fn max(&self, a: u64, b: u64) -> u64 {
        if self.to_signed(a) >= self.to_signed(b) {
            a
        } else {
            b
        }
    }

    /// `round_half_away_from_zero(v * 2^scale_bits)` as a signed integer that fits the ring.
    pub fn quantize(&self, v: f64, scale_bits: u32) -> Result<i64, FixedError> {
        if !v.is_finite() {
            return Err(FixedError::NotFinite { value: v });
        }
        let scaled = (v * f64::powi(2.0, scale_bits as i32)).round();
        let half = f64::powi(2.0, self.ring_bits as i32 - 1);
        if scaled < -half || scaled >= half {
            return Err(FixedError::OutOfRange {
                value: v,
                scale_bits,
                ring_bits: self.ring_bits,
            });
        }
        Ok(scaled as i64)
    }

    /// Encodes a real value at scale `2^f` into the ring.
    pub fn encode(&self, v: f64) -> Result<u64, FixedError> {
        Ok(self.from_signed(self.quantize(v, self.frac_bits)?))
    }

    /// Decodes a ring element at scale `2^f` into a real value.
    pub fn decode(&self, x: u64) -> f64 {
        self.to_signed(x) as f64 / f64::powi(2.0, self.frac_bits as i32)
    }

    /// Encodes a slice of reals (see [`FixedPoint::encode`]).
    pub fn encode_all(&self, values: &[f32]) -> Result<Vec<u64>, FixedError> {
        values.iter().map(|&v| self.encode(f64::from(v))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_round_trip_and_wrap() {
        let fp = FixedPoint::new(32, 10).unwrap();
        assert_eq!(fp.to_signed(fp.from_signed(-5)), -5);
        assert_eq!(fp.from_signed(-1), 0xffff_ffff);
        assert_eq!(fp.add(0xffff_ffff, 2), 1);
        assert_eq!(fp.to_signed(0x8000_0000), -(1i64 << 31));
    }

    #[test]
    fn trunc_is_floor_division() {
        let fp = FixedPoint::new(32, 4).unwrap();
        assert_eq!(fp.to_signed(fp.trunc(fp.from_signed(-17))), -2);
        assert_eq!(fp.to_signed(fp.trunc(fp.from_signed(17))), 1);
        assert_eq!(fp.to_signed(fp.trunc(fp.from_signed(-16))), -1);
    }

    #[test]
    fn quantize_rounds_half_away_and_checks_range() {
        let fp = FixedPoint::new(32, 1).unwrap();
        assert_eq!(fp.quantize(0.25, 1).unwrap(), 1);
        assert_eq!(fp.quantize(-0.25, 1).unwrap(), -1);
        assert!(matches!(
            fp.quantize(f64::NAN, 1),
            Err(FixedError::NotFinite { .. })
        ));
        assert!(matches!(
            fp.quantize(1e12, 1),
            Err(FixedError::OutOfRange { .. })
        ));
    }

    #[test]
    fn params_are_validated() {
        assert!(FixedPoint::new(32, 16).is_err());
        assert!(FixedPoint::new(4, 1).is_err());
        assert!(FixedPoint::new(65, 1).is_err());
        assert!(FixedPoint::new(64, 20).is_ok());
        assert_eq!(FixedPoint::new(64, 20).unwrap().mask(), u64::MAX);
    }
}
