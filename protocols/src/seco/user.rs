//! The user's side of a SECO session as a sans-IO state machine. The user talks only to the
//! gateway and its cost per inference is one encryption of its input mask (preprocessing), one
//! masked input and one decryption (online), independent of the model's depth and width.
//!
//! ```text
//! new():          session key pair; Hello { model, user_pk, part digest, output mode } -> G
//! Welcome:        the collective public key; the session is ready
//! preprocess():   r_1 random, persisted; PrepRequest { bundle, Enc(r_1) } -> G
//! BundleReady:    the bundle can be used
//! infer(x):       take the bundle (durably); Infer { bundle, x - r_1 } -> G
//! Result:         decrypt the truncated logits, or the label (output mode): nothing else
//! close():        Close { Done } -> G (the servers delete the session)
//! ```

use std::collections::{HashMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

use super::bundle::{UserBundle, BUNDLE_VERSION};
use super::error::{Result, SecoError};
use super::ids::{BundleId, Party, SessionId};
use super::io::{Event, Input, Machine, Persist, Ready};
use super::msg::{pack_ring, Body, Bytes, CloseReason, SecoMsg, VERSION};
use super::output::OutputMode;
use super::seq::SeqWindow;
use crate::mhe::{LayerPacking, ParamId, PublicKey, ResultCiphertext, SessionKey};
use crate::plan::UserPart;

/// Static configuration of the user's session.
#[derive(Debug, Clone)]
pub struct UserConfig {
    /// The session (random per connection).
    pub session: SessionId,
    /// What the user knows of the model.
    pub part: UserPart,
    /// Parameter set of the collective key.
    pub param: ParamId,
    /// Parameter set of the user's session key.
    pub user_param: ParamId,
    /// What the user learns of each inference (logits or label).
    pub output: OutputMode,
}

enum UserState {
    /// (1) `Hello` sent, waiting for `Welcome`.
    Opening,
    /// (2) Ready: bundles are requested and consumed.
    Ready,
    /// (3) Aborted.
    Aborted(String),
    /// (4) Closed (by this user, or expired at the gateway).
    Closed(CloseReason),
}

/// The user's session. Prints as `UserSession([redacted])`; the inputs waiting for their
/// bundle are `Zeroizing` (the session key and the bundles wipe themselves).
pub struct UserSession {
    cfg: UserConfig,
    key: SessionKey,
    packing: LayerPacking,
    collective_pk: Option<PublicKey>,
    rng: ChaCha20Rng,
    out_seq: u64,
    seen: SeqWindow,
    state: UserState,
    /// Bundles ready at every server, oldest first.
    ready: VecDeque<BundleId>,
    /// Inputs waiting for their bundle to be taken from the store.
    pending: HashMap<BundleId, Zeroizing<Vec<u64>>>,
}

crate::redacted_debug!(UserSession);

impl UserSession {
    /// Starts a session: a fresh session key and the `Hello` to the gateway.
    pub fn new(cfg: UserConfig, seed: [u8; 32]) -> Result<(Self, Ready)> {
        cfg.part
            .fixed_point
            .validate()
            .map_err(crate::model::ModelError::from)?;
        if cfg.param != cfg.part.param {
            return Err(crate::plan::PlanError::Mismatch(format!(
                "the session's parameter set {:?} is not the part's {:?}",
                cfg.param, cfg.part.param
            ))
            .into());
        }
        let mut rng = ChaCha20Rng::from_seed(seed);
        let key = SessionKey::generate(cfg.user_param, &mut rng)?;
        let degree = cfg.param.params()?.degree();
        let packing = LayerPacking::new(&cfg.part.input_layer, degree)?;
        let mut s = Self {
            key,
            packing,
            collective_pk: None,
            rng,
            out_seq: 0,
            seen: SeqWindow::default(),
            state: UserState::Opening,
            ready: VecDeque::new(),
            pending: HashMap::new(),
            cfg,
        };
        let body = Body::Hello {
            model: s.cfg.part.model.clone(),
            user_pk: Bytes::from(s.key.public_key().to_bytes()),
            part_digest: s.cfg.part.digest(),
            output: s.cfg.output.code(),
        };
        let mut ready = Ready::default();
        s.send(&mut ready, body);
        Ok((s, ready))
    }

    /// Whether the session is open.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, UserState::Ready)
    }

    /// Bundles ready for inference.
    pub fn ready_bundles(&self) -> usize {
        self.ready.len()
    }

    fn send(&mut self, ready: &mut Ready, body: Body) {
        let msg = SecoMsg {
            version: VERSION,
            session: self.cfg.session,
            from: Party::User,
            seq: self.out_seq,
            body,
        };
        self.out_seq += 1;
        ready.send.push((Party::GATEWAY, msg));
    }

    fn check_ready(&self) -> Result<()> {
        match &self.state {
            UserState::Ready => Ok(()),
            UserState::Opening => Err(SecoError::NotReady("the session is not open yet".into())),
            UserState::Aborted(r) => Err(SecoError::Aborted(r.clone())),
            UserState::Closed(r) => Err(SecoError::Closed(*r)),
        }
    }

    /// Ends the session: `Close { Done }` to the gateway, which deletes the session's records
    /// and unused bundles at every server. Nothing to send if it has already ended.
    pub fn close(&mut self) -> Ready {
        let mut ready = Ready::default();
        if matches!(self.state, UserState::Opening | UserState::Ready) {
            let reason = CloseReason::Done;
            self.send(&mut ready, Body::Close { reason });
            self.state = UserState::Closed(reason);
            self.ready.clear();
            self.pending.clear();
            ready.events.push(Event::Closed(reason));
        }
        ready
    }

    /// Requests one bundle: samples `r_1`, persists it, sends `Enc(r_1)`.
    pub fn preprocess(&mut self) -> Result<(BundleId, Ready)> {
        self.check_ready()?;
        let pk = self
            .collective_pk
            .clone()
            .ok_or(SecoError::NotReady("no collective key".into()))?;
        let bundle = BundleId::random(&mut self.rng);
        let mask = self.cfg.part.fixed_point.mask();
        let len = self.cfg.part.input_layer.in_len();
        let r1: Vec<u64> = (0..len).map(|_| self.rng.random::<u64>() & mask).collect();
        let cts = self.packing.input.encrypt(&pk, &r1, &mut self.rng)?;
        let record = UserBundle {
            version: BUNDLE_VERSION,
            session: self.cfg.session,
            bundle,
            r1,
        };
        let mut ready = Ready::default();
        // Persist before send: the mask must survive for the bundle to be usable.
        ready.persist.push(Persist::Bundle {
            bundle,
            bytes: record.to_bytes(),
        });
        let input_mask = cts.iter().map(|c| Bytes::from(c.to_bytes())).collect();
        self.send(&mut ready, Body::PrepRequest { bundle, input_mask });
        Ok((bundle, ready))
    }

    /// Runs one inference on an encoded input (`Model::encode_input`): takes a ready bundle.
    pub fn infer(&mut self, x: &[u64]) -> Result<(BundleId, Ready)> {
        self.check_ready()?;
        let expected = self.cfg.part.input_layer.in_len();
        if x.len() != expected {
            return Err(SecoError::Length {
                what: "input",
                expected,
                actual: x.len(),
            });
        }
        let bundle = self.ready.pop_front().ok_or(SecoError::NotReady(
            "no bundle ready: preprocess first".into(),
        ))?;
        self.pending.insert(bundle, Zeroizing::new(x.to_vec()));
        let mut ready = Ready::default();
        ready.take.push(bundle);
        Ok((bundle, ready))
    }

    fn on_loaded(&mut self, bundle: BundleId, bytes: Option<Vec<u8>>) -> Result<Ready> {
        let x = self.pending.remove(&bundle).ok_or(SecoError::Bundle {
            bundle,
            reason: "no inference waiting".into(),
        })?;
        let bytes = bytes.ok_or(SecoError::Bundle {
            bundle,
            reason: "unknown or already used".into(),
        })?;
        let record = UserBundle::from_bytes(&bytes, self.cfg.session, bundle)?;
        if record.r1.len() != x.len() {
            return Err(SecoError::Bundle {
                bundle,
                reason: "stored mask has the wrong length".into(),
            });
        }
        let fp = self.cfg.part.fixed_point;
        let masked: Vec<u64> = x
            .iter()
            .zip(&record.r1)
            .map(|(&a, &r)| fp.sub(a, r))
            .collect();
        let masked_input = pack_ring(&masked, fp.ring_bits);
        let mut ready = Ready::default();
        self.send(
            &mut ready,
            Body::Infer {
                bundle,
                masked_input,
            },
        );
        Ok(ready)
    }

    fn on_message(&mut self, from: Party, msg: SecoMsg) -> Result<Ready> {
        if msg.version != VERSION {
            return Err(SecoError::Version {
                expected: VERSION,
                found: msg.version,
            });
        }
        if msg.session != self.cfg.session {
            return Err(SecoError::WrongSession);
        }
        if from != Party::GATEWAY || msg.from != from {
            return Err(SecoError::WrongSender {
                body: msg.body.name(),
                claimed: msg.from,
                actual: from,
                expected: "the gateway".into(),
            });
        }
        if !self.seen.accept(msg.seq) {
            return Err(SecoError::Duplicate { from, seq: msg.seq });
        }
        let mut ready = Ready::default();
        match (&self.state, msg.body) {
            (UserState::Opening | UserState::Ready, Body::Close { reason }) => {
                self.state = UserState::Closed(reason);
                ready.events.push(Event::Closed(reason));
            }
            (
                _,
                Body::Abort {
                    bundle,
                    reason,
                    kind,
                },
            ) => {
                if bundle.is_none() {
                    self.state = UserState::Aborted(reason.clone());
                }
                ready.events.push(Event::Aborted {
                    bundle,
                    reason,
                    kind,
                });
            }
            (UserState::Opening, Body::Welcome { collective_pk }) => {
                self.collective_pk = Some(PublicKey::from_bytes(&collective_pk, self.cfg.param)?);
                self.state = UserState::Ready;
                ready.events.push(Event::SessionReady);
            }
            (UserState::Ready, Body::BundleReady { bundle }) => {
                self.ready.push_back(bundle);
                ready.events.push(Event::BundleReady(bundle));
            }
            (UserState::Ready, Body::Result { bundle, ct }) => {
                ready.events.push(self.decrypt(bundle, &ct)?);
            }
            (state, body) => {
                let current = match state {
                    UserState::Opening => "opening".to_string(),
                    UserState::Ready => "ready".to_string(),
                    UserState::Aborted(r) => format!("aborted ({r})"),
                    UserState::Closed(r) => format!("closed ({r})"),
                };
                return Err(SecoError::WrongPhase {
                    body: body.name(),
                    phase: body.phase(),
                    current,
                });
            }
        }
        Ok(ready)
    }

    /// Decrypts the result: the truncated logits (scale `2^f`, as the fixed-point reference
    /// outputs them), or the label. Nothing else is in the ciphertext.
    fn decrypt(&mut self, bundle: BundleId, ct: &[u8]) -> Result<Event> {
        let rc = ResultCiphertext::from_bytes(ct, self.cfg.user_param)?;
        let values = self.key.decrypt(&rc)?;
        let classes = self.cfg.part.output_len;
        let out = self.cfg.output.output_len(classes);
        if values.len() != out {
            return Err(SecoError::Length {
                what: "result values",
                expected: out,
                actual: values.len(),
            });
        }
        let fp = self.cfg.part.fixed_point;
        match self.cfg.output {
            OutputMode::Logits => {
                let logits = values.iter().map(|&y| fp.to_signed(fp.reduce(y))).collect();
                Ok(Event::Logits { bundle, logits })
            }
            OutputMode::Label => {
                let class = fp.reduce(values[0]);
                match u32::try_from(class) {
                    Ok(class) if (class as usize) < classes => Ok(Event::Label { bundle, class }),
                    _ => Err(SecoError::Length {
                        what: "decrypted class index",
                        expected: classes,
                        actual: usize::try_from(class).unwrap_or(usize::MAX),
                    }),
                }
            }
        }
    }
}

impl Machine for UserSession {
    fn party(&self) -> Party {
        Party::User
    }

    fn handle(&mut self, input: Input) -> Result<Ready> {
        match input {
            Input::Message { from, msg } => self.on_message(from, msg),
            Input::Loaded { bundle, bytes } => self.on_loaded(bundle, bytes),
            Input::Chunks { .. } => Err(SecoError::NotReady(
                "the user stores no chunk garblings".into(),
            )),
            Input::Resume { .. } => Err(SecoError::NotReady(
                "the user leaves no work for later".into(),
            )),
        }
    }
}
