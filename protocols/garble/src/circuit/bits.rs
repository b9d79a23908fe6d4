//! Conversions between values (hex strings, integers) and circuit bit vectors.
//!
//! The convention throughout seco (and, by test, of the reference Bristol circuits): the bits of
//! one value are least significant first, and a hex string is a big-endian number (its last
//! hex digit holds bits 0..3). So hex `"01"` as 8 bits is `[1,0,0,0,0,0,0,0]`.

use super::{CircuitError, Result};

/// Parses `hex` (optional `0x`, even or odd length) as a big-endian number of `nbits` bits,
/// least significant bit first. The number must fit in `nbits` bits.
pub fn hex_to_bits(hex: &str, nbits: usize) -> Result<Vec<bool>> {
    let h = hex.trim().trim_start_matches("0x");
    let mut bits = Vec::with_capacity(nbits);
    for c in h.chars().rev() {
        let d = c.to_digit(16).ok_or_else(|| CircuitError::BadValue {
            message: format!("not a hex digit: {c:?}"),
        })?;
        for i in 0..4 {
            bits.push((d >> i) & 1 == 1);
        }
    }
    if bits.len() > nbits {
        if bits[nbits..].iter().any(|&b| b) {
            return Err(CircuitError::BadValue {
                message: format!("value {hex:?} does not fit in {nbits} bits"),
            });
        }
        bits.truncate(nbits);
    }
    bits.resize(nbits, false);
    Ok(bits)
}

/// Formats bits (least significant first) as a big-endian hex number of `ceil(len/4)` digits.
pub fn bits_to_hex(bits: &[bool]) -> String {
    let digits: Vec<char> = bits
        .chunks(4)
        .map(|c| {
            let d = c
                .iter()
                .enumerate()
                .fold(0u32, |a, (i, &b)| a | (u32::from(b) << i));
            char::from_digit(d, 16).unwrap_or('?')
        })
        .collect();
    digits.iter().rev().collect()
}

/// `value mod 2^k` as k bits, least significant first.
pub fn u64_to_bits(value: u64, k: usize) -> Vec<bool> {
    (0..k).map(|i| i < 64 && (value >> i) & 1 == 1).collect()
}

/// Bits (least significant first, at most 64) to an integer.
pub fn bits_to_u64(bits: &[bool]) -> u64 {
    bits.iter()
        .take(64)
        .enumerate()
        .fold(0u64, |a, (i, &b)| a | (u64::from(b) << i))
}
