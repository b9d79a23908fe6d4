//! Bristol Fashion and old Bristol circuit files: reading (validated) and writing.
//!
//! # Formats
//! Bristol Fashion:
//! ```text
//! <gates> <wires>
//! <niv> <bits of input 1> ... <bits of input niv>
//! <nov> <bits of output 1> ... <bits of output nov>
//!
//! 2 1 <a> <b> <out> XOR|AND
//! 1 1 <a> <out> INV|EQW
//! 1 1 <0|1> <out> EQ
//! ```
//! Old Bristol: line 2 is `<bits of input 1> <bits of input 2> <bits of output>`, there is no
//! output line, and gates are XOR, AND and INV. In both, input wires come first (input 1, then
//! input 2, ...) and the outputs are the last wires. `MAND` and anything else is refused.
//!
//! # Bit order (established by test against known answers, `tests/circuit_bristol.rs`)
//! Within one input or output value, **wire 0 of the value is the least significant bit** of
//! the value read as a number; [`crate::circuit::bits`] converts hex strings (big-endian
//! numbers, as the FIPS-197 vectors are written) to and from that order:
//! - `adder_32bit.txt` (old Bristol): a and b are 32-bit numbers, LSB first, output 33 bits;
//! - `aes_128.txt` (Bristol Fashion, emp-toolkit): input 1 is the key, input 2 the plaintext,
//!   output the ciphertext, each a 128-bit number whose hex form is the FIPS-197 byte string,
//!   with wire 0 the least significant bit of the last byte.
//!
//! # Validation
//! Counts are bounded by [`MAX_WIRES`] before anything is allocated, and nothing is allocated
//! in proportion to a declared count that the file does not back with lines. Every error is a
//! typed [`CircuitError`] with its line number; the final circuit goes through
//! [`Circuit::new`] (ranges, single definition, use before definition, hence no cycles).

use std::fmt::Write as _;

use super::ir::{Circuit, Gate, WireId, MAX_WIRES};
use super::{CircuitError, Result};

/// Which Bristol dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Bristol Fashion (input and output groups declared).
    Fashion,
    /// The older Bristol format (two inputs, one output).
    Old,
}

impl Format {
    /// Guesses the dialect: Bristol Fashion when the third line is an output declaration
    /// (`nov` followed by exactly `nov` numbers), else the old format.
    pub fn detect(text: &str) -> Format {
        let mut lines = text.lines();
        let third = lines.nth(2).unwrap_or("");
        let nums: Option<Vec<u64>> = third.split_whitespace().map(|t| t.parse().ok()).collect();
        match nums {
            Some(v) if !v.is_empty() && v[0] as usize + 1 == v.len() => Format::Fashion,
            _ => Format::Old,
        }
    }
}

/// Reads a circuit in `format` (or the detected one when `None`).
pub fn read(text: &str, format: Option<Format>) -> Result<Circuit> {
    match format.unwrap_or_else(|| Format::detect(text)) {
        Format::Fashion => read_fashion(text),
        Format::Old => read_old(text),
    }
}

/// Non-empty lines with their 1-based line numbers.
struct Lines<'a> {
    inner: std::iter::Enumerate<std::str::Lines<'a>>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            inner: text.lines().enumerate(),
        }
    }
    /// Next non-blank line as tokens.
    fn next_tokens(&mut self, what: &'static str) -> Result<(usize, Vec<&'a str>)> {
        for (i, line) in self.inner.by_ref() {
            let toks: Vec<&str> = line.split_whitespace().collect();
            if !toks.is_empty() {
                return Ok((i + 1, toks));
            }
        }
        Err(CircuitError::Truncated { what })
    }
}

fn num(tok: &str, line: usize) -> Result<u64> {
    tok.parse::<u64>().map_err(|_| CircuitError::Parse {
        line,
        message: format!("not a number: {tok:?}"),
    })
}

fn bounded(value: u64, what: &'static str) -> Result<u32> {
    if value > MAX_WIRES {
        return Err(CircuitError::TooLarge {
            what,
            value,
            limit: MAX_WIRES,
        });
    }
    Ok(value as u32)
}

/// `n v1 .. vn` on one line.
fn counted_list(line: usize, toks: &[&str]) -> Result<Vec<u32>> {
    let n = num(toks.first().copied().unwrap_or(""), line)? as usize;
    if toks.len() != n + 1 {
        return Err(CircuitError::Parse {
            line,
            message: format!(
                "expected {n} values after the count, found {}",
                toks.len().saturating_sub(1)
            ),
        });
    }
    toks[1..]
        .iter()
        .map(|t| num(t, line).and_then(|v| bounded(v, "group bits")))
        .collect()
}

fn header(lines: &mut Lines<'_>) -> Result<(u32, u32)> {
    let (line, toks) = lines.next_tokens("header")?;
    if toks.len() != 2 {
        return Err(CircuitError::Parse {
            line,
            message: "header must be `<gates> <wires>`".into(),
        });
    }
    let gates = bounded(num(toks[0], line)?, "gates")?;
    let wires = bounded(num(toks[1], line)?, "wires")?;
    Ok((gates, wires))
}

fn read_fashion(text: &str) -> Result<Circuit> {
    let mut lines = Lines::new(text);
    let (n_gates, n_wires) = header(&mut lines)?;
    let (l, toks) = lines.next_tokens("input declaration")?;
    let inputs = counted_list(l, &toks)?;
    let (l, toks) = lines.next_tokens("output declaration")?;
    let outputs = counted_list(l, &toks)?;
    finish(lines, n_gates, n_wires, inputs, outputs)
}

fn read_old(text: &str) -> Result<Circuit> {
    let mut lines = Lines::new(text);
    let (n_gates, n_wires) = header(&mut lines)?;
    let (line, toks) = lines.next_tokens("input/output declaration")?;
    if toks.len() != 3 {
        return Err(CircuitError::Parse {
            line,
            message: "expected `<in1> <in2> <out>`".into(),
        });
    }
    let v: Vec<u32> = toks
        .iter()
        .map(|t| num(t, line).and_then(|v| bounded(v, "group bits")))
        .collect::<Result<_>>()?;
    finish(lines, n_gates, n_wires, vec![v[0], v[1]], vec![v[2]])
}

fn finish(
    mut lines: Lines<'_>,
    n_gates: u32,
    n_wires: u32,
    inputs: Vec<u32>,
    outputs: Vec<u32>,
) -> Result<Circuit> {
    let n_out: u64 = outputs.iter().map(|&b| u64::from(b)).sum();
    if n_out > u64::from(n_wires) {
        return Err(CircuitError::CountMismatch {
            what: "output bits vs wires",
            expected: u64::from(n_wires),
            actual: n_out,
        });
    }
    // Never trust the declared count for the allocation: a few bytes can claim 2^28 gates.
    let mut gates = Vec::with_capacity((n_gates as usize).min(1 << 16));
    while gates.len() < n_gates as usize {
        let (line, toks) = lines.next_tokens("gate lines")?;
        gates.push(parse_gate(line, &toks)?);
    }
    if let Ok((line, _)) = lines.next_tokens("") {
        return Err(CircuitError::Parse {
            line,
            message: format!("more gate lines than the declared {n_gates}"),
        });
    }
    let first_out = n_wires - n_out as u32;
    let output_wires: Vec<WireId> = (first_out..n_wires).collect();
    Circuit::new(n_wires, inputs, outputs, output_wires, gates)
}

fn parse_gate(line: usize, toks: &[&str]) -> Result<Gate> {
    let Some((&name, rest)) = toks.split_last() else {
        return Err(CircuitError::Parse {
            line,
            message: "empty gate".into(),
        });
    };
    let mut v = Vec::with_capacity(rest.len());
    for t in rest {
        v.push(bounded(num(t, line)?, "wire id")?);
    }
    let gate = match (name, v.as_slice()) {
        ("XOR", &[2, 1, a, b, out]) => Gate::Xor { a, b, out },
        ("AND", &[2, 1, a, b, out]) => Gate::And { a, b, out },
        ("INV" | "NOT", &[1, 1, a, out]) => Gate::Inv { a, out },
        ("EQW", &[1, 1, a, out]) => Gate::Copy { a, out },
        ("EQ", &[1, 1, c, out]) if c <= 1 => Gate::Const { value: c == 1, out },
        ("XOR" | "AND" | "INV" | "NOT" | "EQW" | "EQ", _) => {
            return Err(CircuitError::Parse {
                line,
                message: format!("malformed {name} gate"),
            })
        }
        _ => {
            return Err(CircuitError::UnknownGate {
                line,
                name: name.chars().take(32).collect(),
            })
        }
    };
    Ok(gate)
}

/// Writes `circuit` in Bristol Fashion. Outputs are copied (EQW) to fresh trailing wires, as
/// the format requires the outputs to be the last wires.
pub fn write_fashion(circuit: &Circuit) -> String {
    let n_out = circuit.num_outputs() as u32;
    let n_wires = circuit.num_wires() + n_out;
    let n_gates = circuit.gates().len() + n_out as usize;
    let mut s = String::with_capacity(n_gates * 16 + 64);
    let list = |v: &[u32]| v.iter().map(|x| format!(" {x}")).collect::<String>();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "{n_gates} {n_wires}");
    let _ = writeln!(
        s,
        "{}{}",
        circuit.input_groups().len(),
        list(circuit.input_groups())
    );
    let _ = writeln!(
        s,
        "{}{}",
        circuit.output_groups().len(),
        list(circuit.output_groups())
    );
    s.push('\n');
    for g in circuit.gates() {
        let _ = match *g {
            Gate::Xor { a, b, out } => writeln!(s, "2 1 {a} {b} {out} XOR"),
            Gate::And { a, b, out } => writeln!(s, "2 1 {a} {b} {out} AND"),
            Gate::Inv { a, out } => writeln!(s, "1 1 {a} {out} INV"),
            Gate::Copy { a, out } => writeln!(s, "1 1 {a} {out} EQW"),
            Gate::Const { value, out } => writeln!(s, "1 1 {} {out} EQ", u8::from(value)),
        };
    }
    for (i, &w) in circuit.outputs().iter().enumerate() {
        let _ = writeln!(s, "1 1 {w} {} EQW", circuit.num_wires() + i as u32);
    }
    s
}
