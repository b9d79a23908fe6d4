//! Every MHE decoder on garbage and on mutated valid messages: typed errors, never a panic.

mod mhe_common;

use proptest::prelude::*;
use seco_protocols::mhe::{
    Ciphertext, E2sRequest, E2sShare, KeygenMsg, ParamId, PublicKey, ResultCiphertext,
    SecretKeyShare,
};

fn decode_all(bytes: &[u8]) {
    for param in ParamId::ALL {
        let _ = KeygenMsg::from_bytes(bytes, param);
        let _ = PublicKey::from_bytes(bytes, param);
        let _ = Ciphertext::from_bytes(bytes, param);
        let _ = E2sRequest::from_bytes(bytes, param);
        let _ = E2sShare::from_bytes(bytes, param);
        let _ = ResultCiphertext::from_bytes(bytes, param);
    }
    let _ = SecretKeyShare::from_bytes(bytes);
}

/// Valid messages of every kind (small ones, at N = 2048 where possible).
fn samples() -> Vec<Vec<u8>> {
    use seco_protocols::mhe::{e2s, E2sConfig, E2sLeader, Layout, SessionKey};
    let mut r = mhe_common::rng(1);
    let user = SessionKey::generate(ParamId::Bfv2048T32V1, &mut r).unwrap();
    let layout = Layout::contiguous(4, 2048);
    let ct = layout
        .encrypt(user.public_key(), &[1, 2, 3, 4], &mut r)
        .unwrap();
    let rc = ResultCiphertext::restrict(&ct[0], &layout).unwrap();
    let (keys, pk) = mhe_common::keygen(ParamId::Bfv2048T32V1, 2, &mut r);
    let cfg = |me| E2sConfig {
        param: ParamId::Bfv2048T32V1,
        n: 2,
        me,
        leader: 0,
        instance: 3,
    };
    let cts = layout.encrypt(&pk, &[5, 6, 7, 8], &mut r).unwrap();
    let (_, req) = E2sLeader::new(cfg(0), &keys[0], &layout, &cts).unwrap();
    let (share, _) = e2s::follower_share(&cfg(1), &keys[1], &layout, &req.msg, &mut r).unwrap();
    let params = ParamId::Bfv2048T32V1.params().unwrap();
    vec![
        user.public_key().to_bytes(),
        ct[0].to_bytes(),
        rc.to_bytes(),
        keys[0].to_bytes().to_vec(),
        req.msg.to_bytes(&params),
        share.msg.to_bytes(&params),
        KeygenMsg::Commit {
            from: 1,
            digest: [3; 32],
        }
        .to_bytes(&params),
        KeygenMsg::Reveal {
            from: 0,
            seed: [4; 32],
        }
        .to_bytes(&params),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_header_then_garbage(kind in 0u8..12, param in 0usize..3, body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = vec![0x4d, 0x53, 1, kind];
        bytes.extend_from_slice(&ParamId::ALL[param].code().to_le_bytes());
        bytes.extend_from_slice(&body);
        decode_all(&bytes);
    }

    #[test]
    fn mutated_valid_messages_never_panic(which in 0usize..8, pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()) {
        thread_local!(static SAMPLES: Vec<Vec<u8>> = samples());
        SAMPLES.with(|s| {
            let mut m = s[which].clone();
            let i = pos.index(m.len());
            m[i] = val;
            decode_all(&m);
            let c = cut.index(m.len());
            decode_all(&m[..c]);
        });
    }
}

#[test]
fn samples_decode() {
    let s = samples();
    let p = ParamId::Bfv2048T32V1;
    PublicKey::from_bytes(&s[0], p).unwrap();
    Ciphertext::from_bytes(&s[1], p).unwrap();
    ResultCiphertext::from_bytes(&s[2], p).unwrap();
    SecretKeyShare::from_bytes(&s[3]).unwrap();
    E2sRequest::from_bytes(&s[4], p).unwrap();
    E2sShare::from_bytes(&s[5], p).unwrap();
    KeygenMsg::from_bytes(&s[6], p).unwrap();
    KeygenMsg::from_bytes(&s[7], p).unwrap();
}

/// A ciphertext of degree 2048 relabelled as a 4096 (or 8192) one: the body is a wrong-degree
/// polynomial and decoding fails with a typed error.
#[test]
fn wrong_degree_body_is_rejected() {
    let s = samples();
    let mut relabelled = s[1].clone();
    for param in [ParamId::Bfv4096T32V1, ParamId::Bfv8192T32V1] {
        relabelled[4..6].copy_from_slice(&param.code().to_le_bytes());
        assert!(matches!(
            Ciphertext::from_bytes(&relabelled, param),
            Err(seco_protocols::mhe::MheError::Truncated { .. })
        ));
    }
    // And a 4096 body declared as 2048 leaves trailing bytes.
    let mut r = mhe_common::rng(3);
    let (_, pk) = mhe_common::keygen(ParamId::Bfv4096T32V1, 2, &mut r);
    let mut big = pk.encrypt(&[1], &mut r).unwrap().to_bytes();
    big[4..6].copy_from_slice(&ParamId::Bfv2048T32V1.code().to_le_bytes());
    assert!(Ciphertext::from_bytes(&big, ParamId::Bfv2048T32V1).is_err());
}
