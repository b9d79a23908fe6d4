//! # seco-core
//!
//! The primitives every protocol crate of seco-rs shares: the fixed-point ring and `Debug`
//! redaction for secrets. Re-exported by the `seco-protocols` facade.
//!
//! # Layout
//! - [`fixed`]: the fixed-point ring `Z_{2^k}` (two's complement, scale `2^f`) and its exact
//!   truncation semantics (DESIGN.md s.3).
//! - [`redact`]: `Debug` that prints `[redacted]` for the types holding secrets.

pub mod fixed;
pub mod redact;
