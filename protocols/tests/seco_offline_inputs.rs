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
    let bmr = |body: &Body| -> Option<(u16, BmrMsg)> {
        match body {
            Body::BmrOffline { stage, msg, .. } | Body::BmrOnline { stage, msg, .. } => {
                Some((*stage, ciborium::from_reader(msg.as_slice()).unwrap()))
            }
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
    // Online: keys and masked bits of the owner's z words only (y_len words of k bits).
    let k = model.fixed_point.ring_bits as usize;
    let sched_y: Vec<usize> = q.stages.iter().map(|s| s.linear.out_len()).collect();
    let mut seen = 0;
    for m in &d.trace[mid..] {
        let Some((stage, msg)) = bmr(&m.msg.body) else {
            continue;
        };
        let z_bits = sched_y[usize::from(stage)] * k;
        match msg.body {
            BmrBody::InputKeys(keys) => {
                assert_eq!(keys.len(), z_bits, "stage {stage}");
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
    let online: u64 = (0..3)
        .map(|i| d.accounting.get(Party::Server(i), Phase::Online).bytes_sent)
        .sum();
    println!("online bytes sent by the servers: {online}");
}
