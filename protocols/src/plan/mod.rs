//! Split plans: which server owns which linear layer (DESIGN.md s.4), and the parts each party
//! receives.
//!
//! A plan assigns every stage (linear layer + the non-linear ops after it, see
//! [`crate::model::Stage`]) to one owner; consecutive stages of one owner form a segment. Server
//! index 0 is the gateway. The default plan cuts the stages into contiguous segments balanced by
//! multiply-accumulate count, in server order (the gateway owns the first segment).
//!
//! # Layout
//! - `mod.rs`: [`SplitPlan`], validation and the balanced default.
//! - `file.rs`: the TOML plan file.
//! - `budget.rs`: the parameter check of a model or a part against the servers' BFV set
//!   (ring, plane sizes, noise and flooding budget), run at split, import and session open.
//! - `param.rs`: the choice of the collective key's parameter set per split.
//! - `parts.rs`: [`ServerPart`] (own weights + the public skeleton), [`UserPart`], and
//!   [`assemble`] which rebuilds the model from all server parts (for tests).

pub mod budget;
mod file;
pub mod param;
mod parts;

pub use budget::{check_model, check_part, supported_servers, BudgetError, BudgetReport};

pub use file::PlanFile;
pub use param::{choose_param, COLLECTIVE_PARAMS, LEGACY_PARAM};
pub use parts::{
    assemble, ServerPart, StageSpec, UserPart, PART_FILE, SERVER_PART_FORMAT, USER_PART_FORMAT,
};

use serde::{Deserialize, Serialize};

use crate::model::{ModelError, QuantModel};

/// Largest number of servers in a deployment.
pub const MAX_SERVERS: usize = 64;

/// The server names of a local deployment of `n` servers: `gateway`, `remote-1`, ...
/// (the names `seco demo`, `seco bench`, `run_local` and the tests give their servers).
pub fn default_server_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i == 0 {
                "gateway".to_string()
            } else {
                format!("remote-{i}")
            }
        })
        .collect()
}

/// Errors of split plans and parts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The plan names a server that is not in the server list.
    #[error("plan names unknown server {name:?} (servers: {known:?})")]
    UnknownServer {
        /// The name used.
        name: String,
        /// The known servers.
        known: Vec<String>,
    },
    /// The plan names a layer that the model does not have (or that is not linear).
    #[error("plan names unknown linear layer {name:?} (model layers: {known:?})")]
    UnknownLayer {
        /// The name used.
        name: String,
        /// The model's linear layers.
        known: Vec<String>,
    },
    /// A linear layer has no owner.
    #[error("linear layer {name:?} has no owner in the plan")]
    Unassigned {
        /// The layer.
        name: String,
    },
    /// The server list is empty, too long, has duplicates or empty names.
    #[error("invalid server list {servers:?}: {reason}")]
    BadServers {
        /// The list.
        servers: Vec<String>,
        /// Why.
        reason: String,
    },
    /// The plan is for another model.
    #[error("plan is for model {found:?}, not {expected:?}")]
    WrongModel {
        /// The model at hand.
        expected: String,
        /// What the plan says.
        found: String,
    },
    /// A plan or part file does not parse.
    #[error("{0}")]
    Parse(String),
    /// Parts that do not fit together (different skeletons, missing or duplicated stages).
    #[error("parts do not fit together: {0}")]
    Mismatch(String),
    /// A model error (loading or validating a part's weights).
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Result alias of the plan module.
pub type Result<T, E = PlanError> = std::result::Result<T, E>;

/// Owners of every stage of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPlan {
    /// Model name, checked against the model the plan is applied to.
    pub model: String,
    /// Server names; index 0 is the gateway.
    pub servers: Vec<String>,
    /// Server index owning each stage, in stage order.
    pub owners: Vec<usize>,
    /// The collective key's parameter set; `None`: [`choose_param`] picks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<crate::mhe::ParamId>,
}

impl SplitPlan {
    /// The default plan: contiguous segments in server order, balanced by MAC count (the
    /// largest segment is as small as possible); every server owns a segment when there are at
    /// least as many stages as servers.
    pub fn balanced(model: &QuantModel, servers: &[String]) -> Result<Self> {
        check_servers(servers)?;
        let costs: Vec<u64> = model
            .stages
            .iter()
            .map(|s| s.linear.macs().max(1))
            .collect();
        let owners = balanced_owners(&costs, servers.len());
        Ok(Self {
            model: model.name.clone(),
            servers: servers.to_vec(),
            owners,
            param: None,
        }
        .with_param(model))
    }

    /// The plan with its parameter set fixed ([`SplitPlan::param`]), so that its parts do not
    /// choose it again each.
    pub fn with_param(mut self, model: &QuantModel) -> Self {
        self.param = Some(self.param(model));
        self
    }

    /// The collective key's parameter set of this split: the plan's own, else
    /// [`choose_param`]'s (the set with the most room if none passes: the budget check
    /// refuses the model then, with that set's figures).
    pub fn param(&self, model: &QuantModel) -> crate::mhe::ParamId {
        self.param.unwrap_or_else(|| {
            choose_param(model, &self.owners, self.servers.len())
                .map_or(COLLECTIVE_PARAMS[COLLECTIVE_PARAMS.len() - 1], |(p, _)| p)
        })
    }

    /// Checks the plan against a model.
    pub fn validate(&self, model: &QuantModel) -> Result<()> {
        check_servers(&self.servers)?;
        if self.model != model.name {
            return Err(PlanError::WrongModel {
                expected: model.name.clone(),
                found: self.model.clone(),
            });
        }
        if self.owners.len() != model.stages.len() {
            return Err(PlanError::Mismatch(format!(
                "plan has {} owners for {} linear layers",
                self.owners.len(),
                model.stages.len()
            )));
        }
        if let Some(&bad) = self.owners.iter().find(|&&o| o >= self.servers.len()) {
            return Err(PlanError::UnknownServer {
                name: format!("#{bad}"),
                known: self.servers.clone(),
            });
        }
        Ok(())
    }

    /// Number of servers.
    pub fn n_servers(&self) -> usize {
        self.servers.len()
    }

    /// Index of a server by name.
    pub fn server_index(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s == name)
    }

    /// Segments as `(owner, first_stage, end_stage)` runs of consecutive stages.
    pub fn segments(&self) -> Vec<(usize, usize, usize)> {
        let mut segs: Vec<(usize, usize, usize)> = Vec::new();
        for (i, &o) in self.owners.iter().enumerate() {
            match segs.last_mut() {
                Some(last) if last.0 == o => last.2 = i + 1,
                _ => segs.push((o, i, i + 1)),
            }
        }
        segs
    }
}

fn check_servers(servers: &[String]) -> Result<()> {
    let bad = |reason: &str| PlanError::BadServers {
        servers: servers.to_vec(),
        reason: reason.to_string(),
    };
    if servers.len() < 2 || servers.len() > MAX_SERVERS {
        return Err(bad(&format!(
            "need 2 to {MAX_SERVERS} servers (a gateway and at least one remote)"
        )));
    }
    if servers.iter().any(|s| s.is_empty()) {
        return Err(bad("empty server name"));
    }
    let mut sorted = servers.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != servers.len() {
        return Err(bad("duplicate server name"));
    }
    Ok(())
}

/// Minimises the largest segment cost over contiguous partitions of `costs` into
/// `min(servers, costs.len())` non-empty segments (dynamic programming, O(L^2 m)).
fn balanced_owners(costs: &[u64], servers: usize) -> Vec<usize> {
    let l = costs.len();
    let m = servers.min(l).max(1);
    let prefix: Vec<u64> = std::iter::once(0)
        .chain(costs.iter().scan(0u64, |acc, &c| {
            *acc += c;
            Some(*acc)
        }))
        .collect();
    // best[j][i]: minimal max cost splitting the first i stages into j segments.
    let mut best = vec![vec![u64::MAX; l + 1]; m + 1];
    let mut cut = vec![vec![0usize; l + 1]; m + 1];
    best[0][0] = 0;
    for j in 1..=m {
        for i in j..=l {
            for k in (j - 1)..i {
                if best[j - 1][k] == u64::MAX {
                    continue;
                }
                let cost = best[j - 1][k].max(prefix[i] - prefix[k]);
                if cost < best[j][i] {
                    best[j][i] = cost;
                    cut[j][i] = k;
                }
            }
        }
    }
    let mut owners = vec![0; l];
    let (mut i, mut j) = (l, m);
    while j > 0 {
        let k = cut[j][i];
        owners[k..i].iter_mut().for_each(|o| *o = j - 1);
        i = k;
        j -= 1;
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_partition_minimises_the_largest_segment() {
        assert_eq!(balanced_owners(&[100, 1, 1, 100], 2), vec![0, 0, 1, 1]);
        assert_eq!(balanced_owners(&[10, 10, 10], 3), vec![0, 1, 2]);
        assert_eq!(balanced_owners(&[10, 10], 3), vec![0, 1]);
        assert_eq!(balanced_owners(&[100, 1, 1, 1], 2), vec![0, 1, 1, 1]);
    }
}
