//! # seco-protocols
//!
//! Pure protocol logic of seco-rs (DESIGN.md s.6): no async, no I/O, no clocks. Every protocol
//! takes explicit inputs and an `&mut impl CryptoRng` and returns outgoing messages and outputs,
//! so that it can be tested without a network, deterministically from a seeded RNG, and driven
//! from an actor's mailbox with persistence between steps.
//!
//! # Crates
//! The protocol logic is split along its rooms into crates (Cargo enforces the dependency
//! direction and builds them in parallel); this crate holds the top room and re-exports the
//! others, so `seco_protocols::mhe::...` and the like name the same items everywhere:
//!
//! | crate | modules | depends on |
//! | --- | --- | --- |
//! | `seco-core` (`protocols/core`) | [`fixed`], [`redact`] | - |
//! | `seco-model` (`protocols/model`) | [`model`], [`onnx`] | core |
//! | `seco-mhe` (`protocols/mhe`) | [`mhe`] | core, model |
//! | `seco-garble` (`protocols/garble`) | [`circuit`], [`ot`], [`gc`], [`bmr`] (and [`garble`]'s `block`, `hash`) | core |
//! | `seco-protocols` (`protocols`) | [`plan`], [`seco`] | all of the above |
//!
//! `plan` sits here, not with the models: choosing a split's parameter set needs the MHE noise
//! budget and the message-size limit of `seco::msg`.
//!
//! # Layout
//! - [`fixed`]: the fixed-point ring `Z_{2^k}` (two's complement, scale `2^f`) and its exact
//!   truncation semantics (DESIGN.md s.3).
//! - [`model`]: models (layers, shapes), the on-disk format (JSON manifest + safetensors), float
//!   inference and the bit-exact fixed-point reference inference (DESIGN.md s.4).
//! - [`onnx`]: import of ONNX models (PyTorch / Keras exports) into the model format.
//! - [`plan`]: split plans (which server owns which linear layer) and the per-party parts.
//! - [`mhe`]: multiparty BFV on `fhe` 0.1.1 (keygen, encrypted linear layers, E2S, result
//!   decryption, noise flooding).
//! - [`circuit`], [`ot`], [`gc`], [`bmr`]: boolean circuits, oblivious transfer, 2-party
//!   half-gates garbling and multiparty BMR garbling.
//! - [`redact`]: `Debug` that prints `[redacted]` for the types holding secrets.
//! - [`seco`]: the SECO phases end to end.
//!
//! # Threads
//! The heavy loops of garbling and evaluation (`bmr`: table shares, evaluation of each layer of
//! AND gates) run on rayon's global pool: every core by default, [`set_threads`] to choose.
//! The state machines stay single-threaded and deterministic (same messages for the same seed,
//! whatever the number of threads).

pub mod plan;
pub mod seco;

pub use seco_core::{fixed, redact, redacted_debug};
pub use seco_garble as garble;
pub use seco_garble::{bmr, circuit, gc, ot};
pub use seco_mhe as mhe;
pub use seco_model as model;
pub use seco_model::onnx;

/// Sizes the global thread pool of the garbling and evaluation loops (call once, before any
/// protocol work; `seco --threads N`). Errors if the pool was already started.
pub fn set_threads(threads: usize) -> Result<(), String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build_global()
        .map_err(|e| format!("thread pool: {e}"))
}
