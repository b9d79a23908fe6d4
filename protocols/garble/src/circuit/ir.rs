//! The circuit intermediate representation: wires, gates, validation and plain evaluation.
//!
//! A [`Circuit`] is in static single assignment form: every wire is defined exactly once, either
//! as a circuit input (wires `0..num_inputs()`, in input-group order) or as the output of exactly
//! one gate, and every gate reads only wires defined before it. Acyclicity follows from that rule,
//! and [`Circuit::new`] checks it, so a circuit that exists is always evaluable.

use serde::{Deserialize, Serialize};

use super::{CircuitError, Result};

/// Index of a wire.
pub type WireId = u32;

/// Hard limit on wires and gates of one circuit, checked before anything is allocated.
/// 2^28 wires is 4 GiB of 16-byte labels: beyond what this project ever garbles.
pub const MAX_WIRES: u64 = 1 << 28;

/// One gate. Binary gates read `a` and `b`; every gate defines `out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Gate {
    /// `out = a ^ b` (free under free-XOR).
    Xor { a: WireId, b: WireId, out: WireId },
    /// `out = a & b` (the only gate that costs: a garbled table).
    And { a: WireId, b: WireId, out: WireId },
    /// `out = !a` (free).
    Inv { a: WireId, out: WireId },
    /// `out = a` (Bristol Fashion `EQW`, free wiring).
    Copy { a: WireId, out: WireId },
    /// `out = value` (Bristol Fashion `EQ`, a public constant).
    Const { value: bool, out: WireId },
}

impl Gate {
    /// The wire this gate defines.
    pub fn out(&self) -> WireId {
        match *self {
            Gate::Xor { out, .. }
            | Gate::And { out, .. }
            | Gate::Inv { out, .. }
            | Gate::Copy { out, .. }
            | Gate::Const { out, .. } => out,
        }
    }

    /// The wires this gate reads (zero, one or two).
    pub fn inputs(&self) -> ([WireId; 2], usize) {
        match *self {
            Gate::Xor { a, b, .. } | Gate::And { a, b, .. } => ([a, b], 2),
            Gate::Inv { a, .. } | Gate::Copy { a, .. } => ([a, 0], 1),
            Gate::Const { .. } => ([0, 0], 0),
        }
    }
}

/// Gate counts of a circuit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCounts {
    pub and: u64,
    pub xor: u64,
    pub inv: u64,
    /// `Copy` and `Const` gates (free wiring).
    pub other: u64,
}

impl GateCounts {
    /// All gates.
    pub fn total(&self) -> u64 {
        self.and + self.xor + self.inv + self.other
    }
}

/// A validated boolean circuit.
///
/// Inputs are grouped (`input_groups[i]` bits for input value `i`, e.g. one group per party or
/// per Bristol Fashion input); input wires are `0..num_inputs()` in group order. Outputs are an
/// explicit list of wires, grouped the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCircuit", into = "RawCircuit")]
pub struct Circuit {
    num_wires: u32,
    input_groups: Vec<u32>,
    output_groups: Vec<u32>,
    outputs: Vec<WireId>,
    gates: Vec<Gate>,
}

/// Unvalidated twin used for serde, so that a decoded circuit is validated like any other.
#[derive(Serialize, Deserialize)]
struct RawCircuit {
    num_wires: u32,
    input_groups: Vec<u32>,
    output_groups: Vec<u32>,
    outputs: Vec<WireId>,
    gates: Vec<Gate>,
}

impl TryFrom<RawCircuit> for Circuit {
    type Error = CircuitError;
    fn try_from(r: RawCircuit) -> Result<Self> {
        Circuit::new(
            r.num_wires,
            r.input_groups,
            r.output_groups,
            r.outputs,
            r.gates,
        )
    }
}

impl From<Circuit> for RawCircuit {
    fn from(c: Circuit) -> Self {
        RawCircuit {
            num_wires: c.num_wires,
            input_groups: c.input_groups,
            output_groups: c.output_groups,
            outputs: c.outputs,
            gates: c.gates,
        }
    }
}

impl Circuit {
    /// Validates and builds a circuit: sizes within [`MAX_WIRES`], group sums matching, every
    /// wire in range, defined exactly once, and defined before it is read; outputs defined.
    pub fn new(
        num_wires: u32,
        input_groups: Vec<u32>,
        output_groups: Vec<u32>,
        outputs: Vec<WireId>,
        gates: Vec<Gate>,
    ) -> Result<Self> {
        if u64::from(num_wires) > MAX_WIRES || gates.len() as u64 > MAX_WIRES {
            return Err(CircuitError::TooLarge {
                what: "wires or gates",
                value: u64::from(num_wires).max(gates.len() as u64),
                limit: MAX_WIRES,
            });
        }
        let n_in: u64 = input_groups.iter().map(|&g| u64::from(g)).sum();
        if n_in > u64::from(num_wires) {
            return Err(CircuitError::CountMismatch {
                what: "input bits vs wires",
                expected: u64::from(num_wires),
                actual: n_in,
            });
        }
        // In SSA form every wire is an input or a gate output: more wires than that would only
        // be an allocation that the data does not back.
        if u64::from(num_wires) > n_in + gates.len() as u64 {
            return Err(CircuitError::CountMismatch {
                what: "wires vs inputs + gates",
                expected: n_in + gates.len() as u64,
                actual: u64::from(num_wires),
            });
        }
        let n_out: u64 = output_groups.iter().map(|&g| u64::from(g)).sum();
        if n_out != outputs.len() as u64 {
            return Err(CircuitError::CountMismatch {
                what: "output bits",
                expected: n_out,
                actual: outputs.len() as u64,
            });
        }
        let mut defined = vec![false; num_wires as usize];
        defined[..n_in as usize].iter_mut().for_each(|d| *d = true);
        for (index, gate) in gates.iter().enumerate() {
            let (ins, k) = gate.inputs();
            for &w in &ins[..k] {
                match defined.get(w as usize) {
                    None => {
                        return Err(CircuitError::WireOutOfRange {
                            gate: index,
                            wire: w,
                            num_wires,
                        })
                    }
                    Some(false) => {
                        return Err(CircuitError::UseBeforeDefine {
                            gate: index,
                            wire: w,
                        })
                    }
                    Some(true) => {}
                }
            }
            let out = gate.out();
            match defined.get_mut(out as usize) {
                None => {
                    return Err(CircuitError::WireOutOfRange {
                        gate: index,
                        wire: out,
                        num_wires,
                    })
                }
                Some(true) => {
                    return Err(CircuitError::Redefined {
                        gate: index,
                        wire: out,
                    })
                }
                Some(d) => *d = true,
            }
        }
        for &w in &outputs {
            if !defined.get(w as usize).copied().unwrap_or(false) {
                return Err(CircuitError::UndefinedOutput { wire: w });
            }
        }
        Ok(Circuit {
            num_wires,
            input_groups,
            output_groups,
            outputs,
            gates,
        })
    }

    pub fn num_wires(&self) -> u32 {
        self.num_wires
    }
    /// Bits per input group.
    pub fn input_groups(&self) -> &[u32] {
        &self.input_groups
    }
    /// Bits per output group.
    pub fn output_groups(&self) -> &[u32] {
        &self.output_groups
    }
    /// Total input bits (= input wires `0..num_inputs()`).
    pub fn num_inputs(&self) -> usize {
        self.input_groups.iter().map(|&g| g as usize).sum()
    }
    /// Total output bits.
    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }
    /// The output wires in order.
    pub fn outputs(&self) -> &[WireId] {
        &self.outputs
    }
    /// The gates in evaluation order.
    pub fn gates(&self) -> &[Gate] {
        &self.gates
    }

    /// Counts gates by kind.
    pub fn counts(&self) -> GateCounts {
        let mut c = GateCounts::default();
        for g in &self.gates {
            match g {
                Gate::And { .. } => c.and += 1,
                Gate::Xor { .. } => c.xor += 1,
                Gate::Inv { .. } => c.inv += 1,
                Gate::Copy { .. } | Gate::Const { .. } => c.other += 1,
            }
        }
        c
    }

    /// Evaluates the circuit in the clear on `inputs` (one bool per input wire, group order).
    pub fn eval_plain(&self, inputs: &[bool]) -> Result<Vec<bool>> {
        if inputs.len() != self.num_inputs() {
            return Err(CircuitError::CountMismatch {
                what: "input bits",
                expected: self.num_inputs() as u64,
                actual: inputs.len() as u64,
            });
        }
        let mut v = vec![false; self.num_wires as usize];
        v[..inputs.len()].copy_from_slice(inputs);
        // Validation guarantees every index below is in range.
        for g in &self.gates {
            match *g {
                Gate::Xor { a, b, out } => v[out as usize] = v[a as usize] ^ v[b as usize],
                Gate::And { a, b, out } => v[out as usize] = v[a as usize] & v[b as usize],
                Gate::Inv { a, out } => v[out as usize] = !v[a as usize],
                Gate::Copy { a, out } => v[out as usize] = v[a as usize],
                Gate::Const { value, out } => v[out as usize] = value,
            }
        }
        Ok(self.outputs.iter().map(|&w| v[w as usize]).collect())
    }

    /// Splits a flat bit vector into per-group slices (`groups` as given).
    pub fn split_groups<'a>(bits: &'a [bool], groups: &[u32]) -> Vec<&'a [bool]> {
        let mut out = Vec::with_capacity(groups.len());
        let mut rest = bits;
        for &g in groups {
            let (head, tail) = rest.split_at((g as usize).min(rest.len()));
            out.push(head);
            rest = tail;
        }
        out
    }

    /// A 32-byte digest of the circuit (BLAKE3 over a canonical little-endian encoding of its
    /// counts, groups, outputs and gates), used to check that preprocessed garbling material
    /// belongs to the circuit it is evaluated with.
    pub fn digest(&self) -> [u8; 32] {
        let mut buf: Vec<u8> =
            Vec::with_capacity(64 + 13 * self.gates.len() + 4 * self.outputs.len());
        let mut put = |v: u32| buf.extend_from_slice(&v.to_le_bytes());
        put(self.num_wires);
        for list in [&self.input_groups, &self.output_groups, &self.outputs] {
            put(list.len() as u32);
            list.iter().for_each(|&v| put(v));
        }
        for g in &self.gates {
            let (tag, x, y, o) = match *g {
                Gate::Xor { a, b, out } => (0u8, a, b, out),
                Gate::And { a, b, out } => (1, a, b, out),
                Gate::Inv { a, out } => (2, a, 0, out),
                Gate::Copy { a, out } => (3, a, 0, out),
                Gate::Const { value, out } => (4, u32::from(value), 0, out),
            };
            buf.push(tag);
            for v in [x, y, o] {
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        let mut hasher = blake3::Hasher::new_derive_key("seco circuit digest v1");
        hasher.update(&buf);
        *hasher.finalize().as_bytes()
    }
}
