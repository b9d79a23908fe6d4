//! The public schedule of a split model: for every stage its owner, the MHE packing of its
//! linear layer, and (except for the last stage) its garbled circuit with evaluator and
//! receiver. Every server derives the same schedule from the skeleton of its part.
//!
//! Roles (DESIGN.md s.5): the owner `O(l)` evaluates the linear layer; the circuit's output goes
//! only to the receiver `O(l+1)`; the evaluator is a server other than the receiver: the
//! owner `O(l)` when it differs from `O(l+1)`, else the next server after `O(l+1)`.

use std::sync::Arc;

use crate::bmr::BmrConfig;
use crate::circuit::{Circuit, Program};
use crate::fixed::FixedPoint;
use crate::mhe::{LayerPacking, ParamId};
use crate::plan::{ServerPart, StageSpec};

use super::circuits::StageCircuitSpec;
use super::error::{Result, SecoError};

/// A stage's garbled circuit, compiled once per session and shared by every bundle.
#[derive(Debug)]
pub struct StageGc {
    /// Its shape and wiring.
    pub spec: StageCircuitSpec,
    /// The circuit.
    pub circuit: Circuit,
    /// Compiled for garbling.
    pub program: Arc<Program>,
    /// Compacted for evaluation.
    pub compact: Arc<Program>,
    /// Evaluator (never the receiver).
    pub evaluator: usize,
    /// Owner of the next stage: the only party that learns the output.
    pub receiver: usize,
    /// The BMR configuration with a placeholder session id (the digest is computed once);
    /// every input but the owner's `y` words is fixed in preprocessing.
    pub bmr: BmrConfig,
}

impl StageGc {
    /// The BMR configuration of one garbling (one bundle) of this circuit.
    pub fn bmr_config(&self, session: [u8; 16]) -> BmrConfig {
        BmrConfig {
            session,
            ..self.bmr.clone()
        }
    }
}

/// One stage of the schedule.
#[derive(Debug)]
pub struct StageSchedule {
    /// The public stage description.
    pub spec: StageSpec,
    /// Owner of the linear layer.
    pub owner: usize,
    /// MHE layouts of the linear layer's input and output.
    pub packing: LayerPacking,
    /// Length of the linear layer's output.
    pub y_len: usize,
    /// The non-linear circuit (none for the last stage: the user truncates the logits).
    pub gc: Option<StageGc>,
}

/// The whole schedule.
#[derive(Debug)]
pub struct Schedule {
    /// Number of servers.
    pub n: usize,
    /// Ring and scale.
    pub fp: FixedPoint,
    /// MHE parameter set of the collective key.
    pub param: ParamId,
    /// Stages in order.
    pub stages: Vec<StageSchedule>,
    /// Digest of the skeleton (servers must agree on it).
    pub digest: [u8; 32],
}

/// The evaluator of stage `l`'s circuit: `O(l)` unless it is also `O(l+1)`.
pub fn evaluator(owner: usize, receiver: usize, n: usize) -> usize {
    if owner != receiver {
        owner
    } else {
        (receiver + 1) % n
    }
}

impl Schedule {
    /// Builds the schedule of a server part (validated by the caller).
    pub fn new(part: &ServerPart, param: ParamId) -> Result<Self> {
        let n = part.servers.len();
        let fp = part.fixed_point;
        let degree = param.params()?.degree();
        let mut stages = Vec::with_capacity(part.skeleton.len());
        for (l, spec) in part.skeleton.iter().enumerate() {
            let packing = LayerPacking::new(&spec.linear, degree)?;
            let y_len = spec.linear.out_len();
            let gc = match part.skeleton.get(l + 1) {
                None => None,
                Some(next) => {
                    let receiver = next.owner;
                    let cspec = StageCircuitSpec {
                        parties: n,
                        k: fp.ring_bits as usize,
                        f: fp.frac_bits as usize,
                        y_len,
                        r_len: next.linear.in_len(),
                        receiver,
                        post: spec.post.clone(),
                    };
                    let circuit = cspec.build()?;
                    let program = Program::compile(&circuit)?;
                    let compact = Arc::new(program.compact());
                    let ev = evaluator(spec.owner, receiver, n);
                    let outputs = vec![receiver; circuit.num_outputs()];
                    let bmr =
                        BmrConfig::new([0; 16], &circuit, n, ev, cspec.input_owners(), outputs)?
                            .with_offline_inputs(cspec.known_offline(spec.owner))?;
                    Some(StageGc {
                        bmr,
                        spec: cspec,
                        program: Arc::new(program),
                        compact,
                        evaluator: ev,
                        receiver,
                        circuit,
                    })
                }
            };
            if let Some(gc) = &gc {
                let out: usize = spec.out_shape.iter().product();
                if gc.spec.r_len != out {
                    return Err(SecoError::Mismatch(format!(
                        "stage {l}: output of {out} values but the next layer takes {}",
                        gc.spec.r_len
                    )));
                }
            }
            stages.push(StageSchedule {
                spec: spec.clone(),
                owner: spec.owner,
                packing,
                y_len,
                gc,
            });
        }
        Ok(Self {
            n,
            fp,
            param,
            stages,
            digest: skeleton_digest(part),
        })
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether there are no stages.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The stage, or a typed error for an out-of-range index from the network.
    pub fn stage(&self, l: u16) -> Result<&StageSchedule> {
        self.stages.get(usize::from(l)).ok_or(SecoError::Length {
            what: "stage index",
            expected: self.stages.len(),
            actual: usize::from(l),
        })
    }
}

/// BLAKE3 of the CBOR encoding of everything public about the split: model, servers,
/// fixed point, input shape and skeleton.
pub fn skeleton_digest(part: &ServerPart) -> [u8; 32] {
    let mut bytes = Vec::new();
    let public = (
        &part.model,
        &part.servers,
        part.fixed_point,
        &part.input_shape,
        &part.skeleton,
    );
    let _ = ciborium::into_writer(&public, &mut bytes);
    *blake3::hash(&bytes).as_bytes()
}

/// A 16-byte id derived from a domain, a bundle and a stage (BMR sessions, E2S instances).
pub fn derive_id(domain: &[u8], bundle: &[u8; 16], stage: u16) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(domain);
    h.update(bundle);
    h.update(&stage.to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}
