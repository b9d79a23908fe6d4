//! The result of the offline phase: what each party must keep (persist) until the online phase.
//!
//! A [`Prepared`] exists only once [`super::OfflineParty`] completed (rounds as types, STYLE.md
//! 4) and is consumed by [`super::OnlineParty::new`], so one garbling is evaluated at most once
//! per object. It is serde-serializable so that it can be stored in a preprocessing bundle; the
//! store must make sure a bundle is never used twice (DESIGN.md s.5): reusing the masks of a
//! garbling with two inputs leaks their XOR. Everything in it is secret to its party, except
//! the evaluator's tables, which are secret from everyone but the evaluator.

use serde::{Deserialize, Serialize};

use super::config::BmrConfig;
use super::{expect_len, BmrError, Result};
use crate::block::{blocks_bytes, Block, PackedBits};
use crate::circuit::{PartyId, Program};

/// What a garbler keeps (zeroized on drop; prints as `GarblerPrep { len: N, .. [redacted] }`,
/// `N` input keys).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, zeroize::ZeroizeOnDrop)]
pub struct GarblerPrep {
    /// Its free-XOR offset `R^i` (secret; zero for the keyless evaluator).
    pub offset: Block,
    /// `k^i_{w,0}` of every online input wire (secret; wire order, `BmrConfig::online_wires`);
    /// the online key is `k ^ Lambda_w R^i`. Empty for the keyless evaluator.
    #[serde(with = "blocks_bytes")]
    pub input_keys: Vec<Block>,
    /// `lambda_w` of its own online input wires (secret; it masks the input bits it will
    /// broadcast).
    pub input_masks: PackedBits,
}

/// One party's preprocessed state for one garbling. Its keys and masks are zeroized on drop (the
/// evaluator's garbled tables are not: they reveal nothing without the keys, and wiping them
/// would cost a pass over the largest buffer of the online phase); prints without them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    pub config: BmrConfig,
    pub party: PartyId,
    /// Present for garblers.
    pub garbler: Option<GarblerPrep>,
    /// Present for the evaluator: the aggregated garbled tables, `4 K` blocks per AND gate for
    /// the `K` keyed garblers.
    #[serde(with = "opt_blocks")]
    pub tables: Option<Vec<Block>>,
    /// `lambda_w` of the output wires this party owns, in output order.
    pub output_masks: PackedBits,
    /// Evaluator: every keyed garbler's key of the active value of each offline input wire
    /// (`keys[i * K + s]` for the i-th offline wire and slot s), received in preprocessing. Empty for the
    /// other parties and when every input arrives online.
    #[serde(default, with = "blocks_bytes")]
    pub offline_keys: Vec<Block>,
}

seco_core::redacted_debug!(GarblerPrep, |g| g.input_keys.len());

impl Drop for Prepared {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.output_masks);
        zeroize::Zeroize::zeroize(&mut self.offline_keys);
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("party", &self.party)
            .field("garbler", &self.garbler)
            .field("tables", &self.tables.as_ref().map(Vec::len))
            .field("output_masks", &seco_core::redact::Redacted)
            .field("offline_keys", &self.offline_keys.len())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Zeroes the garbler's offset before the state is stored: the offset is session-wide
    /// (`bmr/setup.rs`), so one copy in the session record serves every stored garbling, and a
    /// stored garbling alone does not give it away. [`Self::restore_offset`] puts it back.
    pub fn strip_offset(&mut self) {
        if let Some(g) = self.garbler.as_mut() {
            g.offset = Block::ZERO;
        }
    }

    /// Puts back the offset a stored garbling was made under (a keyed garbler whose stored
    /// offset is zero, [`Self::strip_offset`]); an offset stored by an older version is kept.
    pub fn restore_offset(&mut self, offset: Block) {
        let keyed = self.config.is_keyed(self.party);
        if let Some(g) = self.garbler.as_mut() {
            if keyed && g.offset == Block::ZERO {
                g.offset = offset;
            }
        }
    }

    /// Checks every size against the configuration and the compiled circuit (a stored bundle
    /// is external data).
    pub fn validate(&self, program: &Program) -> Result<()> {
        let cfg = &self.config;
        if self.party >= cfg.num_parties() {
            return Err(BmrError::UnknownParty { party: self.party });
        }
        cfg.check_program(program)?;
        match (&self.garbler, cfg.is_garbler(self.party)) {
            (Some(g), true) => {
                let keyed = cfg.is_keyed(self.party);
                let keys = if keyed { cfg.online_wires().len() } else { 0 };
                expect_len("input keys", keys, g.input_keys.len())?;
                expect_len(
                    "own input masks",
                    cfg.online_inputs_of(self.party).len(),
                    g.input_masks.len(),
                )?;
                if g.offset.lsb() != keyed {
                    return Err(BmrError::Config(
                        "offset lsb must be 1 (0 for the keyless evaluator)".into(),
                    ));
                }
            }
            (None, false) => {}
            _ => {
                return Err(BmrError::Config(
                    "garbler material does not match the party's role".into(),
                ))
            }
        }
        let offline = if self.party == cfg.evaluator {
            cfg.offline_wires().len() * cfg.num_keyed()
        } else {
            0
        };
        expect_len("offline input keys", offline, self.offline_keys.len())?;
        match (&self.tables, self.party == cfg.evaluator) {
            (Some(t), true) => expect_len("garbled table blocks", cfg.table_len(program), t.len())?,
            (None, false) => {}
            _ => {
                return Err(BmrError::Config(
                    "tables do not match the party's role".into(),
                ))
            }
        }
        expect_len(
            "output masks",
            cfg.outputs_of(self.party).len(),
            self.output_masks.len(),
        )
    }

    /// Exact size of the CBOR encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        crate::block::encoded_len(self)
    }
}

/// Serde for `Option<Vec<Block>>` as an optional byte string.
mod opt_blocks {
    use super::*;
    use serde::{Deserializer, Serializer};

    struct Wrap(Vec<Block>);

    impl<'de> Deserialize<'de> for Wrap {
        fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            blocks_bytes::deserialize(d).map(Wrap)
        }
    }

    struct WrapRef<'a>(&'a [Block]);

    impl Serialize for WrapRef<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            blocks_bytes::serialize(self.0, s)
        }
    }

    pub fn serialize<S: Serializer>(
        v: &Option<Vec<Block>>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        v.as_deref().map(WrapRef).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Vec<Block>>, D::Error> {
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}
