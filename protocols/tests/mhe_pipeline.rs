//! The homomorphic part of one SECO inference on a real test input, end to end (DESIGN.md s.5):
//! the user's `Enc(r1)`, the owner's `Enc(W r1 - s)`, encryption-to-shares among 3 servers, the
//! online masked evaluation by the owner, and result delivery to the user's session key. The
//! servers' shares of the first layer's output equal the fixed-point reference trace bit for bit.

mod mhe_common;

use std::path::PathBuf;

use seco_protocols::mhe::{
    e2s, E2sConfig, E2sLeader, EncodedLayer, Layout, ParamId, ResultCiphertext, S2eAggregator,
    SessionKey,
};
use seco_protocols::model::{Model, TestSet};

use mhe_common::*;

#[test]
fn first_layer_and_result_delivery_match_reference() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/digits-cnn");
    let model = Model::load(&dir).unwrap();
    let qm = model.quantize().unwrap();
    let test = TestSet::load(dir.join("test.safetensors")).unwrap();
    let x = model.encode_input(test.input(0).unwrap()).unwrap();
    let trace = qm.infer_trace(&x).unwrap();
    let fp = qm.fp;
    let mask = (1u64 << fp.ring_bits) - 1;
    let (n, param) = (3usize, ParamId::Bfv4096T32V1);
    let mut r = rng(77);
    let (keys, pk) = keygen(param, n, &mut r);

    // Preprocessing. User: r1 and Enc(r1) in layer 1's input layout (one ciphertext).
    let op = &qm.stages[0].linear;
    let layer = EncodedLayer::from_op(param, op).unwrap();
    let packing = layer.packing().clone();
    let r1 = random_ring(op.in_len(), &mut r);
    let enc_r1 = packing.input.encrypt(&pk, &r1, &mut r).unwrap();
    assert_eq!(enc_r1.len(), 1);
    // Owner (server 1): Enc(W r1 - s), then E2S with the owner as leader.
    let owner = 1u16;
    let s = random_ring(op.out_len(), &mut r);
    let outs = layer.eval(&pk, &enc_r1, &s, &mut r).unwrap();
    let cfg = |me| E2sConfig {
        param,
        n,
        me,
        leader: owner,
        instance: 0,
    };
    let (mut lead, req) =
        E2sLeader::new(cfg(owner), &keys[owner as usize], &packing.output, &outs).unwrap();
    let mut shares = vec![Vec::new(); n];
    let mut owner_share = None;
    for me in (0..n as u16).filter(|&i| i != owner) {
        let (sh, mine) = e2s::follower_share(
            &cfg(me),
            &keys[me as usize],
            &packing.output,
            &req.msg,
            &mut r,
        )
        .unwrap();
        shares[me as usize] = mine.to_vec();
        owner_share = lead.handle(me, &sh.msg).unwrap();
    }
    // Online. Owner: W (x - r1) + b + s + its E2S share.
    let masked: Vec<u64> = x
        .iter()
        .zip(&r1)
        .map(|(a, b)| a.wrapping_sub(*b) & mask)
        .collect();
    let clear = op.apply_ring(fp, &masked, true);
    shares[owner as usize] = clear
        .iter()
        .zip(&s)
        .zip(owner_share.unwrap().iter())
        .map(|((y, s), e)| y.wrapping_add(*s).wrapping_add(*e) & mask)
        .collect();
    let sum: Vec<u64> = (0..op.out_len())
        .map(|i| shares.iter().fold(0u64, |a, sh| a.wrapping_add(sh[i])) & mask)
        .collect();
    assert_eq!(
        sum, trace[0].linear_out,
        "shares of W x + b equal the reference"
    );

    // Result delivery: shares of the logits (here: random shares of the reference logits).
    let logits = &trace.last().unwrap().out;
    let user = SessionKey::generate(ParamId::Bfv2048T32V1, &mut r).unwrap();
    let out_layout = Layout::contiguous(logits.len(), 2048);
    let mut parts: Vec<Vec<u64>> = (1..n).map(|_| random_ring(logits.len(), &mut r)).collect();
    let last: Vec<u64> = (0..logits.len())
        .map(|i| parts.iter().fold(logits[i], |a, p| a.wrapping_sub(p[i])) & mask)
        .collect();
    parts.push(last);
    let mut agg = S2eAggregator::new(ParamId::Bfv2048T32V1, n, 1);
    let mut total = None;
    for (i, p) in parts.iter().enumerate() {
        total = agg
            .handle(
                i as u16,
                &out_layout.encrypt(user.public_key(), p, &mut r).unwrap(),
            )
            .unwrap();
    }
    let rc = ResultCiphertext::restrict(&total.unwrap()[0], &out_layout).unwrap();
    assert_eq!(&user.decrypt(&rc).unwrap(), logits);
}
