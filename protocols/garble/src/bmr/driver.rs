//! A deterministic in-process driver: all parties in one loop, messages routed in waves
//! (every message of a wave is delivered, in send order, before any message it caused), the
//! exact encoded size of every message counted. Used by tests, benchmarks and `seco circuit`.
//! [`run_setup`] and [`run_offline_with_setup`] run the session OT setup once and garblings
//! drawn from it.

use std::collections::VecDeque;
use std::sync::Arc;

use rand::{CryptoRng, Rng};

use super::config::BmrConfig;
use super::msg::{BmrMsg, Outgoing};
use super::offline::OfflineParty;
use super::online::OnlineParty;
use super::prepared::Prepared;
use super::setup::{OtSetup, PairwiseOt, SetupMsg};
use super::{BmrError, Result};
use crate::circuit::{Circuit, PartyId, Program, Split};

/// Traffic of one phase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes sent by each party (exact CBOR sizes of its messages).
    pub bytes_sent: Vec<usize>,
    /// Bytes received by each party.
    pub bytes_received: Vec<usize>,
    /// Messages delivered.
    pub messages: usize,
    /// Waves of delivery (communication rounds).
    pub rounds: usize,
}

impl Traffic {
    /// All bytes sent.
    pub fn total(&self) -> usize {
        self.bytes_sent.iter().sum()
    }
}

/// A party state machine the driver can step.
pub trait Step {
    fn step(&mut self, from: PartyId, msg: BmrMsg) -> Result<Vec<Outgoing>>;
}

impl Step for OfflineParty {
    fn step(&mut self, from: PartyId, msg: BmrMsg) -> Result<Vec<Outgoing>> {
        self.handle(from, msg)
    }
}

impl Step for OnlineParty {
    fn step(&mut self, from: PartyId, msg: BmrMsg) -> Result<Vec<Outgoing>> {
        self.handle(from, msg)
    }
}

/// Delivers messages until none are left. `initial[p]` are party p's first messages.
pub fn drive<P: Step>(parties: &mut [P], initial: Vec<Vec<Outgoing>>) -> Result<Traffic> {
    let mut traffic = Traffic {
        bytes_sent: vec![0; parties.len()],
        bytes_received: vec![0; parties.len()],
        ..Traffic::default()
    };
    let mut wave: VecDeque<(PartyId, PartyId, BmrMsg)> = VecDeque::new();
    let enqueue =
        |wave: &mut VecDeque<_>, traffic: &mut Traffic, from: PartyId, out: Vec<Outgoing>| {
            for (to, msg) in out {
                let len = msg.encoded_len();
                traffic.bytes_sent[from] += len;
                if let Some(r) = traffic.bytes_received.get_mut(to) {
                    *r += len;
                }
                wave.push_back((from, to, msg));
            }
        };
    for (from, out) in initial.into_iter().enumerate() {
        enqueue(&mut wave, &mut traffic, from, out);
    }
    while !wave.is_empty() {
        traffic.rounds += 1;
        let mut next = VecDeque::new();
        while let Some((from, to, msg)) = wave.pop_front() {
            let party = parties
                .get_mut(to)
                .ok_or(BmrError::UnknownParty { party: to })?;
            traffic.messages += 1;
            let out = party.step(from, msg)?;
            enqueue(&mut next, &mut traffic, to, out);
        }
        wave = next;
    }
    Ok(traffic)
}

/// Runs the offline phase of every party of `cfg`; returns each party's [`Prepared`].
pub fn run_offline<R: Rng + CryptoRng + ?Sized>(
    rng: &mut R,
    cfg: &BmrConfig,
    circuit: &Circuit,
) -> Result<(Vec<Prepared>, Traffic)> {
    offline_with(cfg, circuit, |program, p| {
        OfflineParty::with_program(rng, cfg.clone(), program, p)
    })
}

/// Starts every party p of `cfg` with `start(program, p)`, delivers all messages and returns
/// each party's [`Prepared`].
fn offline_with<F>(
    cfg: &BmrConfig,
    circuit: &Circuit,
    mut start: F,
) -> Result<(Vec<Prepared>, Traffic)>
where
    F: FnMut(Arc<Program>, PartyId) -> Result<(OfflineParty, Vec<Outgoing>)>,
{
    let mut parties = Vec::with_capacity(cfg.num_parties());
    let mut initial = Vec::with_capacity(cfg.num_parties());
    let program = Arc::new(Program::compile(circuit)?);
    for p in 0..cfg.num_parties() {
        let (party, out) = start(program.clone(), p)?;
        parties.push(party);
        initial.push(out);
    }
    let traffic = drive(&mut parties, initial)?;
    let prepared = parties
        .into_iter()
        .map(OfflineParty::into_prepared)
        .collect::<Result<Vec<_>>>()?;
    Ok((prepared, traffic))
}

/// Runs the pairwise OT setup of `garblers` parties (one round); returns each party's
/// [`PairwiseOt`] and the traffic.
pub fn run_setup<R: Rng + CryptoRng + ?Sized>(
    rng: &mut R,
    session: [u8; 16],
    garblers: usize,
) -> Result<(Vec<PairwiseOt>, Traffic)> {
    let mut traffic = Traffic {
        bytes_sent: vec![0; garblers],
        bytes_received: vec![0; garblers],
        ..Traffic::default()
    };
    let mut parties = Vec::with_capacity(garblers);
    let mut queue: VecDeque<(PartyId, PartyId, SetupMsg)> = VecDeque::new();
    for me in 0..garblers {
        let (s, out) = OtSetup::new(rng, session, garblers, me)?;
        for (to, m) in out {
            traffic.bytes_sent[me] += m.encoded_len();
            traffic.bytes_received[to] += m.encoded_len();
            queue.push_back((me, to, m));
        }
        parties.push(s);
    }
    traffic.rounds = 1;
    while let Some((from, to, msg)) = queue.pop_front() {
        let party: &mut OtSetup = parties
            .get_mut(to)
            .ok_or(BmrError::UnknownParty { party: to })?;
        traffic.messages += 1;
        for (t, m) in party.handle(rng, from, msg)? {
            traffic.bytes_sent[to] += m.encoded_len();
            traffic.bytes_received[t] += m.encoded_len();
            queue.push_back((to, t, m));
        }
    }
    let setups = parties
        .into_iter()
        .map(OtSetup::into_pairwise)
        .collect::<Result<Vec<_>>>()?;
    Ok((setups, traffic))
}

/// [`run_offline`] for a garbling drawn from the parties' OT setups (`setups[p]` for garbler
/// p): rounds 2-5 only. `known[p]` are party p's offline input bits (`BmrConfig::offline`;
/// missing entries: none).
pub fn run_offline_with_setup<R: Rng + CryptoRng + ?Sized>(
    rng: &mut R,
    cfg: &BmrConfig,
    circuit: &Circuit,
    setups: &mut [PairwiseOt],
    known: &[Vec<bool>],
) -> Result<(Vec<Prepared>, Traffic)> {
    offline_with(cfg, circuit, |program, p| {
        let (mut party, mut out) = match setups.get_mut(p) {
            Some(setup) => OfflineParty::with_setup(rng, cfg.clone(), program, p, setup)?,
            None if !cfg.is_garbler(p) => OfflineParty::with_program(rng, cfg.clone(), program, p)?,
            None => return Err(BmrError::MissingPair { peer: p }),
        };
        if let Some(bits) = known.get(p).filter(|b| !b.is_empty()) {
            out.extend(party.provide_inputs(bits)?);
        }
        Ok((party, out))
    })
}

/// Runs the online phase; `inputs[p]` are party p's input bits. Returns each party's outputs
/// (the values of the output wires it owns).
pub fn run_online(
    prepared: Vec<Prepared>,
    circuit: &Circuit,
    inputs: &[Vec<bool>],
) -> Result<(Vec<Vec<bool>>, Traffic)> {
    let mut parties = Vec::with_capacity(prepared.len());
    let mut initial = Vec::with_capacity(prepared.len());
    let program = Arc::new(Split::new(Arc::new(Program::compile(circuit)?)));
    for (p, prep) in prepared.into_iter().enumerate() {
        let empty = Vec::new();
        let input = inputs.get(p).unwrap_or(&empty);
        let (party, out) = OnlineParty::with_program(prep, program.clone(), input)?;
        parties.push(party);
        initial.push(out);
    }
    let traffic = drive(&mut parties, initial)?;
    let outputs = parties
        .iter()
        .map(|p| {
            p.output()
                .map(<[bool]>::to_vec)
                .ok_or(BmrError::NotFinished { round: 10 })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((outputs, traffic))
}

/// Offline then online; returns the outputs in circuit output order (gathered from their
/// owners) and the traffic of both phases.
pub fn run<R: Rng + CryptoRng + ?Sized>(
    rng: &mut R,
    cfg: &BmrConfig,
    circuit: &Circuit,
    inputs: &[Vec<bool>],
) -> Result<(Vec<bool>, Traffic, Traffic)> {
    let (prepared, offline) = run_offline(rng, cfg, circuit)?;
    let (per_party, online) = run_online(prepared, circuit, inputs)?;
    let mut out = vec![false; cfg.output_owners.len()];
    for (p, bits) in per_party.iter().enumerate() {
        for (&o, &b) in cfg.outputs_of(p).iter().zip(bits) {
            out[o] = b;
        }
    }
    Ok((out, offline, online))
}

/// Splits a flat input vector (circuit input order) into per-party vectors by owner.
pub fn split_inputs(cfg: &BmrConfig, flat: &[bool]) -> Vec<Vec<bool>> {
    let mut per = vec![Vec::new(); cfg.num_parties()];
    for (w, &b) in flat.iter().enumerate() {
        if let Some(&o) = cfg.input_owners.get(w) {
            per[o].push(b);
        }
    }
    per
}
