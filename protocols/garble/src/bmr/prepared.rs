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
                let online = cfg.input_owners.len() - cfg.num_offline();
                let keys = if keyed { online } else { 0 };
                expect_len("input keys", keys, g.input_keys.len())?;
                expect_len(
                    "own input masks",
                    cfg.online_input_counts()
                        .get(self.party)
                        .copied()
                        .unwrap_or(0),
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
            cfg.num_offline() * cfg.num_keyed()
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

    /// The stored form of a garbling ([`RECORD_MAGIC`]): everything but the tables and the
    /// offline keys as CBOR, then those two as raw blocks, so that reading a record back
    /// copies them once (CBOR byte strings decode through a buffer grown 4 KiB at a time and
    /// a second copy into blocks: about 4 copies of the largest buffers of the online phase).
    pub fn to_record(&mut self) -> Vec<u8> {
        let tables = self.tables.take();
        let offline = std::mem::take(&mut self.offline_keys);
        let mut header = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = ciborium::into_writer(&*self, &mut header);
        let table_blocks = tables.as_ref().map_or(0, Vec::len);
        let raw = 16 * (table_blocks + offline.len());
        let mut out = Vec::with_capacity(RECORD_HEAD + header.len() + raw);
        out.push(RECORD_MAGIC);
        out.push(u8::from(tables.is_some()));
        for n in [header.len(), table_blocks, offline.len()] {
            out.extend_from_slice(&(n as u64).to_le_bytes());
        }
        out.extend_from_slice(&header);
        for b in tables.iter().flatten().chain(&offline) {
            out.extend_from_slice(&b.to_bytes());
        }
        self.tables = tables;
        self.offline_keys = offline;
        out
    }

    /// Reads a stored garbling: the form of [`Self::to_record`], or plain CBOR as stored before
    /// 2026-12-07. External data: a malformed record is an error, never a panic.
    pub fn from_record(bytes: &[u8]) -> std::result::Result<Self, String> {
        if bytes.first() != Some(&RECORD_MAGIC) {
            return ciborium::from_reader(bytes).map_err(|e| e.to_string());
        }
        let head = bytes
            .get(..RECORD_HEAD)
            .ok_or("record shorter than its head")?;
        let has_tables = match head[1] {
            0 => false,
            1 => true,
            b => return Err(format!("record: tables flag {b}")),
        };
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&head[2 + 8 * i..10 + 8 * i]);
            u64::from_le_bytes(w)
        };
        let (len, tables, offline) = (word(0), word(1), word(2));
        let rest = &bytes[RECORD_HEAD..];
        if len > rest.len() as u64 {
            return Err(format!(
                "record: header of {len} bytes, {} left",
                rest.len()
            ));
        }
        let (header, raw) = rest.split_at(len as usize);
        let blocks = tables.checked_add(offline).and_then(|b| b.checked_mul(16));
        if blocks != Some(raw.len() as u64) || (!has_tables && tables != 0) {
            return Err(format!(
                "record: {} bytes of blocks for {tables} table and {offline} key blocks",
                raw.len()
            ));
        }
        let mut p: Self = ciborium::from_reader(header).map_err(|e| e.to_string())?;
        if p.tables.is_some() || !p.offline_keys.is_empty() {
            return Err("record: tables or keys inside the header".into());
        }
        let (t, k) = raw.split_at(16 * tables as usize);
        if has_tables {
            p.tables = Some(Block::vec_from_le_bytes(t));
        }
        p.offline_keys = Block::vec_from_le_bytes(k);
        Ok(p)
    }
}

/// First byte of a stored garbling in the form of [`Prepared::to_record`]; never the first
/// byte of the CBOR of a `Prepared` (a map), so older records still read.
pub const RECORD_MAGIC: u8 = 0x01;

/// Magic, tables flag, then header bytes, table blocks and offline key blocks (u64
/// little-endian each).
const RECORD_HEAD: usize = 26;

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
