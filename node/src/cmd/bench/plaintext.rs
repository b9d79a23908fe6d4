//! The plaintext baseline: the fixed-point reference inference of each input, timed.

use std::time::{Duration, Instant};

use anyhow::Result;
use seco_protocols::model::QuantModel;

/// Times the plaintext fixed-point inference of each input; returns the signed logits.
pub fn plaintext(q: &QuantModel, inputs: &[Vec<u64>]) -> Result<(Vec<Duration>, Vec<Vec<i64>>)> {
    let mut times = Vec::with_capacity(inputs.len());
    let mut logits = Vec::with_capacity(inputs.len());
    for x in inputs {
        let t = Instant::now();
        let y = q.infer(x)?;
        times.push(t.elapsed());
        logits.push(y.iter().map(|&v| q.fp.to_signed(v)).collect());
    }
    Ok((times, logits))
}
