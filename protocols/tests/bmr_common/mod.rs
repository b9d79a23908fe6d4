//! Shared helpers for the `bmr_*` integration tests: a ReLU-reshare circuit, random inputs per
//! party and their flat (circuit-order) form, an offline phase run to its end.
#![allow(dead_code)]

use rand::Rng;
use rand_chacha::ChaCha12Rng;
use seco_protocols::bmr::{driver, BmrConfig, OfflineParty, Outgoing, Prepared};
use seco_protocols::circuit::{Circuit, ReluReshare};

/// ReLU-reshare among `n` parties over `elements` 16-bit words (4 fraction bits).
pub fn relu(n: usize, elements: usize) -> (ReluReshare, Circuit) {
    let spec = ReluReshare {
        parties: n,
        elements,
        k: 16,
        f: 4,
    };
    let c = spec.circuit().unwrap();
    (spec, c)
}

/// Every party's input bits (all its wires, in order), random.
pub fn random_inputs(r: &mut ChaCha12Rng, cfg: &BmrConfig) -> Vec<Vec<bool>> {
    (0..cfg.num_parties())
        .map(|p| (0..cfg.inputs_of(p).len()).map(|_| r.random()).collect())
        .collect()
}

/// Per-party input bits back in circuit input order.
pub fn flat(cfg: &BmrConfig, per: &[Vec<bool>]) -> Vec<bool> {
    let mut pos = vec![0; per.len()];
    cfg.input_owners
        .iter()
        .map(|&o| {
            pos[o] += 1;
            per[o][pos[o] - 1]
        })
        .collect()
}

/// Delivers every message among `parties` (`initial[p]`: party p's first messages) and
/// returns each party's [`Prepared`].
pub fn finish_offline(
    mut parties: Vec<OfflineParty>,
    initial: Vec<Vec<Outgoing>>,
) -> Vec<Prepared> {
    driver::drive(&mut parties, initial).unwrap();
    parties
        .into_iter()
        .map(|p| p.into_prepared().unwrap())
        .collect()
}
