//! A node under conversion: its position for error messages and typed access to its
//! attributes, refusing attributes the converter does not know (an unknown attribute could
//! change the semantics, and the importer never approximates).

use super::error::OnnxError;
use super::proto::{attr_type, AttributeProto, NodeProto};

/// A node and its position in the graph.
#[derive(Debug, Clone, Copy)]
pub struct NodeCtx<'a> {
    /// Position in `graph.node` (0-based, Constant nodes included).
    pub index: usize,
    /// The node.
    pub node: &'a NodeProto,
}

impl<'a> NodeCtx<'a> {
    /// An "attribute/usage not supported" error for this node.
    pub fn err(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::UnsupportedNode {
            index: self.index,
            name: self.node.name.clone(),
            op_type: self.node.op_type.clone(),
            reason: reason.into(),
        }
    }

    /// An "operator not supported" error for this node.
    pub fn unsupported(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::UnsupportedOp {
            index: self.index,
            name: self.node.name.clone(),
            op_type: self.node.op_type.clone(),
            reason: reason.into(),
        }
    }

    /// The operator type.
    pub fn op(&self) -> &'a str {
        &self.node.op_type
    }

    /// Input `i`, `None` when absent or empty (an omitted optional input).
    pub fn input(&self, i: usize) -> Option<&'a str> {
        self.node
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Refuses attributes outside `known`, and duplicated attributes.
    pub fn only_attrs(&self, known: &[&str]) -> Result<(), OnnxError> {
        for (i, a) in self.node.attribute.iter().enumerate() {
            if !known.contains(&a.name.as_str()) {
                return Err(self.err(format!(
                    "attribute {:?} is not supported (known: {known:?})",
                    a.name
                )));
            }
            if self.node.attribute[..i].iter().any(|b| b.name == a.name) {
                return Err(self.err(format!("attribute {:?} is given twice", a.name)));
            }
        }
        Ok(())
    }

    fn attr(
        &self,
        name: &str,
        ty: i32,
        ty_name: &str,
    ) -> Result<Option<&'a AttributeProto>, OnnxError> {
        match self.node.attribute.iter().find(|a| a.name == name) {
            None => Ok(None),
            Some(a) if a.r#type == ty => Ok(Some(a)),
            Some(_) => Err(self.err(format!("attribute {name:?} must be of type {ty_name}"))),
        }
    }

    /// An `INT` attribute or its default.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        Ok(self
            .attr(name, attr_type::INT, "INT")?
            .map_or(default, |a| a.i))
    }

    /// A `FLOAT` attribute or its default.
    pub fn float(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        Ok(self
            .attr(name, attr_type::FLOAT, "FLOAT")?
            .map_or(default, |a| a.f))
    }

    /// An `INTS` attribute, if present.
    pub fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, OnnxError> {
        Ok(self
            .attr(name, attr_type::INTS, "INTS")?
            .map(|a| a.ints.as_slice()))
    }

    /// A `FLOATS` attribute, if present.
    pub fn floats(&self, name: &str) -> Result<Option<&'a [f32]>, OnnxError> {
        Ok(self
            .attr(name, attr_type::FLOATS, "FLOATS")?
            .map(|a| a.floats.as_slice()))
    }

    /// A `STRING` attribute, if present (lossy UTF-8, used for enum-like values).
    pub fn string(&self, name: &str) -> Result<Option<String>, OnnxError> {
        Ok(self
            .attr(name, attr_type::STRING, "STRING")?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    /// A `TENSOR` attribute, if present.
    pub fn tensor(&self, name: &str) -> Result<Option<&'a super::proto::TensorProto>, OnnxError> {
        Ok(self
            .attr(name, attr_type::TENSOR, "TENSOR")?
            .and_then(|a| a.t.as_deref()))
    }

    /// A 2-element `INTS` attribute of non-negative values (`kernel_shape`, `strides`), or
    /// `default` when absent.
    pub fn pair(&self, name: &str, default: Option<[usize; 2]>) -> Result<[usize; 2], OnnxError> {
        match (self.ints(name)?, default) {
            (Some([a, b]), _) => match (usize::try_from(*a), usize::try_from(*b)) {
                (Ok(a), Ok(b)) if a > 0 && b > 0 => Ok([a, b]),
                _ => Err(self.err(format!("{name} = [{a}, {b}] must be positive"))),
            },
            (Some(other), _) => Err(self.err(format!(
                "{name} = {other:?}: only 2-D operations (two values) are supported"
            ))),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(self.err(format!("attribute {name:?} is required"))),
        }
    }

    /// `pads = [top, left, bottom, right]` as symmetric `[ph, pw]` (zeros when absent).
    pub fn symmetric_pads(&self) -> Result<[usize; 2], OnnxError> {
        let Some(pads) = self.ints("pads")? else {
            return Ok([0, 0]);
        };
        let p: Vec<usize> = pads
            .iter()
            .map(|&v| usize::try_from(v))
            .collect::<Result<_, _>>()
            .map_err(|_| self.err(format!("pads = {pads:?} must be non-negative")))?;
        match p.as_slice() {
            [t, l, b, r] if t == b && l == r => Ok([*t, *l]),
            [_, _, _, _] => Err(self.err(format!(
                "pads = {pads:?} are asymmetric: only symmetric padding (top = bottom, left = right) is supported"
            ))),
            _ => Err(self.err(format!("pads = {pads:?}: expected 4 values for a 2-D operation"))),
        }
    }

    /// Padding `[ph, pw]` from `auto_pad` and `pads`: `NOTSET` (explicit symmetric pads) or
    /// `VALID` (no padding); `SAME_UPPER`/`SAME_LOWER` are refused.
    pub fn padding(&self) -> Result<[usize; 2], OnnxError> {
        let pads = self.symmetric_pads()?;
        match self.string("auto_pad")?.as_deref() {
            None | Some("NOTSET") => Ok(pads),
            Some("VALID") if pads == [0, 0] => Ok(pads),
            Some(other) => Err(self.err(format!(
                "auto_pad = {other} is not supported: export with explicit symmetric pads"
            ))),
        }
    }

    /// Refuses `dilations` other than all ones.
    pub fn unit_dilations(&self) -> Result<(), OnnxError> {
        match self.ints("dilations")? {
            Some(d) if d.iter().any(|&v| v != 1) => {
                Err(self.err(format!("dilations = {d:?}: only dilation 1 is supported")))
            }
            _ => Ok(()),
        }
    }
}
