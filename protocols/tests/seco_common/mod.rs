//! Shared helpers for the `seco_*` integration tests: the shipped models, the usual three-server
//! split, the fixed-point reference, and hand-built messages and server configurations.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use seco_protocols::mhe::ParamId;
use seco_protocols::model::{Model, QuantModel, TestSet};
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::local::LocalOptions;
use seco_protocols::seco::msg::{Body, SecoMsg, VERSION};
use seco_protocols::seco::{Party, ServerConfig, SessionId};

/// The directory of a shipped model.
pub fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

/// Server names: `gateway`, `remote-1`, ..., `remote-{n-1}`.
pub fn servers(n: usize) -> Vec<String> {
    seco_protocols::plan::default_server_names(n)
}

/// digits-mlp, balanced over a gateway and two remotes.
pub fn setup() -> (Model, QuantModel, SplitPlan) {
    let model = Model::load(model_dir("digits-mlp")).unwrap();
    let q = model.quantize().unwrap();
    let plan = SplitPlan::balanced(&q, &servers(3)).unwrap();
    (model, q, plan)
}

/// The plaintext fixed-point logits, signed.
pub fn reference(model: &Model, q: &QuantModel, x: &[u64]) -> Vec<i64> {
    q.infer(x)
        .unwrap()
        .iter()
        .map(|&v| model.fixed_point.to_signed(v))
        .collect()
}

/// Test input `i` of the model's shipped test set, encoded.
pub fn input(model: &Model, i: usize) -> Vec<u64> {
    let tests = TestSet::load(model_dir(&model.name)).unwrap();
    model.encode_input(tests.input(i).unwrap()).unwrap()
}

/// Default options with every delivered message recorded.
pub fn recording() -> LocalOptions {
    LocalOptions {
        record: true,
        ..LocalOptions::default()
    }
}

/// A message of the current protocol version.
pub fn msg(session: SessionId, from: Party, seq: u64, body: Body) -> SecoMsg {
    SecoMsg {
        version: VERSION,
        session,
        from,
        seq,
        body,
    }
}

/// Server `i`'s configuration in `session`.
pub fn server_config(
    q: &QuantModel,
    plan: &SplitPlan,
    i: usize,
    session: SessionId,
) -> ServerConfig {
    ServerConfig {
        session,
        part: Arc::new(plan.server_part(q, i).unwrap()),
        param: ParamId::Bfv4096T32V1,
        user_param: ParamId::Bfv2048T32V1,
        chunk_budget: seco_protocols::seco::schedule::MAX_CHUNK_TABLE_BYTES,
    }
}
