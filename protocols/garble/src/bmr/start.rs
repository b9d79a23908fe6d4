//! How an [`OfflineParty`] starts: its own base OTs (round 1) or IKNP extensions drawn from the
//! session's OT setup (round 2), and its initial state.

use std::sync::Arc;

use rand::{CryptoRng, Rng};

use super::config::BmrConfig;
use super::known::{InputMaterial, Known};
use super::material::Fresh;
use super::msg::{Body, Outgoing};
use super::offline::{msg_of, pair_sid, OfflineParty, Phase};
use super::setup::PairwiseOt;
use super::{BmrError, Result};
use crate::block::Block;
use crate::circuit::{Circuit, PartyId, Program};
use crate::ot::{IknpReceiverSetup, IknpSenderSetup};

/// A garbler's input-wire secrets, copied at the start (the offline inputs need them before
/// the garbling completes).
fn input_material<R: Rng + CryptoRng + ?Sized>(
    rng: &mut R,
    fresh: &Fresh,
    program: &Program,
) -> InputMaterial {
    let n_in = program.num_inputs as usize;
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    InputMaterial {
        offset: fresh.r,
        lam: fresh.lam[..n_in].to_vec(),
        seed,
    }
}

impl OfflineParty {
    /// Starts party `me` of the session; returns the state machine and its first messages.
    pub fn new<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        cfg: BmrConfig,
        circuit: &Circuit,
        me: PartyId,
    ) -> Result<(Self, Vec<Outgoing>)> {
        Self::with_program(rng, cfg, Arc::new(Program::compile(circuit)?), me)
    }

    /// [`OfflineParty::new`] with a cached `Program::compile(circuit)` (not compacted: the
    /// garbler keeps every wire's material).
    pub fn with_program<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        cfg: BmrConfig,
        program: Arc<Program>,
        me: PartyId,
    ) -> Result<(Self, Vec<Outgoing>)> {
        Self::check_start(&cfg, &program, me)?;
        let n = cfg.garblers;
        let mut out = Vec::new();
        let phase = if cfg.is_garbler(me) {
            let offset = Block(Block::random(rng).0 | 1);
            let fresh = Fresh::sample(rng, me, &cfg, &program, offset);
            let mut recv = Vec::with_capacity(n);
            let mut send = Vec::with_capacity(n);
            for p in 0..n {
                // Instance "me receives from p" exists iff p is keyed, "p receives from me"
                // iff this party is.
                let (rs, ot_sender) = if p != me && cfg.is_keyed(p) {
                    let (rs, m) = IknpReceiverSetup::new(rng, pair_sid(&cfg.session, me, p));
                    (Some(rs), Some(m))
                } else {
                    (None, None)
                };
                let (ss, ot_receiver) = if p != me && cfg.is_keyed(me) {
                    let (ss, m) = IknpSenderSetup::new(rng, pair_sid(&cfg.session, p, me), fresh.r);
                    (Some(ss), Some(m))
                } else {
                    (None, None)
                };
                recv.push(rs);
                send.push(ss);
                if p != me {
                    let body = Body::Base {
                        ot_sender,
                        ot_receiver,
                    };
                    out.push((p, msg_of(&cfg, me, body)));
                }
            }
            Phase::Base { fresh, recv, send }
        } else {
            Phase::Garbled
        };
        let round = if cfg.is_garbler(me) { 1 } else { 5 };
        let mat = match &phase {
            Phase::Base { fresh, .. } => Some(input_material(rng, fresh, &program)),
            _ => None,
        };
        let mut party = Self::init(cfg, program, me, phase, round, mat);
        out.extend(party.advance()?);
        Ok((party, out))
    }

    /// Starts party `me` of a garbling drawn from the session's pairwise OT setup: no base OTs
    /// (round 1 is skipped), fresh IKNP extensions derived for this garbling's id (refused if
    /// the id was drawn from `setup` before), and the session's offset `R^me` (see
    /// `setup.rs` for why a fixed offset is fine). The first messages are the round-2 IKNP
    /// columns. An evaluator that does not garble ignores `setup`.
    pub fn with_setup<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        cfg: BmrConfig,
        program: Arc<Program>,
        me: PartyId,
        setup: &mut PairwiseOt,
    ) -> Result<(Self, Vec<Outgoing>)> {
        Self::check_start(&cfg, &program, me)?;
        if !cfg.is_garbler(me) {
            let party = Self::init(cfg, program, me, Phase::Garbled, 5, None);
            return Ok((party, Vec::new()));
        }
        if setup.garblers() != cfg.garblers || setup.party() != me {
            return Err(BmrError::Config(format!(
                "OT setup of party {} among {} garblers used by party {me} among {}",
                setup.party(),
                setup.garblers(),
                cfg.garblers
            )));
        }
        let mut ext = setup.extensions(&cfg.session, program.num_and as u64)?;
        // Only the instances this garbling runs: receiving from keyed peers, sending if keyed.
        for p in 0..cfg.garblers {
            if !cfg.is_keyed(p) {
                ext.receivers[p] = None;
            }
            if !cfg.is_keyed(me) {
                ext.senders[p] = None;
            }
        }
        let fresh = Fresh::sample(rng, me, &cfg, &program, setup.offset());
        let mat = Some(input_material(rng, &fresh, &program));
        let mut party = Self::init(cfg, program, me, Phase::Garbled, 2, mat);
        party.pair_tags = ext.tags;
        let mut out = party.start_extend(fresh, ext.receivers, ext.senders)?;
        out.extend(party.advance()?);
        Ok((party, out))
    }

    fn check_start(cfg: &BmrConfig, program: &Program, me: PartyId) -> Result<()> {
        cfg.check_program(program)?;
        if me >= cfg.num_parties() {
            return Err(BmrError::UnknownParty { party: me });
        }
        Ok(())
    }

    fn init(
        cfg: BmrConfig,
        program: Arc<Program>,
        me: PartyId,
        phase: Phase,
        round: usize,
        mat: Option<InputMaterial>,
    ) -> Self {
        let n = cfg.garblers;
        let known = Known::new(&cfg, me, mat);
        let tables = if me == cfg.evaluator {
            vec![Block::ZERO; cfg.table_len(&program)]
        } else {
            Vec::new()
        };
        let out_masks = vec![false; cfg.outputs_of(me).len()];
        OfflineParty {
            round,
            inbox: (0..4).map(|_| vec![None; n]).collect(),
            finals: vec![false; n],
            chain_wait: cfg.chain_prev(me).is_some(),
            garbled: !cfg.is_garbler(me),
            own_share: None,
            chain_part: None,
            cfg,
            program,
            me,
            phase,
            tables,
            out_masks,
            garbler_prep: None,
            known,
            pair_tags: vec![None; n],
        }
    }
}
