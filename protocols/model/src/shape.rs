//! Shapes and the size limits that keep hostile files from allocating absurd amounts.

use super::error::{ModelError, Result};

/// Largest number of elements of any single tensor (weights or activations): 2^26.
pub const MAX_ELEMENTS: usize = 1 << 26;
/// Largest single dimension.
pub const MAX_DIM: usize = 1 << 24;
/// Largest number of layers in a model.
pub const MAX_LAYERS: usize = 1024;
/// Largest manifest file, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Largest weight or test-set file, in bytes (1 GiB).
pub const MAX_TENSOR_FILE_BYTES: u64 = 1 << 30;

/// Product of `dims`, refusing zero dimensions and anything above [`MAX_ELEMENTS`]; computed
/// with checked arithmetic so that `2^40`-element claims are refused before any allocation.
pub fn checked_elements(what: &str, dims: &[usize]) -> Result<usize> {
    let bad = || ModelError::BadDimensions {
        what: what.to_string(),
        dims: dims.to_vec(),
        limit: MAX_ELEMENTS,
    };
    if dims.is_empty() || dims.iter().any(|&d| d == 0 || d > MAX_DIM) {
        return Err(bad());
    }
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(bad)
}

/// Output size of a convolution or pooling window along one axis:
/// `floor((len + 2*pad - k) / stride) + 1`, or `None` if the window does not fit.
pub fn window_out(len: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    if k == 0 || stride == 0 {
        return None;
    }
    let padded = len.checked_add(pad.checked_mul(2)?)?;
    if k > padded {
        return None;
    }
    Some((padded - k) / stride + 1)
}

/// A `[C, H, W]` shape from a generic one, or a structure error.
pub fn chw(shape: &[usize]) -> Option<[usize; 3]> {
    match shape {
        [c, h, w] => Some([*c, *h, *w]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_sizes_are_refused() {
        assert!(checked_elements("w", &[1 << 20, 1 << 20]).is_err());
        assert!(checked_elements("w", &[usize::MAX, 2]).is_err());
        assert!(checked_elements("w", &[0, 3]).is_err());
        assert_eq!(checked_elements("w", &[3, 4]).unwrap(), 12);
    }

    #[test]
    fn windows() {
        assert_eq!(window_out(28, 5, 2, 2), Some(14));
        assert_eq!(window_out(14, 2, 2, 0), Some(7));
        assert_eq!(window_out(3, 5, 1, 0), None);
        assert_eq!(window_out(3, 1, 0, 0), None);
    }
}
