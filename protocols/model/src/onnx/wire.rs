//! A pre-pass over the protobuf wire format that bounds what decoding will allocate.
//!
//! `prost` decodes untrusted bytes safely (lengths are checked against the buffer), but a small
//! encoding can still expand into a lot of memory: an empty `NodeProto` is 2 bytes on the wire
//! and a few hundred bytes decoded, a packed `int64` costs 1 byte on the wire and 8 decoded.
//! Before decoding, [`check`] walks the message tree along the fields that [`super::proto`]
//! declares, without allocating, and refuses the file if
//! - a repeated field exceeds its count limit (nodes, initializers, attributes, dims, ...), or
//! - the estimated decoded size exceeds `2 * file size + 32 MiB`.
//!
//! Fields that `proto` does not declare are skipped by `prost` without being stored, so they
//! cost nothing here either. Groups (deprecated, unused by ONNX) are refused. The schema has no
//! cycle, so the recursion depth is at most 6.

use std::mem::size_of;

use prost::encoding::{decode_key, decode_varint, WireType};

use super::error::{OnnxError, Result};
use super::proto;

/// Slack of the decoded-size budget on top of twice the file size.
const BUDGET_SLACK: u64 = 32 << 20;

/// Message types of [`super::proto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    Model,
    Opset,
    Graph,
    Node,
    Attribute,
    Tensor,
    Sparse,
    Entry,
    ValueInfo,
    Type,
    TypeTensor,
    Shape,
    Dim,
}

/// How `prost` stores a declared field.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// A nested message (each occurrence is one decoded struct).
    Sub(Msg),
    /// Repeated varints (packed or not): 8 bytes each.
    Varints,
    /// Repeated 32-bit floats (packed or not): 4 bytes each.
    Fixed32s,
    /// A string or bytes (stored as its length plus a header).
    Bytes,
    /// A scalar stored inline in the struct, or a field `prost` skips.
    Inline,
}

fn field(msg: Msg, tag: u32) -> Field {
    match (msg, tag) {
        (Msg::Model, 7) => Field::Sub(Msg::Graph),
        (Msg::Model, 8) => Field::Sub(Msg::Opset),
        (Msg::Model, 2 | 3) | (Msg::Opset, 1) => Field::Bytes,
        (Msg::Graph, 1) => Field::Sub(Msg::Node),
        (Msg::Graph, 5) => Field::Sub(Msg::Tensor),
        (Msg::Graph, 15) => Field::Sub(Msg::Sparse),
        (Msg::Graph, 11 | 12) => Field::Sub(Msg::ValueInfo),
        (Msg::Graph, 2) | (Msg::Node, 1 | 2 | 3 | 4 | 7) => Field::Bytes,
        (Msg::Node, 5) => Field::Sub(Msg::Attribute),
        (Msg::Attribute, 1 | 4) => Field::Bytes,
        (Msg::Attribute, 5) => Field::Sub(Msg::Tensor),
        (Msg::Attribute, 7) | (Msg::Tensor, 4) => Field::Fixed32s,
        (Msg::Attribute, 8) | (Msg::Tensor, 1 | 5 | 7) => Field::Varints,
        (Msg::Tensor, 8 | 9) | (Msg::Entry, 1 | 2) | (Msg::ValueInfo, 1) => Field::Bytes,
        (Msg::Tensor, 13) => Field::Sub(Msg::Entry),
        (Msg::Sparse, 1) => Field::Sub(Msg::Tensor),
        (Msg::ValueInfo, 2) => Field::Sub(Msg::Type),
        (Msg::Type, 1) => Field::Sub(Msg::TypeTensor),
        (Msg::TypeTensor, 2) => Field::Sub(Msg::Shape),
        (Msg::Shape, 1) => Field::Sub(Msg::Dim),
        (Msg::Dim, 2) => Field::Bytes,
        _ => Field::Inline,
    }
}

/// Count limits of repeated fields: `(what, limit)`.
fn count_limit(msg: Msg, tag: u32) -> Option<(&'static str, u64)> {
    match (msg, tag) {
        (Msg::Model, 8) => Some(("opset imports", 64)),
        (Msg::Graph, 1) => Some(("nodes", super::MAX_NODES as u64)),
        (Msg::Graph, 5) => Some(("initializers", super::MAX_INITIALIZERS as u64)),
        (Msg::Graph, 15) => Some(("sparse initializers", 64)),
        (Msg::Graph, 11 | 12) => Some(("graph inputs/outputs", super::MAX_INITIALIZERS as u64)),
        (Msg::Node, 1 | 2) => Some(("node inputs/outputs", 64)),
        (Msg::Node, 5) => Some(("node attributes", 64)),
        (Msg::Tensor, 1) | (Msg::Shape, 1) => Some(("tensor rank", 16)),
        (Msg::Tensor, 13) => Some(("external data entries", 64)),
        _ => None,
    }
}

fn struct_size(msg: Msg) -> u64 {
    let size = match msg {
        Msg::Model => size_of::<proto::ModelProto>(),
        Msg::Opset => size_of::<proto::OperatorSetIdProto>(),
        Msg::Graph => size_of::<proto::GraphProto>(),
        Msg::Node => size_of::<proto::NodeProto>(),
        Msg::Attribute => size_of::<proto::AttributeProto>(),
        Msg::Tensor => size_of::<proto::TensorProto>(),
        Msg::Sparse => size_of::<proto::SparseTensorProto>(),
        Msg::Entry => size_of::<proto::StringStringEntryProto>(),
        Msg::ValueInfo => size_of::<proto::ValueInfoProto>(),
        Msg::Type => size_of::<proto::TypeProto>(),
        Msg::TypeTensor => size_of::<proto::TypeProtoTensor>(),
        Msg::Shape => size_of::<proto::TensorShapeProto>(),
        Msg::Dim => size_of::<proto::Dimension>(),
    };
    size as u64
}

/// Checks the limits of the whole file (see the module documentation).
pub fn check(bytes: &[u8]) -> Result<()> {
    let len = bytes.len() as u64;
    let mut walker = Walker {
        cost: struct_size(Msg::Model),
        budget: len.saturating_mul(2).saturating_add(BUDGET_SLACK),
    };
    walker.walk(Msg::Model, bytes)
}

struct Walker {
    /// Estimated decoded bytes so far.
    cost: u64,
    /// Largest allowed estimate.
    budget: u64,
}

impl Walker {
    fn add(&mut self, bytes: u64) -> Result<()> {
        self.cost = self.cost.saturating_add(bytes);
        if self.cost > self.budget {
            return Err(OnnxError::LimitExceeded {
                what: "estimated decoded size in bytes".into(),
                found: self.cost,
                limit: self.budget,
            });
        }
        Ok(())
    }

    fn walk(&mut self, msg: Msg, mut buf: &[u8]) -> Result<()> {
        let mut counts: Vec<(u32, u64)> = Vec::new();
        while !buf.is_empty() {
            let (tag, wire) = decode_key(&mut buf).map_err(OnnxError::corrupt)?;
            let kind = field(msg, tag);
            let elements = match wire {
                WireType::Varint => {
                    decode_varint(&mut buf).map_err(OnnxError::corrupt)?;
                    self.add(if matches!(kind, Field::Varints) { 8 } else { 0 })?;
                    1
                }
                WireType::ThirtyTwoBit => {
                    buf = skip(buf, 4)?;
                    self.add(if matches!(kind, Field::Fixed32s) {
                        4
                    } else {
                        0
                    })?;
                    1
                }
                WireType::SixtyFourBit => {
                    buf = skip(buf, 8)?;
                    1
                }
                WireType::LengthDelimited => {
                    let len = decode_varint(&mut buf).map_err(OnnxError::corrupt)?;
                    let len = usize::try_from(len)
                        .ok()
                        .filter(|&l| l <= buf.len())
                        .ok_or_else(|| OnnxError::corrupt("length exceeds the buffer"))?;
                    let (payload, rest) = buf.split_at(len);
                    buf = rest;
                    self.payload(kind, payload)?
                }
                WireType::StartGroup | WireType::EndGroup => {
                    return Err(OnnxError::corrupt("protobuf groups are not used by ONNX"))
                }
            };
            if let Some((what, limit)) = count_limit(msg, tag) {
                bump(&mut counts, tag, elements, what, limit)?;
            }
        }
        Ok(())
    }

    /// Accounts for a length-delimited field; returns the number of elements it holds.
    fn payload(&mut self, kind: Field, payload: &[u8]) -> Result<u64> {
        let len = payload.len() as u64;
        match kind {
            Field::Sub(inner) => {
                self.add(struct_size(inner))?;
                self.walk(inner, payload)?;
                Ok(1)
            }
            Field::Varints => {
                // Packed: one element per byte without the continuation bit.
                if payload.last().is_some_and(|b| b & 0x80 != 0) {
                    return Err(OnnxError::corrupt("truncated packed varint"));
                }
                let n = payload.iter().filter(|b| *b & 0x80 == 0).count() as u64;
                self.add(n.saturating_mul(8))?;
                Ok(n)
            }
            Field::Fixed32s => {
                self.add(len)?;
                Ok(len / 4)
            }
            Field::Bytes => {
                self.add(len.saturating_add(size_of::<String>() as u64))?;
                Ok(1)
            }
            Field::Inline => Ok(1),
        }
    }
}

fn skip(buf: &[u8], n: usize) -> Result<&[u8]> {
    buf.get(n..)
        .ok_or_else(|| OnnxError::corrupt("truncated fixed-width field"))
}

fn bump(counts: &mut Vec<(u32, u64)>, tag: u32, n: u64, what: &str, limit: u64) -> Result<()> {
    let found = match counts.iter_mut().find(|(t, _)| *t == tag) {
        Some((_, c)) => {
            *c = c.saturating_add(n);
            *c
        }
        None => {
            counts.push((tag, n));
            n
        }
    };
    if found > limit {
        return Err(OnnxError::LimitExceeded {
            what: what.to_string(),
            found,
            limit,
        });
    }
    Ok(())
}
