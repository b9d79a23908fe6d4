//! The BMR message family (STYLE.md 6): one serde enum, each message carrying the session id
//! and its sender; the variant is the round.

use serde::{Deserialize, Serialize};

use crate::block::{blocks_bytes, encoded_len, Block, PackedBits};
use crate::circuit::PartyId;
use crate::ot::{BaseReceiverMsg, BaseSenderMsg, ExtendMsg};

/// A BMR message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmrMsg {
    pub session: [u8; 16],
    pub from: PartyId,
    pub body: Body,
}

/// Message bodies, in protocol order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Offline (1), garbler -> garbler: base OTs of the pair's IKNP instances (as base-OT
    /// sender for the instance where the sender of this message extends, present unless the
    /// recipient is the keyless evaluator; as base-OT receiver with choices = its offset R for
    /// the instance where it is the correlated-OT sender, present unless the sender of this
    /// message is the keyless evaluator).
    Base {
        ot_sender: Option<BaseSenderMsg>,
        ot_receiver: Option<BaseReceiverMsg>,
    },
    /// Offline (2), garbler -> keyed garbler: IKNP columns; choices = the sender's mask shares of the
    /// fresh wires, then random bits for the mask-product slots. `pair`: the tag of the session
    /// OT setup pair the columns were drawn from (`setup.rs`), `None` after per-garbling base
    /// OTs; the recipient refuses columns from another pair setup than its own.
    Extend {
        pair: Option<[u8; 16]>,
        ext: ExtendMsg,
    },
    /// Offline (3), keyed garbler -> garbler: bit-OT corrections for the mask products
    /// `lambda_a^recipient * lambda_b^sender`, one bit per AND gate (two for the keyless
    /// evaluator: then `lambda_b^recipient * lambda_a^sender` follow).
    BitOt(PackedBits),
    /// Offline (4), garbler -> keyed garbler: derandomization bits `mu ^ c`, one per AND gate.
    Derand(PackedBits),
    /// Offline (5), garbler -> evaluator / output owners: its mask shares of the recipient's
    /// output wires (empty for the evaluator unless it owns outputs); to the evaluator, a keyed
    /// garbler adds the seed of its active keys of the offline input wires (`known.rs`).
    Final {
        output_masks: PackedBits,
        #[serde(default)]
        key_seed: Option<[u8; 32]>,
    },
    /// Offline (5), keyed garbler in slot s -> the keyed garbler in slot s + 1, or the last one
    /// -> the evaluator: the XOR of the table shares of slots `0..=s` (the last one's is the
    /// whole table but the evaluator's own share terms). The chain keeps the evaluator's
    /// inbound bytes at one table instead of one per keyed garbler (`mod.rs`, security notes).
    Tables(#[serde(with = "blocks_bytes")] Vec<Block>),
    /// Offline, input owner -> garblers: masked bits `x ^ lambda` of its input wires whose
    /// values it fixed in preprocessing (`BmrConfig::offline`), any time after the start.
    OfflineInputs(PackedBits),
    /// Online (1), input owner -> garblers: masked input bits `x ^ lambda` of its online wires.
    MaskedInputs(PackedBits),
    /// Online (2), garbler -> evaluator: its keys of the active values of all online input
    /// wires.
    InputKeys(#[serde(with = "blocks_bytes")] Vec<Block>),
    /// Online (3), evaluator -> output owner: masked output values of the owner's wires.
    Outputs(PackedBits),
}

impl Body {
    /// Name of the round (for errors and logs).
    pub fn round(&self) -> &'static str {
        match self {
            Body::Base { .. } => "offline 1 (base OT)",
            Body::Extend { .. } => "offline 2 (OT extension)",
            Body::BitOt(_) => "offline 3 (bit products)",
            Body::Derand(_) => "offline 4 (derandomization)",
            Body::Final { .. } => "offline 5 (output masks)",
            Body::Tables(_) => "offline 5 (garbled tables, chained)",
            Body::OfflineInputs(_) => "offline (masked inputs known in preprocessing)",
            Body::MaskedInputs(_) => "online 1 (masked inputs)",
            Body::InputKeys(_) => "online 2 (input keys)",
            Body::Outputs(_) => "online 3 (outputs)",
        }
    }

    /// Offline round number (1..=5; 6 for the offline inputs, which run beside rounds 2-5;
    /// 8 for the chained tables of round 5), or online round number + 10.
    pub fn round_index(&self) -> usize {
        match self {
            Body::Base { .. } => 1,
            Body::Extend { .. } => 2,
            Body::BitOt(_) => 3,
            Body::Derand(_) => 4,
            Body::Final { .. } => 5,
            Body::Tables(_) => 8,
            Body::OfflineInputs(_) => 6,
            Body::MaskedInputs(_) => 11,
            Body::InputKeys(_) => 12,
            Body::Outputs(_) => 13,
        }
    }
}

impl BmrMsg {
    /// Exact size of the message's CBOR encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        encoded_len(self)
    }
}

/// An outgoing message and its recipient.
pub type Outgoing = (PartyId, BmrMsg);
