//! Exact bytes of every MHE message type (printed with `--nocapture`), per parameter set and
//! per shipped layer, and the user's bytes per inference.

mod mhe_common;

use seco_protocols::mhe::ciphertext::ciphertext_bytes;
use seco_protocols::mhe::compress::compressed_poly_bytes;
use seco_protocols::mhe::wire::{poly_bytes, residues_bytes, HEADER_LEN};
use seco_protocols::mhe::{
    e2s, E2sConfig, E2sLeader, EncodedLayer, KeygenMsg, Layout, ParamId, ResultCiphertext,
    SessionKey,
};

use mhe_common::*;

#[test]
fn message_bytes() {
    for param in [ParamId::Bfv4096T32V1, ParamId::Bfv8192T32V1] {
        let params = param.params().unwrap();
        let mut r = rng(1);
        let (keys, pk) = keygen(param, 3, &mut r);
        let commit = KeygenMsg::Commit {
            from: 0,
            digest: [0; 32],
        }
        .to_bytes(&params)
        .len();
        let reveal = KeygenMsg::Reveal {
            from: 0,
            seed: [0; 32],
        }
        .to_bytes(&params)
        .len();
        let pk_bytes = pk.to_bytes().len();
        let sk_bytes = keys[0].to_bytes().len();
        let ct = pk.encrypt(&[1, 2, 3], &mut r).unwrap();
        let ct_bytes = ct.to_bytes().len();
        assert_eq!(ct_bytes, ciphertext_bytes(&params));
        assert_eq!(pk_bytes, HEADER_LEN + 32 + poly_bytes(&params));
        let share_bytes = HEADER_LEN + 2 + 32 + poly_bytes(&params);
        println!(
            "{param:?}: keygen commit {commit} B, reveal {reveal} B, public-key share {share_bytes} B, \
             collective public key {pk_bytes} B, secret key share {sk_bytes} B, ciphertext {ct_bytes} B"
        );
        for (name, shape) in shipped_shapes() {
            let w = random_weights(&shape, 100, &mut r);
            let layer = EncodedLayer::encode(param, &shape, &w).unwrap();
            let p = layer.packing().clone();
            let inputs = p
                .input
                .encrypt(&pk, &random_ring(shape.in_len(), &mut r), &mut r)
                .unwrap();
            let outs = layer
                .eval(&pk, &inputs, &random_ring(shape.out_len(), &mut r), &mut r)
                .unwrap();
            let cfg = |me| E2sConfig {
                param,
                n: 3,
                me,
                leader: 0,
                instance: 0,
            };
            let (_, req) = E2sLeader::new(cfg(0), &keys[0], &p.output, &outs).unwrap();
            let (sh, _) =
                e2s::follower_share(&cfg(1), &keys[1], &p.output, &req.msg, &mut r).unwrap();
            let req_b = req.msg.to_bytes(&params).len();
            assert_eq!(
                req_b,
                HEADER_LEN + 14 + p.num_out_cts() * compressed_poly_bytes(&params)
            );
            let sh_b = sh.msg.to_bytes(&params).len();
            assert_eq!(
                sh_b,
                HEADER_LEN + 14 + residues_bytes(&params, shape.out_len())
            );
            println!(
                "  {name}: {} input ct(s) = {} B per contributor, {} output ct(s); E2S request {req_b} B \
                 (to each of n-1 servers), E2S share {sh_b} B (from each of n-1 servers); \
                 uncompressed c1 would be {} B, unrestricted decryption shares {} B",
                p.num_in_cts(),
                p.num_in_cts() * ct_bytes,
                p.num_out_cts(),
                p.num_out_cts() * poly_bytes(&params),
                p.num_out_cts() * poly_bytes(&params)
            );
        }
    }
    // The user's bytes per inference (mnist-mlp, N = 4096 collective key, N = 2048 session key).
    let mut r = rng(2);
    let user = SessionKey::generate(ParamId::Bfv2048T32V1, &mut r).unwrap();
    let session_pk = user.public_key().to_bytes().len();
    let layout = Layout::contiguous(10, 2048);
    let ct = layout.encrypt(user.public_key(), &[0; 10], &mut r).unwrap();
    let result = ResultCiphertext::restrict(&ct[0], &layout)
        .unwrap()
        .to_bytes()
        .len();
    let enc_r1 = ciphertext_bytes(&ParamId::Bfv4096T32V1.params().unwrap());
    let masked = 784 * 4;
    let total = enc_r1 + session_pk + result + masked;
    println!(
        "user, mnist-mlp: Enc(r1) {enc_r1} B + session public key {session_pk} B + masked input {masked} B \
         + result ciphertext {result} B = {total} B"
    );
    assert!(total < 300_000);
}
