//! The plan file (TOML), written by hand or by `seco model split --write-plan`:
//!
//! ```toml
//! model = "mnist-mlp"
//! servers = ["gateway", "remote-1", "remote-2"]
//! param = "Bfv4096T32V1"   # optional: the collective key's BFV set (default: chosen, plan::param)
//!
//! [owners]            # linear layer name -> server name
//! fc1 = "gateway"
//! fc2 = "remote-1"
//! fc3 = "remote-2"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{PlanError, Result, SplitPlan};
use crate::model::QuantModel;

/// Largest plan file accepted, in bytes.
pub const MAX_PLAN_BYTES: usize = 1 << 20;

/// The plan file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// Model name.
    pub model: String,
    /// Server names; the first is the gateway.
    pub servers: Vec<String>,
    /// The collective key's parameter set (`None`: chosen by `plan::choose_param`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<crate::mhe::ParamId>,
    /// Linear layer name -> server name.
    pub owners: BTreeMap<String, String>,
}

impl PlanFile {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        if text.len() > MAX_PLAN_BYTES {
            return Err(PlanError::Parse(format!(
                "plan file of {} bytes exceeds {MAX_PLAN_BYTES}",
                text.len()
            )));
        }
        toml::from_str(text).map_err(|e| PlanError::Parse(format!("plan file: {e}")))
    }

    /// TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Resolves names against a model: every linear layer must have exactly one known owner.
    pub fn resolve(&self, model: &QuantModel) -> Result<SplitPlan> {
        let known_layers: Vec<String> = model.stages.iter().map(|s| s.name.clone()).collect();
        if let Some(name) = self.owners.keys().find(|n| !known_layers.contains(n)) {
            return Err(PlanError::UnknownLayer {
                name: name.clone(),
                known: known_layers,
            });
        }
        let owners = model
            .stages
            .iter()
            .map(|stage| {
                let server = self
                    .owners
                    .get(&stage.name)
                    .ok_or_else(|| PlanError::Unassigned {
                        name: stage.name.clone(),
                    })?;
                self.servers
                    .iter()
                    .position(|s| s == server)
                    .ok_or_else(|| PlanError::UnknownServer {
                        name: server.clone(),
                        known: self.servers.clone(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let plan = SplitPlan {
            model: self.model.clone(),
            servers: self.servers.clone(),
            owners,
            param: self.param,
        };
        plan.validate(model)?;
        Ok(plan.with_param(model))
    }

    /// The file form of a resolved plan.
    pub fn from_plan(plan: &SplitPlan, model: &QuantModel) -> Self {
        let owners = model
            .stages
            .iter()
            .zip(&plan.owners)
            .map(|(s, &o)| (s.name.clone(), plan.servers[o].clone()))
            .collect();
        Self {
            model: plan.model.clone(),
            servers: plan.servers.clone(),
            param: Some(plan.param(model)),
            owners,
        }
    }
}
