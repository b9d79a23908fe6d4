//! Inputs known in preprocessing (`BmrConfig::offline`, `OfflineParty::provide_inputs`):
//! correct results with any split of the inputs into offline and online ones, online traffic
//! only for the online wires, typed errors for bad offline-input messages.

mod bmr_common;

use bmr_common::{finish_offline, flat, random_inputs, relu};

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use seco_protocols::bmr::{
    driver, BmrConfig, BmrError, BmrMsg, Body, OfflineParty, Outgoing, Prepared,
};
use seco_protocols::circuit::{Circuit, Program, ReluReshare};
use seco_protocols::gc::PackedBits;

/// Config with the given offline flags; the evaluator is `ev` (a garbler, or `n`: an extra
/// party).
fn cfg(c: &Circuit, spec: &ReluReshare, ev: usize, offline: Vec<bool>) -> BmrConfig {
    let n = spec.parties;
    BmrConfig::new(
        [3; 16],
        c,
        n,
        ev,
        spec.input_owners(),
        vec![n - 1; c.num_outputs()],
    )
    .unwrap()
    .with_offline_inputs(offline)
    .unwrap()
}

/// Offline phase with the old path (base OTs in round 1) and offline inputs provided at the
/// start.
fn offline_old(
    r: &mut ChaCha12Rng,
    cfg: &BmrConfig,
    c: &Circuit,
    known: &[Vec<bool>],
) -> Vec<Prepared> {
    let program = Arc::new(Program::compile(c).unwrap());
    let mut parties = Vec::new();
    let mut initial: Vec<Vec<Outgoing>> = Vec::new();
    for (p, bits) in known.iter().enumerate().take(cfg.num_parties()) {
        let (mut party, mut out) =
            OfflineParty::with_program(r, cfg.clone(), program.clone(), p).unwrap();
        if !bits.is_empty() {
            out.extend(party.provide_inputs(bits).unwrap());
        }
        parties.push(party);
        initial.push(out);
    }
    finish_offline(parties, initial)
}

#[test]
fn any_split_of_the_inputs_gives_the_right_result() {
    let mut r = ChaCha12Rng::seed_from_u64(1);
    for n in [2, 3] {
        let (spec, c) = relu(n, 3);
        let n_in = c.num_inputs();
        let (mut setups, _) = driver::run_setup(&mut r, [1; 16], n).unwrap();
        let splits: Vec<Vec<bool>> = vec![
            vec![false; n_in],
            vec![true; n_in],
            (0..n_in).map(|w| w % 3 != 0).collect(),
            (0..n_in).map(|_| r.random()).collect(),
            // SECO's shape: party 0's first half online, everything else offline.
            spec.input_owners()
                .iter()
                .enumerate()
                .map(|(w, &o)| o != 0 || w >= n_in / (2 * n))
                .collect(),
        ];
        for (k, offline) in splits.into_iter().enumerate() {
            for ev in [1, n] {
                let mut cfg = cfg(&c, &spec, ev, offline.clone());
                cfg.session = [(10 * n + 2 * k + usize::from(ev == n)) as u8; 16];
                let all = random_inputs(&mut r, &cfg);
                let split: Vec<(Vec<bool>, Vec<bool>)> = (0..cfg.num_parties())
                    .map(|p| cfg.split_own_inputs(p, &all[p]).unwrap())
                    .collect();
                let known: Vec<Vec<bool>> = split.iter().map(|s| s.0.clone()).collect();
                let online: Vec<Vec<bool>> = split.iter().map(|s| s.1.clone()).collect();
                let prepared = if ev == n {
                    offline_old(&mut r, &cfg, &c, &known)
                } else {
                    driver::run_offline_with_setup(&mut r, &cfg, &c, &mut setups, &known)
                        .unwrap()
                        .0
                };
                let want = c.eval_plain(&flat(&cfg, &all)).unwrap();
                let (outs, traffic) = driver::run_online(prepared, &c, &online).unwrap();
                assert_eq!(outs[n - 1], want, "n {n}, split {k}, evaluator {ev}");
                // Online keys only for the online wires.
                let on = cfg.online_wires().len();
                let keys_bytes = 16 * on * (n - usize::from(ev < n));
                assert!(
                    traffic.total() < keys_bytes + 400 + 20 * n_in / 8,
                    "split {k}: {} bytes online for {on} online wires",
                    traffic.total()
                );
            }
        }
    }
}

#[test]
fn moving_inputs_offline_moves_their_keys_out_of_the_online_phase() {
    let mut r = ChaCha12Rng::seed_from_u64(2);
    let (spec, c) = relu(3, 3);
    let n_in = c.num_inputs();
    let (mut setups, _) = driver::run_setup(&mut r, [2; 16], 3).unwrap();
    let mut online_bytes = Vec::new();
    for (i, offline) in [
        vec![false; n_in],
        (0..n_in).map(|w| w >= n_in / 6).collect(),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cfg = cfg(&c, &spec, 1, offline);
        cfg.session = [40 + i as u8; 16];
        let all = random_inputs(&mut r, &cfg);
        let split: Vec<_> = (0..3)
            .map(|p| cfg.split_own_inputs(p, &all[p]).unwrap())
            .collect();
        let known: Vec<Vec<bool>> = split.iter().map(|s| s.0.clone()).collect();
        let online: Vec<Vec<bool>> = split.iter().map(|s| s.1.clone()).collect();
        let (prep, _) =
            driver::run_offline_with_setup(&mut r, &cfg, &c, &mut setups, &known).unwrap();
        let (outs, traffic) = driver::run_online(prep, &c, &online).unwrap();
        assert_eq!(outs[2], c.eval_plain(&flat(&cfg, &all)).unwrap());
        online_bytes.push(traffic.total());
    }
    println!(
        "online bytes: all inputs online {}, 1/6 online {}",
        online_bytes[0], online_bytes[1]
    );
    assert!(online_bytes[1] * 4 < online_bytes[0], "{online_bytes:?}");
}

fn msg(from: usize, body: Body) -> BmrMsg {
    BmrMsg {
        session: [3; 16],
        from,
        body,
    }
}

#[test]
fn bad_offline_input_messages_are_typed_errors() {
    let mut r = ChaCha12Rng::seed_from_u64(3);
    let (spec, c) = relu(3, 3);
    let n_in = c.num_inputs();
    // Party 0's wires online, the others' offline.
    let owners = spec.input_owners();
    let offline: Vec<bool> = owners.iter().map(|&o| o != 0).collect();
    let cfg = cfg(&c, &spec, 1, offline);
    assert!(matches!(
        cfg.clone().with_offline_inputs(vec![true; n_in - 1]),
        Err(BmrError::Config(_))
    ));
    let program = Arc::new(Program::compile(&c).unwrap());
    let start = |r: &mut ChaCha12Rng, p| {
        OfflineParty::with_program(r, cfg.clone(), program.clone(), p)
            .unwrap()
            .0
    };
    let mut p2 = start(&mut r, 2);
    let mine = cfg.offline_inputs_of(2).len();
    assert!(matches!(
        p2.provide_inputs(&vec![true; mine + 1]),
        Err(BmrError::Length { .. })
    ));
    let out = p2.provide_inputs(&vec![true; mine]).unwrap();
    assert_eq!(out.len(), 2, "masked bits to both other garblers");
    assert!(matches!(
        p2.provide_inputs(&vec![true; mine]),
        Err(BmrError::Duplicate { .. })
    ));
    // Party 0 has no offline wires: nothing to provide, and its OfflineInputs are refused.
    let mut p0 = start(&mut r, 0);
    assert!(p0.provide_inputs(&[]).unwrap().is_empty());
    let mut p1 = start(&mut r, 1);
    let e = p1
        .handle(
            0,
            msg(0, Body::OfflineInputs(PackedBits::from_bools(&[true; 4]))),
        )
        .unwrap_err();
    assert!(matches!(e, BmrError::Duplicate { .. }), "{e}");
    // Wrong lengths.
    let e = p1
        .handle(
            2,
            msg(2, Body::OfflineInputs(PackedBits::from_bools(&[true; 3]))),
        )
        .unwrap_err();
    assert!(matches!(e, BmrError::Length { .. }), "{e}");
    // A Final (which carries the keys' seed) before it could have been sent.
    let fin = Body::Final {
        output_masks: PackedBits::default(),
        key_seed: Some([1; 32]),
    };
    let e = p1.handle(2, msg(2, fin)).unwrap_err();
    assert!(matches!(e, BmrError::WrongRound { .. }), "{e}");
    // Not finished without the offline inputs.
    assert!(!p1.is_done());
    assert!(matches!(
        p1.into_prepared(),
        Err(BmrError::NotFinished { .. })
    ));
}

#[test]
fn a_garbling_waits_for_its_offline_inputs() {
    let mut r = ChaCha12Rng::seed_from_u64(4);
    let (spec, c) = relu(3, 3);
    let offline: Vec<bool> = spec.input_owners().iter().map(|&o| o == 2).collect();
    let cfg = cfg(&c, &spec, 1, offline);
    let program = Arc::new(Program::compile(&c).unwrap());
    let mut parties = Vec::new();
    let mut initial = Vec::new();
    for p in 0..3 {
        let (party, out) =
            OfflineParty::with_program(&mut r, cfg.clone(), program.clone(), p).unwrap();
        parties.push(party);
        initial.push(out);
    }
    driver::drive(&mut parties, initial).unwrap();
    // Party 2 has not fixed its inputs: the keyed garblers (0, 2) wait with their tables
    // (their keys of the offline wires depend on the masked bits), nobody is done.
    assert!(parties.iter().all(|p| !p.is_done()));
    assert_eq!(parties[0].round(), 5);
    assert_eq!(parties[2].round(), 5);
    let all = random_inputs(&mut r, &cfg);
    let (known, online): (Vec<_>, Vec<_>) = (0..3)
        .map(|p| cfg.split_own_inputs(p, &all[p]).unwrap())
        .unzip();
    let out = parties[2].provide_inputs(&known[2]).unwrap();
    let initial = vec![Vec::new(), Vec::new(), out];
    driver::drive(&mut parties, initial).unwrap();
    assert!(parties.iter().all(OfflineParty::is_done));
    let prep: Vec<Prepared> = parties
        .into_iter()
        .map(|p| p.into_prepared().unwrap())
        .collect();
    // The evaluator's stored state round-trips and is validated; a truncated one is refused.
    let mut bytes = Vec::new();
    ciborium::into_writer(&prep[1], &mut bytes).unwrap();
    let back: Prepared = ciborium::from_reader(&bytes[..]).unwrap();
    assert_eq!(back, prep[1]);
    let mut cut = prep[1].clone();
    cut.offline_keys.pop();
    assert!(matches!(
        cut.validate(&program),
        Err(BmrError::Length { .. })
    ));
    let (outs, _) = driver::run_online(prep, &c, &online).unwrap();
    assert_eq!(outs[2], c.eval_plain(&flat(&cfg, &all)).unwrap());
}
