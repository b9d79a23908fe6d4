//! Shares-to-encryption and result delivery to the user's session key.

mod mhe_common;

use fhe::bfv::Encoding;
use fhe_traits::{FheDecoder, FheDecrypter};
use seco_protocols::mhe::s2e::result_headroom_bits;
use seco_protocols::mhe::{
    Ciphertext, Layout, MheError, ParamId, ResultCiphertext, S2eAggregator, SessionKey,
};

use mhe_common::*;

fn sum(shares: &[Vec<u64>]) -> Vec<u64> {
    let mut acc = vec![0u64; shares[0].len()];
    for s in shares {
        for (a, v) in acc.iter_mut().zip(s) {
            *a = a.wrapping_add(*v) & MASK32;
        }
    }
    acc
}

#[test]
fn result_delivery_n2_n3_n5() {
    for n in [2usize, 3, 5] {
        let mut r = rng(40 + n as u64);
        let user = SessionKey::generate(ParamId::Bfv2048T32V1, &mut r).unwrap();
        // The user's public key travels to the gateway and on to the servers.
        let pk_bytes = user.public_key().to_bytes();
        let pk =
            seco_protocols::mhe::PublicKey::from_bytes(&pk_bytes, ParamId::Bfv2048T32V1).unwrap();
        let layout = Layout::contiguous(10, 2048);
        let shares: Vec<Vec<u64>> = (0..n).map(|_| random_ring(10, &mut r)).collect();
        let mut agg = S2eAggregator::new(ParamId::Bfv2048T32V1, n, 1);
        let mut total = None;
        for (i, sh) in shares.iter().enumerate() {
            let cts = layout.encrypt(&pk, sh, &mut r).unwrap();
            let cts: Vec<Ciphertext> = cts
                .iter()
                .map(|c| Ciphertext::from_bytes(&c.to_bytes(), ParamId::Bfv2048T32V1).unwrap())
                .collect();
            total = agg.handle(i as u16, &cts).unwrap();
        }
        let total = total.unwrap();
        let rc = ResultCiphertext::restrict(&total[0], &layout).unwrap();
        let bytes = rc.to_bytes();
        let rc = ResultCiphertext::from_bytes(&bytes, ParamId::Bfv2048T32V1).unwrap();
        assert_eq!(user.decrypt(&rc).unwrap(), sum(&shares));
        println!(
            "n={n}: user public key {} B, result ciphertext {} B, headroom {:.1} bits",
            pk_bytes.len(),
            bytes.len(),
            result_headroom_bits(&ParamId::Bfv2048T32V1.params().unwrap(), n)
        );
        assert!(result_headroom_bits(&ParamId::Bfv2048T32V1.params().unwrap(), n) > 4.0);
    }
}

#[test]
fn s2e_to_collective_key() {
    let mut r = rng(50);
    let param = ParamId::Bfv4096T32V1;
    let (keys, pk) = keygen(param, 3, &mut r);
    let layout = Layout::contiguous(300, 4096);
    let shares: Vec<Vec<u64>> = (0..3).map(|_| random_ring(300, &mut r)).collect();
    let mut agg = S2eAggregator::new(param, 3, 1);
    let mut total = None;
    for (i, sh) in shares.iter().enumerate() {
        total = agg
            .handle(i as u16, &layout.encrypt(&pk, sh, &mut r).unwrap())
            .unwrap();
    }
    let ct = &total.unwrap()[0];
    let sk = reference_key(&keys);
    let dec = Vec::<u64>::try_decode(
        &sk.try_decrypt(&ct.to_fhe().unwrap()).unwrap(),
        Encoding::poly(),
    )
    .unwrap();
    assert_eq!(layout.unpack(&[dec]).unwrap(), sum(&shares));
}

#[test]
fn s2e_errors() {
    let mut r = rng(51);
    let user = SessionKey::generate(ParamId::Bfv2048T32V1, &mut r).unwrap();
    let layout = Layout::contiguous(10, 2048);
    let cts = layout
        .encrypt(user.public_key(), &[0u64; 10], &mut r)
        .unwrap();
    let mut agg = S2eAggregator::new(ParamId::Bfv2048T32V1, 2, 1);
    assert!(matches!(
        agg.handle(5, &cts),
        Err(MheError::UnknownParty { .. })
    ));
    assert!(agg.handle(0, &cts).unwrap().is_none());
    assert!(matches!(
        agg.handle(0, &cts),
        Err(MheError::Duplicate { .. })
    ));
    let mut agg4096 = S2eAggregator::new(ParamId::Bfv4096T32V1, 2, 1);
    assert!(matches!(
        agg4096.handle(0, &cts),
        Err(MheError::ParamMismatch { .. })
    ));
    let rc = ResultCiphertext::restrict(&cts[0], &layout).unwrap();
    let bytes = rc.to_bytes();
    assert!(matches!(
        ResultCiphertext::from_bytes(&bytes, ParamId::Bfv4096T32V1),
        Err(MheError::ParamMismatch { .. })
    ));
    assert!(matches!(
        ResultCiphertext::from_bytes(&bytes[..bytes.len() - 1], ParamId::Bfv2048T32V1),
        Err(MheError::Truncated { .. })
    ));
    let mut bad = bytes.clone();
    bad[10..14].copy_from_slice(&5000u32.to_le_bytes()); // first position >= N
    assert!(matches!(
        ResultCiphertext::from_bytes(&bad, ParamId::Bfv2048T32V1),
        Err(MheError::ValueOutOfRange { .. })
    ));
    // A layout that spans two ciphertexts cannot be a result.
    assert!(ResultCiphertext::restrict(&cts[0], &Layout::contiguous(3000, 2048)).is_err());
}
