//! Collective key generation: round trips through encryption and single-party reference
//! decryption, agreement with `fhe::mbfv`, and protocol-violation errors.

mod mhe_common;

use fhe::bfv::{Encoding, Plaintext};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter};
use rand::Rng;
use seco_protocols::mhe::{
    CollectiveKeygen, KeygenConfig, KeygenMsg, MheError, ParamId, SecretKeyShare,
};

use mhe_common::{keygen, reference_key, rng};

fn random_plain(param: ParamId, rng: &mut impl Rng) -> Vec<u64> {
    let p = param.params().unwrap();
    (0..p.degree())
        .map(|_| rng.random::<u32>() as u64)
        .collect()
}

#[test]
fn keygen_then_encrypt_decrypt_n2_n3_n5() {
    for (n, seed) in [(2usize, 1u64), (3, 2), (5, 3)] {
        let mut r = rng(seed);
        let param = ParamId::Bfv4096T32V1;
        let (shares, pk) = keygen(param, n, &mut r);
        let sk = reference_key(&shares);
        let m = random_plain(param, &mut r);
        let ct = pk.encrypt(&m, &mut r).unwrap();
        let pt = sk.try_decrypt(&ct.to_fhe().unwrap()).unwrap();
        let got = Vec::<u64>::try_decode(&pt, Encoding::poly()).unwrap();
        assert_eq!(got, m, "n = {n}");
    }
}

#[test]
fn keygen_at_8192() {
    let mut r = rng(11);
    let param = ParamId::Bfv8192T32V1;
    let (shares, pk) = keygen(param, 3, &mut r);
    let sk = reference_key(&shares);
    let m = random_plain(param, &mut r);
    let ct = pk.encrypt(&m, &mut r).unwrap();
    let pt = sk.try_decrypt(&ct.to_fhe().unwrap()).unwrap();
    assert_eq!(Vec::<u64>::try_decode(&pt, Encoding::poly()).unwrap(), m);
}

/// fhe 0.1.1 accepts t = 2^32 with coefficient encoding, and its own public-key encryption
/// and plaintext-ciphertext product work with it (for small plaintext multipliers).
#[test]
fn fhe_accepts_power_of_two_t() {
    let mut r = rng(5);
    let param = ParamId::Bfv4096T32V1;
    let params = param.params().unwrap();
    assert_eq!(params.bfv.plaintext(), 1u64 << 32);
    let (shares, pk) = keygen(param, 2, &mut r);
    let sk = reference_key(&shares);
    let fpk = pk.to_fhe().unwrap();
    let m = random_plain(param, &mut r);
    let pt = Plaintext::try_encode(&m, Encoding::poly(), &params.bfv).unwrap();
    let ct = fpk.try_encrypt(&pt, &mut r).unwrap();
    // Multiply by the constant polynomial 3 (fhe lifts plaintexts without centering, so only
    // small non-negative multipliers keep the noise small: our encoders use their own signed
    // lift, see `mhe::linear`).
    let three = Plaintext::try_encode(&[3u64], Encoding::poly(), &params.bfv).unwrap();
    let prod = &ct * &three;
    let got = Vec::<u64>::try_decode(&sk.try_decrypt(&prod).unwrap(), Encoding::poly()).unwrap();
    let want: Vec<u64> = m.iter().map(|v| (v * 3) & 0xffff_ffff).collect();
    assert_eq!(got, want);
}

#[test]
fn secret_key_share_roundtrip_and_garbage() {
    let mut r = rng(9);
    let sk = SecretKeyShare::generate(ParamId::Bfv4096T32V1, 2, &mut r).unwrap();
    let bytes = sk.to_bytes();
    let back = SecretKeyShare::from_bytes(&bytes).unwrap();
    assert_eq!(back.party(), 2);
    assert_eq!(back.to_bytes().as_slice(), bytes.as_slice());
    assert!(matches!(
        SecretKeyShare::from_bytes(&bytes[..bytes.len() - 1]),
        Err(MheError::Truncated { .. })
    ));
    let mut bad = bytes.to_vec();
    bad[10] = 100; // |coefficient| > 20
    assert!(matches!(
        SecretKeyShare::from_bytes(&bad),
        Err(MheError::ValueOutOfRange { .. })
    ));
    let mut other = bytes.to_vec();
    other[4..6].copy_from_slice(&ParamId::Bfv8192T32V1.code().to_le_bytes());
    assert!(SecretKeyShare::from_bytes(&other).is_err());
}

fn cfg(n: usize, me: u16) -> KeygenConfig {
    KeygenConfig {
        param: ParamId::Bfv4096T32V1,
        n,
        me,
        context: [1u8; 32],
    }
}

#[test]
fn keygen_protocol_violations_are_typed_errors() {
    let mut r = rng(21);
    let mut a = CollectiveKeygen::new(cfg(3, 0), &mut r).unwrap();
    let mut b = CollectiveKeygen::new(cfg(3, 1), &mut r).unwrap();
    let commit_b = b.start().unwrap().remove(0).msg;
    // Unknown party, claimed-sender mismatch.
    assert!(matches!(
        a.handle(7, commit_b.clone()),
        Err(MheError::UnknownParty { .. })
    ));
    assert!(matches!(
        a.handle(2, commit_b.clone()),
        Err(MheError::SenderMismatch { .. })
    ));
    // A reveal before we committed is impossible for an honest peer.
    let reveal = KeygenMsg::Reveal {
        from: 1,
        seed: [0u8; 32],
    };
    assert!(matches!(
        a.handle(1, reveal),
        Err(MheError::WrongRound { .. })
    ));
    a.handle(1, commit_b.clone()).unwrap();
    assert!(matches!(
        a.handle(1, commit_b),
        Err(MheError::Duplicate { .. })
    ));
    a.start().unwrap();
    // A reveal that does not match the commitment.
    let bad_reveal = KeygenMsg::Reveal {
        from: 1,
        seed: [9u8; 32],
    };
    assert!(matches!(
        a.handle(1, bad_reveal),
        Err(MheError::CommitmentMismatch { .. })
    ));
    assert!(matches!(
        CollectiveKeygen::new(cfg(1, 0), &mut r),
        Err(MheError::PartyCount { .. })
    ));
    assert!(matches!(
        CollectiveKeygen::new(cfg(3, 3), &mut r),
        Err(MheError::UnknownParty { .. })
    ));
}

#[test]
fn keygen_message_bytes_checked() {
    let mut r = rng(22);
    let params = ParamId::Bfv4096T32V1.params().unwrap();
    let mut b = CollectiveKeygen::new(cfg(2, 1), &mut r).unwrap();
    let msg = b.start().unwrap().remove(0).msg;
    let bytes = msg.to_bytes(&params);
    assert_eq!(
        KeygenMsg::from_bytes(&bytes, ParamId::Bfv4096T32V1).unwrap(),
        msg
    );
    assert!(matches!(
        KeygenMsg::from_bytes(&bytes, ParamId::Bfv8192T32V1),
        Err(MheError::ParamMismatch { .. })
    ));
    assert!(matches!(
        KeygenMsg::from_bytes(&bytes[..20], ParamId::Bfv4096T32V1),
        Err(MheError::Truncated { .. })
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        KeygenMsg::from_bytes(&long, ParamId::Bfv4096T32V1),
        Err(MheError::TrailingBytes { .. })
    ));
}

/// `fhe::mbfv` as the reference for the multiparty key material: its (unflooded) decryption
/// shares decrypt our ciphertexts, and a public key aggregated from its `PublicKeyShare`s over
/// our secret key shares encrypts to our reference key.
#[test]
fn mbfv_reference_interoperates() {
    use fhe::mbfv::{AggregateIter, CommonRandomPoly, DecryptionShare, PublicKeyShare};
    use std::sync::Arc;
    let mut r = rng(31);
    let param = ParamId::Bfv4096T32V1;
    let params = param.params().unwrap();
    let (shares, pk) = keygen(param, 3, &mut r);
    let fhe_keys: Vec<fhe::bfv::SecretKey> = shares
        .iter()
        .map(|s| SecretKeyShare::sum_to_fhe(&[s]).unwrap())
        .collect();
    let m = random_plain(param, &mut r);
    let ct = Arc::new(pk.encrypt(&m, &mut r).unwrap().to_fhe().unwrap());
    let pt: Plaintext = fhe_keys
        .iter()
        .map(|k| DecryptionShare::new(k, &ct, &mut r))
        .aggregate()
        .unwrap();
    assert_eq!(Vec::<u64>::try_decode(&pt, Encoding::poly()).unwrap(), m);
    let crp = CommonRandomPoly::new(&params.bfv, &mut r).unwrap();
    let mbfv_pk: fhe::bfv::PublicKey = fhe_keys
        .iter()
        .map(|k| PublicKeyShare::new(k, crp.clone(), &mut r))
        .aggregate()
        .unwrap();
    let pt2 = Plaintext::try_encode(&m, Encoding::poly(), &params.bfv).unwrap();
    let ct2 = mbfv_pk.try_encrypt(&pt2, &mut r).unwrap();
    let got = reference_key(&shares).try_decrypt(&ct2).unwrap();
    assert_eq!(Vec::<u64>::try_decode(&got, Encoding::poly()).unwrap(), m);
}
