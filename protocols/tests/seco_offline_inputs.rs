//! Stage-circuit inputs known in preprocessing: every input but the stage owner's `z` reaches
//! the evaluator during preprocessing, so the online BMR messages carry only `z`'s wires.

mod seco_common;

use seco_common::{input, model_dir, recording, reference, servers};
use seco_protocols::bmr::{BmrMsg, Body as BmrBody};
use seco_protocols::model::Model;
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::local::LocalDeployment;
use seco_protocols::seco::msg::Body;
use seco_protocols::seco::{Party, Phase};

#[test]
fn online_bmr_messages_carry_only_the_owners_wires() {
    let model = Model::load(model_dir("mnist-mlp")).unwrap();
    let q = model.quantize().unwrap();
    let plan = SplitPlan::balanced(&q, &servers(3)).unwrap();
    let mut d = LocalDeployment::new(&q, &plan, recording()).unwrap();
    let start = d.trace.len();
    d.preprocess(1).unwrap();
    let mid = d.trace.len();
    let x = input(&model, 0);
    assert_eq!(d.infer(&x).unwrap(), reference(&model, &q, &x));
    let bmr = |body: &Body| -> Option<((u16, u32), BmrMsg)> {
        match body {
            Body::BmrOffline {
                stage, chunk, msg, ..
            }
            | Body::BmrOnline {
                stage, chunk, msg, ..
            } => Some((
                (*stage, *chunk),
                ciborium::from_reader(msg.as_slice()).unwrap(),
            )),
            _ => None,
        }
    };
    // Preprocessing: masked bits of the known inputs, and the seeds of their keys.
    let (mut offline_inputs, mut offline_keys) = (0, 0);
    for m in &d.trace[start..mid] {
        match bmr(&m.msg.body).map(|b| b.1.body) {
            Some(BmrBody::OfflineInputs(_)) => offline_inputs += 1,
            Some(BmrBody::Final {
                key_seed: Some(_), ..
            }) => offline_keys += 1,
            _ => {}
        }
    }
    assert!(offline_inputs > 0 && offline_keys > 0);
    // Online: keys and masked bits of the owner's z words only (the y words a chunk reads,
    // of k bits each; for ReLU stages the chunks' words add up to y_len).
    let k = model.fixed_point.ring_bits as usize;
    let sched_y: Vec<usize> = q.stages.iter().map(|s| s.linear.out_len()).collect();
    let chunk_y: Vec<Vec<usize>> = d
        .server_mut(0)
        .schedule()
        .stages
        .iter()
        .map(|s| {
            s.gc.as_ref().map_or(vec![], |g| {
                g.chunks.iter().map(|c| c.spec.y_idx.len()).collect()
            })
        })
        .collect();
    let chunk_words = |(stage, chunk): (u16, u32)| chunk_y[usize::from(stage)][chunk as usize];
    let mut words = std::collections::BTreeMap::new();
    let mut seen = 0;
    for m in &d.trace[mid..] {
        let Some((at, msg)) = bmr(&m.msg.body) else {
            continue;
        };
        let stage = at.0;
        let z_bits = chunk_words(at) * k;
        match msg.body {
            BmrBody::InputKeys(keys) => {
                assert_eq!(keys.len(), z_bits, "stage {stage}");
                *words.entry((m.from, at)).or_insert(0) += keys.len() / k;
                seen += 1;
            }
            BmrBody::MaskedInputs(bits) => {
                assert_eq!(bits.len(), z_bits, "stage {stage}");
                let owner = plan.owners[usize::from(stage)];
                assert_eq!(
                    m.from,
                    Party::Server(owner as u16),
                    "only the owner masks inputs"
                );
            }
            _ => {}
        }
    }
    assert!(seen > 0);
    for (from, (stage, _)) in words.keys() {
        let total: usize = words
            .iter()
            .filter(|((f, (s, _)), _)| f == from && s == stage)
            .map(|(_, w)| w)
            .sum();
        assert_eq!(
            total,
            sched_y[usize::from(*stage)],
            "stage {stage} from {from}"
        );
    }
    let online: u64 = (0..3)
        .map(|i| d.accounting.get(Party::Server(i), Phase::Online).bytes_sent)
        .sum();
    println!("online bytes sent by the servers: {online}");
}
