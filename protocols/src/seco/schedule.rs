//! The public schedule of a split model: for every stage its owner, the MHE packing of its
//! linear layer, and its garbled circuit with evaluator and receiver (the last stage's once
//! the output mode is set). Every server derives the same schedule from the skeleton of its part.
//!
//! Roles (DESIGN.md s.5): the owner `O(l)` evaluates the linear layer; the circuit's output goes
//! only to the receiver `O(l+1)`, which is also its evaluator ([`LAYOUT`]: the evaluator
//! decodes the output itself and goes on as the next stage's owner, one message hop less per
//! stage; `docs/protocol.md`, "Who evaluates").
//!
//! The last stage's circuit (the output circuit: truncated logits or their argmax,
//! `circuits.rs`) depends on the user's output mode, known only when the session opens: the
//! schedule is built without it and [`Schedule::set_output`] adds it. Its receiver and
//! evaluator is the gateway, which sends the user the result: the other servers' shares of it
//! are known in preprocessing and reach the gateway as the inference starts, so the result
//! leaves as soon as the gateway has evaluated the output circuit.
//!
//! Chunks: every stage circuit is split into chunks of consecutive output elements, each its
//! own BMR garbling ([`StageGc`], `circuits.rs`), sized so that a chunk's garbled table, its
//! largest message, stays below a byte budget ([`MAX_CHUNK_TABLE_BYTES`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::bmr::BmrConfig;
use crate::circuit::{Program, Split};
use crate::fixed::FixedPoint;
use crate::mhe::{LayerPacking, ParamId};
use crate::plan::{ServerPart, StageSpec};

use super::circuits::StageCircuitSpec;
use super::error::{Result, SecoError};
use super::output::OutputMode;

/// Garbled-table bytes one chunk may hold at most (unless a single output element needs
/// more): the size of its largest message, the evaluator's table share (`docs/protocol.md`,
/// "Chunks").
pub const MAX_CHUNK_TABLE_BYTES: usize = 4 << 20;

/// Version of the roles above (who evaluates which circuit), part of [`Schedule::digest`] and
/// of every session record: servers of different layouts refuse each other's `Open`, and a
/// stored session whose bundles were garbled for another layout is dropped on resume (its
/// tables sit at another server). 0: the evaluator was `O(l)` (or the next server when
/// `O(l) = O(l+1)`) and the output circuit's receiver `O(L)` (until 2026-12-07); 1: the
/// evaluator is the receiver, and the output circuit's receiver is the gateway.
pub const LAYOUT: u16 = 1;

/// The gateway's server index (`Party::GATEWAY`).
const GATEWAY_INDEX: usize = 0;

/// Chunk garblings a server starts on its own per bundle while fewer than this many run
/// (`server/garble.rs`).
pub const CHUNK_WINDOW: usize = 8;

/// One chunk of a stage circuit: compiled once per session and shared by every bundle.
#[derive(Debug)]
pub struct ChunkGc {
    /// Its shape and wiring (its outputs and the `y` words it reads).
    pub spec: StageCircuitSpec,
    /// Compiled for garbling (shared by chunks with the same circuit).
    pub program: Arc<Program>,
    /// Cut into independent parts for evaluation (`circuit::Split`).
    pub split: Arc<Split>,
    /// The BMR configuration with a placeholder session id; every input but the owner's `y`
    /// words is fixed in preprocessing.
    pub bmr: BmrConfig,
}

impl ChunkGc {
    /// The BMR configuration of one garbling (one bundle) of this chunk.
    pub fn bmr_config(&self, session: [u8; 16]) -> BmrConfig {
        BmrConfig {
            session,
            ..self.bmr.clone()
        }
    }

    /// Bytes of the evaluator's garbled table of this chunk.
    pub fn table_bytes(&self) -> usize {
        self.bmr.table_len(&self.program) * 16
    }
}

/// A stage's garbled circuit: its chunks, each garbled and evaluated on its own.
#[derive(Debug)]
pub struct StageGc {
    /// The whole stage's shape (lengths, post sequence; no circuit is built for it).
    pub spec: StageCircuitSpec,
    /// Output elements per chunk (the last chunk may have fewer).
    pub chunk_len: usize,
    /// The chunks in output order.
    pub chunks: Vec<ChunkGc>,
    /// Evaluator: the receiver ([`evaluator`]).
    pub evaluator: usize,
    /// Owner of the next stage: the only party that learns the output.
    pub receiver: usize,
}

impl StageGc {
    /// Splits the stage into chunks of at most `budget` bytes of garbled table (at least one
    /// output element per chunk): the table of a one-element chunk (the first and the last,
    /// the larger) bounds each element's share, since cones of neighbouring outputs overlap.
    fn new(spec: StageCircuitSpec, n: usize, budget: usize, stage: usize) -> Result<Self> {
        let (owner, receiver) = (spec.owner, spec.receiver);
        let ev = evaluator(owner, receiver);
        let mut cache: HashMap<[u8; 32], (Arc<Program>, Arc<Split>)> = HashMap::new();
        // `c`: the chunk's index; with the stage's it rotates the start of the chunk's table
        // chain (`BmrConfig::chain_start`: every place but the first receives a table part),
        // so that one-chunk stages rotate too.
        let mut compile = |c: usize, cspec: StageCircuitSpec| -> Result<ChunkGc> {
            let circuit = cspec.build()?;
            // Hashed once per chunk: most chunks of a stage share one circuit.
            let digest = circuit.digest();
            let (program, split) = match cache.get(&digest) {
                Some(p) => p.clone(),
                None => {
                    let program = Arc::new(Program::compile(&circuit)?);
                    let split = Arc::new(Split::new(program.clone()));
                    let p = (program, split);
                    cache.insert(digest, p.clone());
                    p
                }
            };
            let outputs = vec![receiver; circuit.num_outputs()];
            let bmr =
                BmrConfig::for_program([0; 16], &program, n, ev, cspec.input_owners(), outputs)?
                    .with_offline_inputs(cspec.known_offline())?
                    .with_chain_start(stage + c);
            Ok(ChunkGc {
                spec: cspec,
                program,
                split,
                bmr,
            })
        };
        let r_len = spec.r_len;
        let first = compile(0, spec.chunk(0..1)?)?.table_bytes();
        let last = compile(0, spec.chunk(r_len - 1..r_len)?)?.table_bytes();
        let chunk_len = (budget / first.max(last).max(1)).clamp(1, r_len);
        let chunks = spec
            .chunks(chunk_len)?
            .into_iter()
            .enumerate()
            .map(|(c, cspec)| compile(c, cspec))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            spec,
            chunk_len,
            chunks,
            evaluator: ev,
            receiver,
        })
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
    /// The stage's circuit; for the last stage the output circuit, once the session's output
    /// mode is set ([`Schedule::set_output`]).
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
    /// The output mode the last stage's circuit was built for (none before the session opens).
    pub output: Option<OutputMode>,
    /// Garbled-table bytes per chunk (for the output circuit).
    chunk_budget: usize,
}

/// The evaluator of a stage circuit: its receiver, whoever owns its input (layout 1; the
/// owner is kept in the signature for the layouts to come). The receiver learns the output
/// either way; evaluating it too saves the hop of the masked outputs (`docs/protocol.md`,
/// "Who evaluates", for why this reveals nothing more).
pub fn evaluator(_owner: usize, receiver: usize) -> usize {
    receiver
}

impl Schedule {
    /// Builds the schedule of a server part (validated by the caller), with stage circuits
    /// split into chunks of at most `chunk_budget` bytes of garbled table
    /// ([`MAX_CHUNK_TABLE_BYTES`] in deployments; part of the digest, so servers agree).
    pub fn new(part: &ServerPart, param: ParamId, chunk_budget: usize) -> Result<Self> {
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
                    let r_len = next.linear.in_len();
                    let out: usize = spec.out_shape.iter().product();
                    let post_len = spec.post.iter().fold(y_len, |len, op| op.out_len(len));
                    if r_len != out || post_len != out || out == 0 {
                        return Err(SecoError::Mismatch(format!(
                            "stage {l}: output of {out} values ({post_len} after its \
                             non-linear layers) but the next layer takes {r_len}"
                        )));
                    }
                    let cspec = StageCircuitSpec::whole(
                        n,
                        (fp.ring_bits as usize, fp.frac_bits as usize),
                        (y_len, r_len),
                        (spec.owner, next.owner),
                        spec.post.clone(),
                    )?;
                    Some(StageGc::new(cspec, n, chunk_budget, l)?)
                }
            };
            stages.push(StageSchedule {
                spec: spec.clone(),
                owner: spec.owner,
                packing,
                y_len,
                gc,
            });
        }
        let mut h = blake3::Hasher::new();
        h.update(&skeleton_digest(part));
        h.update(&(chunk_budget as u64).to_le_bytes());
        h.update(&param.code().to_le_bytes());
        if LAYOUT != 0 {
            // Layout 0 hashed nothing here: its digests stay as they were.
            h.update(&LAYOUT.to_le_bytes());
        }
        Ok(Self {
            n,
            fp,
            param,
            stages,
            digest: *h.finalize().as_bytes(),
            output: None,
            chunk_budget,
        })
    }

    /// Builds the last stage's output circuit for `mode` (once per session; setting the same
    /// mode again is a no-op, another one is refused).
    pub fn set_output(&mut self, mode: OutputMode) -> Result<()> {
        match self.output {
            Some(m) if m == mode => return Ok(()),
            Some(m) => {
                return Err(SecoError::Mismatch(format!(
                    "output mode {mode} asked, the session runs {m}"
                )))
            }
            None => {}
        }
        let (n, fp, budget) = (self.n, self.fp, self.chunk_budget);
        let last = self.stages.last_mut().ok_or(SecoError::Length {
            what: "stages",
            expected: 1,
            actual: 0,
        })?;
        let spec = StageCircuitSpec::output(
            n,
            (fp.ring_bits as usize, fp.frac_bits as usize),
            last.y_len,
            (last.owner, GATEWAY_INDEX),
            mode == OutputMode::Label,
        )?;
        let l = self.stages.len() - 1;
        let last = &mut self.stages[l];
        last.gc = Some(StageGc::new(spec, n, budget, l)?);
        self.output = Some(mode);
        Ok(())
    }

    /// Ring elements of the result the user decrypts (0 before the output mode is set).
    pub fn output_len(&self) -> usize {
        self.stages
            .last()
            .and_then(|s| s.gc.as_ref())
            .map_or(0, |g| g.spec.r_len)
    }

    /// Whether stage `l` is the last one (its circuit's output goes to the user).
    pub fn is_last(&self, l: usize) -> bool {
        l + 1 == self.stages.len()
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

impl Schedule {
    /// Bytes of garbled tables per bundle, over every chunk of every stage circuit built so far
    /// (the output circuit only once [`Schedule::set_output`] ran): what the evaluators receive
    /// and read per bundle, the measure of a split's non-linear cost (the actors scale their
    /// phase deadlines with it).
    pub fn table_bytes(&self) -> u64 {
        self.stages
            .iter()
            .filter_map(|s| s.gc.as_ref())
            .flat_map(|gc| gc.chunks.iter())
            .map(|c| c.table_bytes() as u64)
            .sum()
    }

    /// Chunk `c` of stage `l`'s circuit, or a typed error for indices from the network.
    pub fn chunk(&self, l: u16, c: u32) -> Result<&ChunkGc> {
        let gc = self.stage(l)?.gc.as_ref().ok_or(SecoError::Length {
            what: "stage with a circuit",
            expected: self.stages.len().saturating_sub(1),
            actual: usize::from(l),
        })?;
        gc.chunks.get(c as usize).ok_or(SecoError::Length {
            what: "chunk index",
            expected: gc.chunks.len(),
            actual: c as usize,
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

/// The garbling id of chunk `chunk` of stage `stage` of a bundle: unique per (bundle, stage,
/// chunk), as the OT setup requires.
pub fn chunk_id(bundle: &[u8; 16], stage: u16, chunk: u32) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"seco bmr chunk");
    h.update(bundle);
    h.update(&stage.to_le_bytes());
    h.update(&chunk.to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// A 16-byte id derived from a domain, a bundle and a stage (E2S instances).
pub fn derive_id(domain: &[u8], bundle: &[u8; 16], stage: u16) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(domain);
    h.update(bundle);
    h.update(&stage.to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}
