//! The parameter set of a split (docs/mhe.md, "Choosing the parameter set").
//!
//! The collective key's BFV set is chosen per split, not per deployment: a small model runs at
//! N = 4096 (half the HE work and bytes of N = 8192), a large one needs N = 8192 for its flooding
//! budget, or a key would serve only a handful of bundles (cifar-cnn with 3 servers: 11 at
//! N = 4096) or none (cifar-cnn with 5 servers). [`choose_param`] takes the cheapest set in
//! [`COLLECTIVE_PARAMS`] on which the model passes every check of `plan::budget` and a key
//! serves at least [`TARGET_KEY_LIFETIME`] bundles; failing that, the passing set with the
//! longest key lifetime. A plan file may name the set instead (`param = "Bfv8192T32V1"`).
//! The set goes into every part (`ServerPart::param`, `UserPart::param`), into the user part's
//! digest and the schedule digest, so parts of different sets never run together.

use super::budget::{check_model, BudgetError, BudgetReport};
use crate::mhe::ParamId;
use crate::model::QuantModel;

/// The sets a collective key may use, cheapest first.
pub const COLLECTIVE_PARAMS: [ParamId; 2] = [ParamId::Bfv4096T32V1, ParamId::Bfv8192T32V1];

/// The set of parts written before the set was chosen per split.
pub const LEGACY_PARAM: ParamId = ParamId::Bfv4096T32V1;

/// Bundles a collective key should serve before it must be rotated: a key generation costs
/// about as much as a few bundles' preprocessing, so below this the rotations start to show.
pub const TARGET_KEY_LIFETIME: u64 = 100;

/// The bundles one key serves on a split whose stages are owned by `owners` (server index per
/// stage): the smallest of the owners' shares (`BudgetReport::owner_lifetime_bundles`), as
/// each owner counts the bundles it leads against its share (docs/mhe.md, "Lifetime of a key").
pub fn split_lifetime(report: &BudgetReport, owners: &[usize]) -> u64 {
    let distinct: std::collections::BTreeSet<usize> = owners.iter().copied().collect();
    distinct
        .iter()
        .map(|&o| {
            let mine = BudgetReport {
                param: report.param,
                n: report.n,
                layers: report
                    .layers
                    .iter()
                    .filter(|l| owners.get(l.stage) == Some(&o))
                    .cloned()
                    .collect(),
            };
            mine.owner_lifetime_bundles(distinct.len())
        })
        .min()
        .unwrap_or(u64::MAX)
}

/// The parameter set for `model` split over `owners.len()`-stage ownership among `n` servers
/// (module docs), with the report at that set; the refusal at the set with the most room (the
/// last) if no set passes.
pub fn choose_param(
    model: &QuantModel,
    owners: &[usize],
    n: usize,
) -> Result<(ParamId, BudgetReport), BudgetError> {
    let mut best: Option<(u64, ParamId, BudgetReport)> = None;
    let mut last_err = None;
    for param in COLLECTIVE_PARAMS {
        match check_model(model, param, n) {
            Ok(report) => {
                let life = split_lifetime(&report, owners);
                if life >= TARGET_KEY_LIFETIME {
                    return Ok((param, report));
                }
                if best.as_ref().is_none_or(|(l, _, _)| life > *l) {
                    best = Some((life, param, report));
                }
            }
            Err(e) => last_err = Some(e),
        }
    }
    // Failing the lifetime target, the longest lifetime; a set whose owner shares allow no
    // bundle at all is refused by `check_part` with the figures.
    best.map(|(_, param, report)| (param, report))
        .ok_or_else(|| {
            last_err.unwrap_or(BudgetError::Servers {
                n,
                max: 0,
                param: LEGACY_PARAM,
            })
        })
}
