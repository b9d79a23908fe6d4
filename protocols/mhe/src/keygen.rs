//! Collective public-key generation among `n` servers, as a sans-IO state machine per party
//! (Mouchet et al., PETS 2021, Protocol 1 "EncKeyGen", with the common random polynomial drawn
//! by commit-and-reveal instead of a trusted common reference string).
//!
//! Rounds (every message goes to every other party):
//! 1. *Commit*: party i samples a 32-byte seed contribution `sigma_i` and sends
//!    `H(context, param, i, sigma_i)`.
//! 2. *Reveal*: once it holds every commitment, it sends `sigma_i`. Every reveal is checked
//!    against its commitment, so no party can choose its contribution after seeing the others':
//!    the seed `H(context, param, n, sigma_0, .., sigma_{n-1})` is uniform if one party is honest.
//! 3. *Share*: `a = expand(seed)`, and party i sends `b_i = -a*s_i + e_i` (with the seed, so
//!    that diverging views are caught). The collective key is `(sum_i b_i, a)`, under the
//!    secret `s = sum_i s_i` that nobody holds.
//!
//! Private inputs: `s_i`, `e_i`, `sigma_i` (sampled in [`CollectiveKeygen::new`]).
//! Public output: the collective [`PublicKey`]. Private output: the [`SecretKeyShare`].

use fhe_math::rq::{Poly, Representation};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::error::{MheError, Result};
use super::keys::{expand_crp, pk_share_poly, PublicKey, SecretKeyShare};
use super::params::{ParamId, Params, CBD_VARIANCE};
use super::wire::{poly_bytes, Kind, Reader, Writer};
use super::{check_parties, Outgoing, PartyId, To};

/// Static configuration of one party's keygen.
#[derive(Debug, Clone)]
pub struct KeygenConfig {
    /// Parameter set of the collective key.
    pub param: ParamId,
    /// Number of servers.
    pub n: usize,
    /// This party's id in `0..n`.
    pub me: PartyId,
    /// Deployment/session context bound into every hash (domain separation between runs).
    pub context: [u8; 32],
}

/// A keygen message (one variant per round).
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum KeygenMsg {
    /// Round 1: commitment to the sender's seed contribution.
    Commit {
        /// Sender.
        from: PartyId,
        /// `H(context, param, from, sigma_from)`.
        digest: [u8; 32],
    },
    /// Round 2: the seed contribution.
    Reveal {
        /// Sender.
        from: PartyId,
        /// `sigma_from`.
        seed: [u8; 32],
    },
    /// Round 3: the public-key share `b_from = -a*s_from + e_from`.
    Share {
        /// Sender.
        from: PartyId,
        /// The common seed the sender derived (must equal ours).
        crs_seed: [u8; 32],
        /// `b_from`, NTT representation.
        b: Poly,
    },
}

impl std::fmt::Debug for KeygenMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.name())
            .field("from", &self.from())
            .finish_non_exhaustive()
    }
}

impl KeygenMsg {
    /// The sender written in the message.
    pub fn from(&self) -> PartyId {
        match self {
            KeygenMsg::Commit { from, .. }
            | KeygenMsg::Reveal { from, .. }
            | KeygenMsg::Share { from, .. } => *from,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            KeygenMsg::Commit { .. } => "Commit",
            KeygenMsg::Reveal { .. } => "Reveal",
            KeygenMsg::Share { .. } => "Share",
        }
    }

    /// Serialized with the parameter id of the keygen.
    pub fn to_bytes(&self, params: &Params) -> Vec<u8> {
        match self {
            KeygenMsg::Commit { from, digest } => {
                let mut w = Writer::new(Kind::KeygenCommit, params.id(), 34);
                w.u16(*from);
                w.bytes(digest);
                w.finish()
            }
            KeygenMsg::Reveal { from, seed } => {
                let mut w = Writer::new(Kind::KeygenReveal, params.id(), 34);
                w.u16(*from);
                w.bytes(seed);
                w.finish()
            }
            KeygenMsg::Share { from, crs_seed, b } => {
                let mut w = Writer::new(Kind::PublicKeyShare, params.id(), 34 + poly_bytes(params));
                w.u16(*from);
                w.bytes(crs_seed);
                w.poly(params, b);
                w.finish()
            }
        }
    }

    /// Parses any keygen message of the expected parameter set.
    pub fn from_bytes(bytes: &[u8], expected: ParamId) -> Result<Self> {
        let (mut r, kind, param) = Reader::open_any(bytes)?;
        if param != expected {
            return Err(MheError::ParamMismatch {
                expected,
                actual: param,
            });
        }
        let from = r.party()?;
        let msg = match kind {
            k if k == Kind::KeygenCommit as u8 => KeygenMsg::Commit {
                from,
                digest: r.array::<32>("commitment")?,
            },
            k if k == Kind::KeygenReveal as u8 => KeygenMsg::Reveal {
                from,
                seed: r.array::<32>("seed")?,
            },
            k if k == Kind::PublicKeyShare as u8 => {
                let crs_seed = r.array::<32>("crs seed")?;
                let params = expected.params()?;
                let b = r.poly(&params)?;
                KeygenMsg::Share { from, crs_seed, b }
            }
            actual => {
                return Err(MheError::WrongKind {
                    expected: Kind::KeygenCommit as u8,
                    actual,
                })
            }
        };
        r.finish("keygen message")?;
        Ok(msg)
    }
}

/// The states of one party's keygen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// (0) Created; [`CollectiveKeygen::start`] not yet called.
    Init,
    /// (1) Commitment sent; waiting for every other party's commitment.
    AwaitCommits,
    /// (2) Seed revealed; waiting for every other party's reveal.
    AwaitReveals,
    /// (3) Public-key share sent; waiting for every other party's share.
    AwaitShares,
    /// (4) Done: the collective public key is known.
    Done,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Init => "Init",
            State::AwaitCommits => "AwaitCommits",
            State::AwaitReveals => "AwaitReveals",
            State::AwaitShares => "AwaitShares",
            State::Done => "Done",
        }
    }
}

/// One party's collective key generation.
pub struct CollectiveKeygen {
    cfg: KeygenConfig,
    state: State,
    /// `s_i`: becomes the party's persisted secret key share.
    secret: SecretKeyShare,
    /// `e_i`: the error of the public-key share (sampled up front so `handle` needs no RNG).
    error: Zeroizing<Poly>,
    /// `sigma_i`: this party's seed contribution.
    my_seed: [u8; 32],
    commits: Vec<Option<[u8; 32]>>,
    reveals: Vec<Option<[u8; 32]>>,
    /// Received `(crs seed, b_j)`; ours at our index once computed.
    shares: Vec<Option<([u8; 32], Poly)>>,
    crs_seed: Option<[u8; 32]>,
    public_key: Option<PublicKey>,
}

seco_core::redacted_debug!(CollectiveKeygen);

impl CollectiveKeygen {
    /// Samples this party's secret share, error and seed contribution.
    pub fn new<R: RngCore + CryptoRng>(cfg: KeygenConfig, rng: &mut R) -> Result<Self> {
        let params = cfg.param.params()?;
        check_parties(&params, cfg.n, cfg.me)?;
        let secret = SecretKeyShare::generate(cfg.param, cfg.me, rng)?;
        let error = Zeroizing::new(Poly::small(
            &params.ctx,
            Representation::Ntt,
            CBD_VARIANCE,
            rng,
        )?);
        let mut my_seed = [0u8; 32];
        rng.fill_bytes(&mut my_seed);
        let n = cfg.n;
        Ok(Self {
            cfg,
            state: State::Init,
            secret,
            error,
            my_seed,
            commits: vec![None; n],
            reveals: vec![None; n],
            shares: vec![None; n],
            crs_seed: None,
            public_key: None,
        })
    }

    /// Round 1: the commitment to broadcast.
    pub fn start(&mut self) -> Result<Vec<Outgoing<KeygenMsg>>> {
        if self.state != State::Init {
            return Err(MheError::WrongRound {
                state: self.state.name(),
                got: "start",
            });
        }
        let me = self.cfg.me as usize;
        let digest = commit_digest(&self.cfg, self.cfg.me, &self.my_seed);
        self.commits[me] = Some(digest);
        self.reveals[me] = Some(self.my_seed);
        self.state = State::AwaitCommits;
        let mut out = vec![Outgoing {
            to: To::All,
            msg: KeygenMsg::Commit {
                from: self.cfg.me,
                digest,
            },
        }];
        out.extend(self.advance()?);
        Ok(out)
    }

    /// Handles a message from the authenticated sender `from`.
    pub fn handle(&mut self, from: PartyId, msg: KeygenMsg) -> Result<Vec<Outgoing<KeygenMsg>>> {
        self.check_sender(from, &msg)?;
        let i = from as usize;
        match msg {
            KeygenMsg::Commit { digest, .. } => {
                if self.commits[i].is_some() {
                    return Err(MheError::Duplicate {
                        party: from,
                        round: "Commit",
                    });
                }
                if let Some(seed) = self.reveals[i] {
                    check_reveal(&self.cfg, from, &digest, &seed)?;
                }
                self.commits[i] = Some(digest);
            }
            KeygenMsg::Reveal { seed, .. } => {
                // A peer reveals only after holding our commitment, which `start` sends.
                self.require_not(State::Init, "Reveal")?;
                if self.reveals[i].is_some() {
                    return Err(MheError::Duplicate {
                        party: from,
                        round: "Reveal",
                    });
                }
                if let Some(digest) = self.commits[i] {
                    check_reveal(&self.cfg, from, &digest, &seed)?;
                }
                self.reveals[i] = Some(seed);
            }
            KeygenMsg::Share { crs_seed, b, .. } => {
                // A peer shares only after holding our reveal, sent when we leave AwaitCommits.
                self.require_not(State::Init, "Share")?;
                self.require_not(State::AwaitCommits, "Share")?;
                if self.shares[i].is_some() {
                    return Err(MheError::Duplicate {
                        party: from,
                        round: "Share",
                    });
                }
                if self.crs_seed.is_some_and(|mine| mine != crs_seed) {
                    return Err(MheError::CommitmentMismatch { party: from });
                }
                self.shares[i] = Some((crs_seed, b));
            }
        }
        self.advance()
    }

    /// Whether the collective key is known.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The collective public key, once done.
    pub fn public_key(&self) -> Option<&PublicKey> {
        self.public_key.as_ref()
    }

    /// The party's secret key share and the collective public key, once done.
    pub fn finish(self) -> Result<(SecretKeyShare, PublicKey)> {
        match self.public_key {
            Some(pk) if self.state == State::Done => Ok((self.secret, pk)),
            _ => Err(MheError::WrongRound {
                state: self.state.name(),
                got: "finish",
            }),
        }
    }

    fn check_sender(&self, from: PartyId, msg: &KeygenMsg) -> Result<()> {
        if from as usize >= self.cfg.n {
            return Err(MheError::UnknownParty {
                party: from,
                n: self.cfg.n,
            });
        }
        if msg.from() != from || from == self.cfg.me {
            return Err(MheError::SenderMismatch {
                claimed: msg.from(),
                actual: from,
            });
        }
        Ok(())
    }

    fn require_not(&self, state: State, got: &'static str) -> Result<()> {
        if self.state == state {
            return Err(MheError::WrongRound {
                state: state.name(),
                got,
            });
        }
        Ok(())
    }

    /// Moves through every round whose inputs are complete; returns what to send.
    fn advance(&mut self) -> Result<Vec<Outgoing<KeygenMsg>>> {
        let mut out = Vec::new();
        if self.state == State::AwaitCommits && self.commits.iter().all(Option::is_some) {
            for (j, (c, r)) in self.commits.iter().zip(&self.reveals).enumerate() {
                if let (Some(c), Some(r)) = (c, r) {
                    check_reveal(&self.cfg, j as PartyId, c, r)?;
                }
            }
            self.state = State::AwaitReveals;
            out.push(Outgoing {
                to: To::All,
                msg: KeygenMsg::Reveal {
                    from: self.cfg.me,
                    seed: self.my_seed,
                },
            });
        }
        if self.state == State::AwaitReveals && self.reveals.iter().all(Option::is_some) {
            out.push(self.send_share()?);
        }
        if self.state == State::AwaitShares && self.shares.iter().all(Option::is_some) {
            self.aggregate()?;
        }
        Ok(out)
    }

    /// Round 3: derive the common seed and `a`, compute `b_i = -a*s_i + e_i`.
    fn send_share(&mut self) -> Result<Outgoing<KeygenMsg>> {
        let params = self.cfg.param.params()?;
        let seeds: Vec<[u8; 32]> = self.reveals.iter().flatten().copied().collect();
        let crs_seed = crs_seed(&self.cfg, &seeds);
        for (j, sh) in self.shares.iter().enumerate() {
            if sh.as_ref().is_some_and(|(s, _)| *s != crs_seed) {
                return Err(MheError::CommitmentMismatch {
                    party: j as PartyId,
                });
            }
        }
        let a = expand_crp(&params, &crs_seed);
        let b = pk_share_poly(&a, self.secret.poly(), &self.error);
        self.crs_seed = Some(crs_seed);
        self.shares[self.cfg.me as usize] = Some((crs_seed, b.clone()));
        self.state = State::AwaitShares;
        Ok(Outgoing {
            to: To::All,
            msg: KeygenMsg::Share {
                from: self.cfg.me,
                crs_seed,
                b,
            },
        })
    }

    /// `b = sum_j b_j` (the `Aggregate` step of `fhe::mbfv::PublicKeyShare`).
    fn aggregate(&mut self) -> Result<()> {
        let crs_seed = self.crs_seed.ok_or(MheError::WrongRound {
            state: self.state.name(),
            got: "aggregate",
        })?;
        let mut it = self.shares.iter().flatten();
        let mut b = it
            .next()
            .map(|(_, b)| b.clone())
            .ok_or(MheError::WrongLength {
                what: "public key shares",
                expected: self.cfg.n,
                actual: 0,
            })?;
        for (_, bj) in it {
            b += bj;
        }
        self.public_key = Some(PublicKey::from_parts(self.cfg.param, crs_seed, b)?);
        self.state = State::Done;
        Ok(())
    }
}

fn commit_digest(cfg: &KeygenConfig, party: PartyId, seed: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("seco-rs mhe keygen commit v1");
    h.update(&cfg.context);
    h.update(&cfg.param.code().to_le_bytes());
    h.update(&party.to_le_bytes());
    h.update(seed);
    *h.finalize().as_bytes()
}

fn check_reveal(
    cfg: &KeygenConfig,
    party: PartyId,
    digest: &[u8; 32],
    seed: &[u8; 32],
) -> Result<()> {
    if commit_digest(cfg, party, seed) != *digest {
        return Err(MheError::CommitmentMismatch { party });
    }
    Ok(())
}

/// The common seed `H(context, param, n, sigma_0, .., sigma_{n-1})`.
fn crs_seed(cfg: &KeygenConfig, seeds: &[[u8; 32]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("seco-rs mhe keygen crs v1");
    h.update(&cfg.context);
    h.update(&cfg.param.code().to_le_bytes());
    h.update(&(cfg.n as u64).to_le_bytes());
    for s in seeds {
        h.update(s);
    }
    *h.finalize().as_bytes()
}
