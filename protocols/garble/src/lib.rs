//! # seco-garble
//!
//! Boolean circuits and their secure evaluation (DESIGN.md s.5, non-linear layers): sans-IO,
//! like the rest of `seco-protocols`, whose facade re-exports every module here.
//!
//! # Layout
//! - [`block`], [`hash`]: the 128-bit block and the fixed-key-AES TMMO hash shared by OT and
//!   both garbling schemes (below them all: `ot` does not depend on `gc`).
//! - [`circuit`]: the circuit IR, builder, word gadgets and Bristol reader/writer.
//! - [`ot`]: base OT (Masny-Rindal) and IKNP extension, and the bit-to-arithmetic conversion.
//! - [`gc`]: two-party half-gates garbling and its protocol.
//! - [`bmr`]: multiparty BMR garbling (n garblers, one evaluator).
//!
//! Dependencies: `seco-core` only (for `Debug` redaction); nothing here knows models or HE.

pub mod block;
pub mod hash;

pub mod bmr;
pub mod circuit;
pub mod gc;
pub mod ot;
