//! What each party receives from a split plan (DESIGN.md s.4).
//!
//! - A server gets a [`ServerPart`]: the weights of the stages it owns, plus the public
//!   *skeleton* every server needs to take part in key generation, encryption-to-shares and the
//!   joint garbling of every non-linear stage: per stage its owner, the linear layer's shape (no
//!   weights) and the non-linear operations. The skeleton does not go to the user.
//! - The user gets a [`UserPart`]: input shape, fixed-point parameters, output length.
//!
//! A part is one CBOR file (`part.cbor`), validated after decoding: shapes must chain, owners
//! must exist, and the weights present must be exactly those of the stages this server owns.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{PlanError, Result, SplitPlan};
use crate::fixed::FixedPoint;
use crate::mhe::ParamId;
use crate::model::{checked_elements, LinearOp, LinearShape, NonLinearOp, QuantModel, Stage};

/// File name of a server part inside its directory.
pub const PART_FILE: &str = "part.cbor";
/// Format tag of server parts.
pub const SERVER_PART_FORMAT: &str = "seco-server-part/1";
/// Format tag of user parts.
pub const USER_PART_FORMAT: &str = "seco-user-part/1";
/// Largest part file, in bytes.
pub const MAX_PART_BYTES: u64 = 1 << 30;

/// One stage as every server sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSpec {
    /// Linear layer name.
    pub name: String,
    /// Owning server index.
    pub owner: usize,
    /// Linear layer shape.
    pub linear: LinearShape,
    /// Non-linear operations after truncation.
    pub post: Vec<NonLinearOp>,
    /// Stage input shape.
    pub in_shape: Vec<usize>,
    /// Stage output shape.
    pub out_shape: Vec<usize>,
}

/// A server's part of a split model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerPart {
    /// [`SERVER_PART_FORMAT`].
    pub format: String,
    /// Model name.
    pub model: String,
    /// Ring and scale.
    pub fixed_point: FixedPoint,
    /// All server names (index 0 is the gateway).
    pub servers: Vec<String>,
    /// This server's index.
    pub server_index: usize,
    /// Model input shape.
    pub input_shape: Vec<usize>,
    /// Every stage, without weights.
    pub skeleton: Vec<StageSpec>,
    /// `(stage index, weights)` of the stages this server owns, in order.
    pub owned: Vec<(usize, LinearOp)>,
    /// The collective key's parameter set (`plan::param`; parts written before it: 4096).
    #[serde(default = "legacy_param")]
    pub param: ParamId,
}

fn legacy_param() -> ParamId {
    super::LEGACY_PARAM
}

/// The user's part: what the user needs to encode inputs and decode logits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPart {
    /// [`USER_PART_FORMAT`].
    pub format: String,
    /// Model name.
    pub model: String,
    /// Ring and scale.
    pub fixed_point: FixedPoint,
    /// Input shape.
    pub input_shape: Vec<usize>,
    /// Number of logits.
    pub output_len: usize,
    /// Shape of the first linear layer: the user lays out its input mask `Enc(r_1)` in that
    /// layer's coefficient encoding (this reveals the first layer's shape, not its weights).
    pub input_layer: LinearShape,
    /// The collective key's parameter set (as the servers' parts).
    #[serde(default = "legacy_param")]
    pub param: ParamId,
}

/// Whether `op` has `shape` and weights of the right length.
fn matches(shape: &LinearShape, op: &LinearOp) -> bool {
    *shape == LinearShape::of_op(op) && weights_consistent(op)
}

fn weights_consistent(op: &LinearOp) -> bool {
    match op {
        LinearOp::Dense(d) => {
            d.in_features.checked_mul(d.out_features) == Some(d.weight.len())
                && d.bias.len() == d.out_features
        }
        LinearOp::Conv2d(c) => {
            checked_elements(
                "conv",
                &[c.out_channels, c.in_shape[0], c.kernel[0], c.kernel[1]],
            )
            .is_ok_and(|n| n == c.weight.len())
                && c.bias.len() == c.out_channels
        }
        LinearOp::AvgPool2d(_) => true,
    }
}

impl StageSpec {
    fn of(stage: &Stage, owner: usize) -> Self {
        Self {
            name: stage.name.clone(),
            owner,
            linear: LinearShape::of_op(&stage.linear),
            post: stage.post.clone(),
            in_shape: stage.in_shape.clone(),
            out_shape: stage.out_shape.clone(),
        }
    }
}

impl SplitPlan {
    /// The part of server `index`.
    pub fn server_part(&self, model: &QuantModel, index: usize) -> Result<ServerPart> {
        self.validate(model)?;
        if index >= self.servers.len() {
            return Err(PlanError::UnknownServer {
                name: format!("#{index}"),
                known: self.servers.clone(),
            });
        }
        let skeleton = model
            .stages
            .iter()
            .zip(&self.owners)
            .map(|(s, &o)| StageSpec::of(s, o))
            .collect();
        let owned = model
            .stages
            .iter()
            .enumerate()
            .filter(|(i, _)| self.owners[*i] == index)
            .map(|(i, s)| (i, s.linear.clone()))
            .collect();
        Ok(ServerPart {
            format: SERVER_PART_FORMAT.to_string(),
            model: model.name.clone(),
            fixed_point: model.fp,
            servers: self.servers.clone(),
            server_index: index,
            input_shape: model.input_shape.clone(),
            skeleton,
            owned,
            param: self.param(model),
        })
    }

    /// The user's part.
    pub fn user_part(&self, model: &QuantModel) -> UserPart {
        let input_layer = model
            .stages
            .first()
            .map(|s| LinearShape::of_op(&s.linear))
            .unwrap_or(LinearShape::Dense {
                in_features: 0,
                out_features: 0,
            });
        UserPart {
            input_layer,
            format: USER_PART_FORMAT.to_string(),
            model: model.name.clone(),
            fixed_point: model.fp,
            input_shape: model.input_shape.clone(),
            output_len: model.out_len(),
            param: self.param(model),
        }
    }
}

impl ServerPart {
    /// The digest of this server's whole part (skeleton, fixed point, servers, its weights, the
    /// parameter set): BLAKE3 over a domain tag and the part's CBOR encoding. Session records
    /// carry it, so that a server restarted with another part (new weights after `seco model
    /// split` again) drops the sessions and bundles made for the old one instead of returning
    /// wrong logits (`docs/operations.md`, "Updating the weights").
    pub fn digest(&self) -> [u8; 32] {
        let mut bytes = Vec::new();
        // Writing plain data to a Vec cannot fail.
        let _ = ciborium::into_writer(self, &mut bytes);
        let mut h = blake3::Hasher::new();
        h.update(b"seco server part v1");
        h.update(&bytes);
        *h.finalize().as_bytes()
    }
}

impl UserPart {
    /// The digest of what the user's side of a session depends on (model name, fixed point,
    /// input shape, output length, first layer's shape): the user sends it in its `Hello` and
    /// the gateway compares it with [`ServerPart::user_part`] of its own part, so that a
    /// `user.json` of another split or another fixed point is refused instead of decoding wrong
    /// logits (`docs/protocol.md`, "The user's part"). The `format` tag is not part of it.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"seco user part v1");
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(self.model.as_bytes());
        field(&self.fixed_point.ring_bits.to_le_bytes());
        field(&self.fixed_point.frac_bits.to_le_bytes());
        let shape: Vec<u8> = self
            .input_shape
            .iter()
            .flat_map(|d| (*d as u64).to_le_bytes())
            .collect();
        field(&shape);
        field(&(self.output_len as u64).to_le_bytes());
        let mut layer = Vec::new();
        // Writing plain data to a Vec cannot fail.
        let _ = ciborium::into_writer(&self.input_layer, &mut layer);
        field(&layer);
        field(&self.param.code().to_le_bytes());
        *h.finalize().as_bytes()
    }

    /// One line for errors: what the user's side of the deployment is.
    pub fn describe(&self) -> String {
        format!(
            "model {:?}, fixed point k = {} f = {}, input shape {:?}, {} outputs",
            self.model,
            self.fixed_point.ring_bits,
            self.fixed_point.frac_bits,
            self.input_shape,
            self.output_len
        )
    }
}

impl ServerPart {
    /// The user's part of this split as this server sees it (from the public skeleton):
    /// equal to `SplitPlan::user_part` of the model the part came from.
    pub fn user_part(&self) -> UserPart {
        let input_layer = self.skeleton.first().map_or(
            LinearShape::Dense {
                in_features: 0,
                out_features: 0,
            },
            |s| s.linear.clone(),
        );
        UserPart {
            format: USER_PART_FORMAT.to_string(),
            model: self.model.clone(),
            fixed_point: self.fixed_point,
            input_shape: self.input_shape.clone(),
            output_len: self.skeleton.last().map_or(0, |s| s.linear.out_len()),
            input_layer,
            param: self.param,
        }
    }

    /// This server's name.
    pub fn server_name(&self) -> &str {
        self.servers
            .get(self.server_index)
            .map_or("", String::as_str)
    }

    /// Checks internal consistency (after decoding an untrusted file).
    pub fn validate(&self) -> Result<()> {
        let mismatch = |m: String| Err(PlanError::Mismatch(m));
        if self.format != SERVER_PART_FORMAT {
            return mismatch(format!(
                "format {:?}, expected {SERVER_PART_FORMAT:?}",
                self.format
            ));
        }
        if !super::COLLECTIVE_PARAMS.contains(&self.param) {
            return mismatch(format!(
                "parameter set {:?} is not one for a collective key ({:?})",
                self.param,
                super::COLLECTIVE_PARAMS
            ));
        }
        self.fixed_point
            .validate()
            .map_err(crate::model::ModelError::from)?;
        if self.server_index >= self.servers.len() || self.skeleton.is_empty() {
            return mismatch("server index out of range or empty skeleton".into());
        }
        let mut shape = self.input_shape.clone();
        for (i, spec) in self.skeleton.iter().enumerate() {
            if spec.owner >= self.servers.len() || spec.in_shape != shape {
                return mismatch(format!(
                    "stage {i} ({}) has a bad owner or input shape",
                    spec.name
                ));
            }
            checked_elements(&spec.name, &spec.out_shape)?;
            shape = spec.out_shape.clone();
        }
        let mine: Vec<usize> = (0..self.skeleton.len())
            .filter(|&i| self.skeleton[i].owner == self.server_index)
            .collect();
        let have: Vec<usize> = self.owned.iter().map(|(i, _)| *i).collect();
        if mine != have {
            return mismatch(format!("owned stages {have:?}, skeleton says {mine:?}"));
        }
        for (i, op) in &self.owned {
            if !matches(&self.skeleton[*i].linear, op) {
                return mismatch(format!("weights of stage {i} do not match its shape"));
            }
        }
        Ok(())
    }

    /// Writes `dir/part.cbor`.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let io = |e: std::io::Error| PlanError::Parse(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut bytes = Vec::new();
        ciborium::into_writer(self, &mut bytes).map_err(|e| PlanError::Parse(e.to_string()))?;
        std::fs::write(dir.join(PART_FILE), bytes).map_err(io)
    }

    /// Reads and validates `dir/part.cbor` (or the given file).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = if path.is_dir() {
            path.join(PART_FILE)
        } else {
            path.to_path_buf()
        };
        let io = |e: std::io::Error| PlanError::Parse(format!("{}: {e}", file.display()));
        let size = std::fs::metadata(&file).map_err(io)?.len();
        if size > MAX_PART_BYTES {
            return Err(PlanError::Parse(format!(
                "{}: {size} bytes exceed {MAX_PART_BYTES}",
                file.display()
            )));
        }
        let bytes = std::fs::read(&file).map_err(io)?;
        let part: ServerPart = ciborium::from_reader(bytes.as_slice())
            .map_err(|e| PlanError::Parse(format!("{}: not a server part: {e}", file.display())))?;
        part.validate()?;
        Ok(part)
    }
}

/// Rebuilds the quantized model from the parts of all servers (each stage's weights must come
/// from exactly one part, and all parts must share one skeleton).
pub fn assemble(parts: &[ServerPart]) -> Result<QuantModel> {
    let first = parts
        .first()
        .ok_or_else(|| PlanError::Mismatch("no parts".into()))?;
    let mut linear: Vec<Option<LinearOp>> = vec![None; first.skeleton.len()];
    for part in parts {
        part.validate()?;
        if part.skeleton != first.skeleton || part.fixed_point != first.fixed_point {
            return Err(PlanError::Mismatch(format!(
                "part of {} has another skeleton",
                part.server_name()
            )));
        }
        for (i, op) in &part.owned {
            if linear[*i].replace(op.clone()).is_some() {
                return Err(PlanError::Mismatch(format!("stage {i} owned twice")));
            }
        }
    }
    let stages = first
        .skeleton
        .iter()
        .zip(linear)
        .enumerate()
        .map(|(i, (spec, op))| {
            let linear =
                op.ok_or_else(|| PlanError::Mismatch(format!("stage {i} has no weights")))?;
            Ok(Stage {
                name: spec.name.clone(),
                layer_index: i,
                linear,
                post: spec.post.clone(),
                in_shape: spec.in_shape.clone(),
                out_shape: spec.out_shape.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(QuantModel {
        name: first.model.clone(),
        fp: first.fixed_point,
        input_shape: first.input_shape.clone(),
        stages,
    })
}
