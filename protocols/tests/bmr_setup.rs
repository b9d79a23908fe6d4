//! The session's pairwise OT setup (`bmr::OtSetup`): garblings drawn from one setup are correct
//! and independent; bad setup messages are typed errors; a restarted party sets up again.

mod bmr_common;

use bmr_common::{finish_offline, flat, random_inputs, relu};

use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use seco_protocols::bmr::{
    driver, BmrConfig, BmrError, BmrMsg, Body, OfflineParty, OtSetup, Outgoing, PairwiseOt,
    Prepared, SetupMsg,
};
use seco_protocols::circuit::{Circuit, Program, ReluReshare};
use std::sync::Arc;

const SESSION: [u8; 16] = [5; 16];

fn cfg(id: u8, spec: &ReluReshare, c: &Circuit) -> BmrConfig {
    let n = spec.parties;
    BmrConfig::new(
        [id; 16],
        c,
        n,
        1,
        spec.input_owners(),
        vec![n - 1; c.num_outputs()],
    )
    .unwrap()
}

#[test]
fn garblings_drawn_from_one_setup_are_correct() {
    for n in [2, 3, 4] {
        let (spec, c) = relu(n, 4);
        let mut r = ChaCha12Rng::seed_from_u64(n as u64);
        let (mut setups, setup_traffic) = driver::run_setup(&mut r, SESSION, n).unwrap();
        assert_eq!(setup_traffic.messages, n * (n - 1));
        for id in 0..4u8 {
            let cfg = cfg(id, &spec, &c);
            let (prepared, _) =
                driver::run_offline_with_setup(&mut r, &cfg, &c, &mut setups, &[]).unwrap();
            let inputs = random_inputs(&mut r, &cfg);
            let want = c.eval_plain(&flat(&cfg, &inputs)).unwrap();
            let (outs, _) = driver::run_online(prepared, &c, &inputs).unwrap();
            assert_eq!(outs[n - 1], want, "n = {n}, garbling {id}");
        }
        assert!(setups.iter().all(|s| s.garblings() == 4));
    }
}

/// Two garblings from one setup with the same inputs: the offsets are the session's, every
/// other secret and every message differs.
#[test]
fn garblings_drawn_from_one_setup_are_independent() {
    let (spec, c) = relu(3, 4);
    let mut r = ChaCha12Rng::seed_from_u64(7);
    let (mut setups, _) = driver::run_setup(&mut r, SESSION, 3).unwrap();
    let mut extends = Vec::new();
    let mut prepared = Vec::new();
    for id in [1u8, 2] {
        let (prep, first) = garble(&mut r, &cfg(id, &spec, &c), &c, &mut setups);
        extends.push(first);
        prepared.push(prep);
    }
    // Round-2 columns to the same peer differ between garblings.
    for (a, b) in extends[0].iter().zip(&extends[1]) {
        assert_eq!(a.0, b.0);
        assert!(matches!(a.1.body, Body::Extend { pair: Some(_), .. }));
        assert_ne!(a.1.body, b.1.body);
    }
    for (a, b) in prepared[0].iter().zip(&prepared[1]) {
        let (g1, g2) = (a.garbler.as_ref().unwrap(), b.garbler.as_ref().unwrap());
        assert_eq!(g1.offset, g2.offset, "the offset is the session's");
        assert!(g1
            .input_keys
            .iter()
            .zip(&g2.input_keys)
            .all(|(a, b)| a != b));
    }
    assert_ne!(prepared[0][1].tables, prepared[1][1].tables);
    // The same inputs evaluated under both garblings: every online message differs.
    let inputs = random_inputs(&mut r, &prepared[0][0].config);
    let mut seen: Vec<Vec<Vec<u8>>> = Vec::new();
    for prep in prepared {
        let mut msgs = Vec::new();
        for (p, pr) in prep.into_iter().enumerate() {
            let (_, out) = seco_protocols::bmr::OnlineParty::new(pr, &c, &inputs[p]).unwrap();
            for (_, m) in out {
                let mut b = Vec::new();
                ciborium::into_writer(&m.body, &mut b).unwrap();
                msgs.push(b);
            }
        }
        seen.push(msgs);
    }
    assert!(!seen[0].is_empty());
    assert!(
        seen[0].iter().all(|m| !seen[1].contains(m)),
        "an online message repeated across garblings"
    );
}

#[test]
fn a_garbling_id_is_drawn_once_and_setups_must_match() {
    let (spec, c) = relu(3, 4);
    let mut r = ChaCha12Rng::seed_from_u64(8);
    let (mut setups, _) = driver::run_setup(&mut r, SESSION, 3).unwrap();
    let program = Arc::new(Program::compile(&c).unwrap());
    let one = cfg(1, &spec, &c);
    OfflineParty::with_setup(&mut r, one.clone(), program.clone(), 0, &mut setups[0]).unwrap();
    let e = OfflineParty::with_setup(&mut r, one.clone(), program.clone(), 0, &mut setups[0])
        .err()
        .unwrap();
    assert!(matches!(e, BmrError::GarblingReused), "{e}");
    // Another party's setup.
    let e = OfflineParty::with_setup(&mut r, one, program.clone(), 1, &mut setups[0])
        .err()
        .unwrap();
    assert!(matches!(e, BmrError::Config(_)), "{e}");
    // A setup that is not finished cannot be drawn from.
    let (s, _) = OtSetup::new(&mut r, SESSION, 3, 0).unwrap();
    assert!(matches!(s.pairwise(), Err(BmrError::MissingPair { .. })));
    assert!(matches!(
        s.into_pairwise(),
        Err(BmrError::MissingPair { .. })
    ));
    // A round-1 message to a party that skipped round 1.
    let (mut p0, _) =
        OfflineParty::with_setup(&mut r, cfg(2, &spec, &c), program, 0, &mut setups[0]).unwrap();
    assert_eq!(p0.round(), 2);
    let (_, base) = OfflineParty::new(&mut r, cfg(2, &spec, &c), &c, 1).unwrap();
    let m: BmrMsg = base.into_iter().find(|(to, _)| *to == 0).unwrap().1;
    assert!(matches!(p0.handle(1, m), Err(BmrError::WrongRound { .. })));
}

fn halves(r: &mut ChaCha12Rng, n: usize) -> (Vec<OtSetup>, Vec<Vec<(usize, SetupMsg)>>) {
    let mut parties = Vec::new();
    let mut outs = Vec::new();
    for me in 0..n {
        let (s, out) = OtSetup::new(r, SESSION, n, me).unwrap();
        parties.push(s);
        outs.push(out);
    }
    (parties, outs)
}

fn to(outs: &[(usize, SetupMsg)], p: usize) -> SetupMsg {
    outs.iter().find(|(t, _)| *t == p).unwrap().1.clone()
}

#[test]
fn bad_setup_messages_are_typed_errors_and_change_nothing() {
    let mut r = ChaCha12Rng::seed_from_u64(9);
    let (mut ps, outs) = halves(&mut r, 3);
    let from1 = to(&outs[1], 0);
    let p0 = &mut ps[0];
    let mut other = from1.clone();
    other.session = [0; 16];
    assert!(matches!(
        p0.handle(&mut r, 1, other),
        Err(BmrError::WrongSession)
    ));
    for bad in [0, 3, 9] {
        assert!(matches!(
            p0.handle(&mut r, bad, from1.clone()),
            Err(BmrError::UnknownParty { .. })
        ));
    }
    assert!(matches!(
        p0.handle(&mut r, 2, from1.clone()),
        Err(BmrError::WrongSender { .. })
    ));
    let mut short = from1.clone();
    short.ot_receiver.r.pop();
    assert!(matches!(
        p0.handle(&mut r, 1, short),
        Err(BmrError::Length { .. })
    ));
    // Points that do not decode, an identity A.
    let mut garbage = from1.clone();
    garbage.ot_receiver.r[5].0 = [0xff; 32];
    assert!(matches!(
        p0.handle(&mut r, 1, garbage),
        Err(BmrError::Ot(_))
    ));
    let mut ident = from1.clone();
    ident.ot_sender.a = [0; 32];
    assert!(matches!(p0.handle(&mut r, 1, ident), Err(BmrError::Ot(_))));
    // A reply to a half this party never sent.
    let mut stale = from1.clone();
    stale.reply_to = Some([1; 16]);
    assert!(matches!(
        p0.handle(&mut r, 1, stale),
        Err(BmrError::StaleSetup { from: 1 })
    ));
    // None of that changed the state: the genuine half still completes the pair.
    assert!(p0.handle(&mut r, 1, from1.clone()).unwrap().is_empty());
    assert!(matches!(
        p0.handle(&mut r, 1, from1),
        Err(BmrError::Duplicate { .. })
    ));
    assert!(!p0.is_done());
    assert!(p0.handle(&mut r, 2, to(&outs[2], 0)).unwrap().is_empty());
    assert!(p0.is_done());
    // Garbage bytes do not decode as a setup message.
    for bytes in [&[][..], &[0xa6, 0x00][..], &[0xbf; 40][..]] {
        assert!(ciborium::from_reader::<SetupMsg, _>(bytes).is_err());
    }
}

/// Completes a setup among `ps` from their first messages.
fn deliver(r: &mut ChaCha12Rng, ps: &mut [OtSetup], outs: Vec<Vec<(usize, SetupMsg)>>) {
    let mut queue: Vec<(usize, usize, SetupMsg)> = outs
        .into_iter()
        .enumerate()
        .flat_map(|(f, o)| o.into_iter().map(move |(t, m)| (f, t, m)))
        .collect();
    while let Some((from, t, m)) = queue.pop() {
        for (t2, m2) in ps[t].handle(r, from, m).unwrap() {
            queue.push((t, t2, m2));
        }
    }
}

fn garble_and_check(r: &mut ChaCha12Rng, setups: &mut [PairwiseOt], id: u8) {
    let (spec, c) = relu(setups.len(), 4);
    let cfg = cfg(id, &spec, &c);
    let (prepared, _) = driver::run_offline_with_setup(r, &cfg, &c, setups, &[]).unwrap();
    let inputs = random_inputs(r, &cfg);
    let want = c.eval_plain(&flat(&cfg, &inputs)).unwrap();
    let (outs, _) = driver::run_online(prepared, &c, &inputs).unwrap();
    assert_eq!(outs[setups.len() - 1], want);
}

#[test]
fn a_restarted_party_sets_up_again() {
    let mut r = ChaCha12Rng::seed_from_u64(10);
    let (mut ps, outs) = halves(&mut r, 3);
    deliver(&mut r, &mut ps, outs);
    assert!(ps.iter().all(OtSetup::is_done));
    let off0 = offset_of(&mut r, &mut ps, 0, 1);
    // Party 1 restarts: a new setup, spontaneous halves; the peers answer and replace the pair.
    let (fresh, out) = OtSetup::new(&mut r, SESSION, 3, 1).unwrap();
    ps[1] = fresh;
    let mut replies = Vec::new();
    for (t, m) in out {
        let ans = ps[t].handle(&mut r, 1, m.clone()).unwrap();
        assert_eq!(ans.len(), 1, "a peer answers a restart");
        assert_eq!(ans[0].1.reply_to, Some(m.nonce));
        // A replayed restart half is a duplicate.
        assert!(matches!(
            ps[t].handle(&mut r, 1, m),
            Err(BmrError::Duplicate { .. })
        ));
        replies.push((t, ans));
    }
    assert!(!ps[1].is_done());
    for (t, ans) in replies {
        for (_, m) in ans {
            assert!(ps[1].handle(&mut r, t, m).unwrap().is_empty());
        }
    }
    assert!(ps.iter().all(OtSetup::is_done));
    // The peers kept their offsets.
    assert_eq!(offset_of(&mut r, &mut ps, 0, 2), off0);
    let mut setups: Vec<PairwiseOt> = ps.into_iter().map(|p| p.into_pairwise().unwrap()).collect();
    for id in 10..12 {
        garble_and_check(&mut r, &mut setups, id);
    }
}

/// Both parties of a pair restart at once: their spontaneous halves cross and combine.
#[test]
fn two_parties_restarting_at_once_still_agree() {
    let mut r = ChaCha12Rng::seed_from_u64(11);
    let (mut ps, outs) = halves(&mut r, 3);
    deliver(&mut r, &mut ps, outs);
    let mut outs = vec![Vec::new(); 3];
    for me in [0, 2] {
        let (s, out) = OtSetup::new(&mut r, SESSION, 3, me).unwrap();
        ps[me] = s;
        outs[me] = out;
    }
    deliver(&mut r, &mut ps, outs);
    assert!(ps.iter().all(OtSetup::is_done));
    let mut setups: Vec<PairwiseOt> = ps.into_iter().map(|p| p.into_pairwise().unwrap()).collect();
    garble_and_check(&mut r, &mut setups, 20);
}

/// Party `p`'s offset, read from a garbling drawn from the parties' current setups.
fn offset_of(r: &mut ChaCha12Rng, ps: &mut [OtSetup], p: usize, id: u8) -> u128 {
    let (spec, c) = relu(ps.len(), 4);
    let prep = run_with(r, &cfg(200 + id, &spec, &c), &c, ps);
    prep[p].garbler.as_ref().unwrap().offset.0
}

/// One garbling drawn from `setups` (party p's is the p-th); also returns party 0's first
/// messages.
fn garble<'a>(
    r: &mut ChaCha12Rng,
    cfg: &BmrConfig,
    c: &Circuit,
    setups: impl IntoIterator<Item = &'a mut PairwiseOt>,
) -> (Vec<Prepared>, Vec<Outgoing>) {
    let program = Arc::new(Program::compile(c).unwrap());
    let mut parties = Vec::new();
    let mut initial = Vec::new();
    for (p, s) in setups.into_iter().enumerate() {
        let (party, out) = OfflineParty::with_setup(r, cfg.clone(), program.clone(), p, s).unwrap();
        parties.push(party);
        initial.push(out);
    }
    let first = initial[0].clone();
    (finish_offline(parties, initial), first)
}

/// One garbling among the parties' setup machines (as a session would draw it).
fn run_with(
    r: &mut ChaCha12Rng,
    cfg: &BmrConfig,
    c: &Circuit,
    ps: &mut [OtSetup],
) -> Vec<Prepared> {
    let setups = ps.iter_mut().map(|s| s.pairwise_mut().unwrap());
    garble(r, cfg, c, setups).0
}

/// A garbling that a peer drew from a pair its partner has since replaced (the partner
/// restarted while the garbling started) is refused at the partner, never garbled from
/// mismatched base OTs: every `Extend` names the pair setup it was drawn from.
#[test]
fn a_garbling_drawn_from_a_replaced_pair_is_refused() {
    let mut r = ChaCha12Rng::seed_from_u64(12);
    let (mut ps, outs) = halves(&mut r, 3);
    deliver(&mut r, &mut ps, outs);
    let (spec, c) = relu(3, 4);
    let program = Arc::new(Program::compile(&c).unwrap());
    let cfg = cfg(30, &spec, &c);
    // Party 2 starts the garbling from its pair with party 0 as it was before the restart.
    // (Party 1 evaluates: it holds no keys, so only it sends columns to the others.)
    let (mut p2, first2) = OfflineParty::with_setup(
        &mut r,
        cfg.clone(),
        program.clone(),
        2,
        ps[2].pairwise_mut().unwrap(),
    )
    .unwrap();
    // Party 0 restarts; both peers answer, so its new setup completes.
    let (fresh, out) = OtSetup::new(&mut r, SESSION, 3, 0).unwrap();
    ps[0] = fresh;
    deliver(&mut r, &mut ps, vec![out, Vec::new(), Vec::new()]);
    assert!(ps.iter().all(OtSetup::is_done));
    let (mut p0, _) = OfflineParty::with_setup(
        &mut r,
        cfg.clone(),
        program.clone(),
        0,
        ps[0].pairwise_mut().unwrap(),
    )
    .unwrap();
    let (_p1, first1) =
        OfflineParty::with_setup(&mut r, cfg, program, 1, ps[1].pairwise_mut().unwrap()).unwrap();
    let ext = |out: &[(usize, seco_protocols::bmr::BmrMsg)], p: usize| {
        out.iter().find(|(t, _)| *t == p).unwrap().1.clone()
    };
    assert!(matches!(
        p0.handle(2, ext(&first2, 0)),
        Err(BmrError::PairMismatch { peer: 2 })
    ));
    // The pair of parties 1 and 2 did not change: its columns are accepted.
    p2.handle(1, ext(&first1, 2)).unwrap();
}

/// A session offset garbles at most `MAX_AND_PER_OFFSET` AND gates (the TMMO bound of
/// docs/garbled-circuits.md): a setup at its limit refuses the next garbling, typed.
#[test]
fn an_offset_garbles_a_bounded_number_of_and_gates() {
    let (spec, c) = relu(3, 4);
    let mut r = ChaCha12Rng::seed_from_u64(9);
    let (mut setups, _) = driver::run_setup(&mut r, SESSION, 3).unwrap();
    let program = Arc::new(Program::compile(&c).unwrap());
    let ands = program.num_and as u64;
    assert!(ands > 0);
    assert_eq!(seco_protocols::bmr::MAX_AND_PER_OFFSET, 1 << 40);
    setups[0].lower_and_limit(2 * ands);
    for id in 1..=2 {
        OfflineParty::with_setup(
            &mut r,
            cfg(id, &spec, &c),
            program.clone(),
            0,
            &mut setups[0],
        )
        .unwrap();
    }
    assert_eq!(setups[0].and_gates(), 2 * ands);
    let e = OfflineParty::with_setup(&mut r, cfg(3, &spec, &c), program, 0, &mut setups[0])
        .err()
        .unwrap();
    assert!(matches!(e, BmrError::OffsetExhausted { .. }), "{e}");
}
