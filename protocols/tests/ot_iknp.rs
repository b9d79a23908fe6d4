//! Base OT and IKNP extension: the receiver gets exactly the chosen messages.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use seco_protocols::gc::Block;
use seco_protocols::ot::{
    chosen_decrypt, chosen_encrypt, rot_receiver, rot_sender, transpose::transpose128,
    BaseOtReceiver, BaseOtSender, BaseSenderMsg, ExtendMsg, IknpReceiverSetup, IknpSender,
    IknpSenderSetup, OtError,
};

fn rng(seed: u64) -> ChaCha12Rng {
    ChaCha12Rng::seed_from_u64(seed)
}

#[test]
fn base_ot_receiver_gets_chosen_messages() {
    let mut r = rng(1);
    let choices: Vec<bool> = (0..64).map(|_| r.random()).collect();
    let (s, smsg) = BaseOtSender::new(&mut r, [1; 16], choices.len());
    let (rc, rmsg) = BaseOtReceiver::new(&mut r, [1; 16], &choices);
    let keys = s.finish(&rmsg).unwrap();
    let got = rc.finish(&smsg).unwrap();
    for ((k, &c), g) in keys.iter().zip(&choices).zip(&got) {
        assert_eq!(*g, k[usize::from(c)]);
        assert_ne!(*g, k[usize::from(!c)]);
    }
    // Chosen messages on top of the random OTs.
    let msgs: Vec<[Block; 2]> = (0..64)
        .map(|_| [Block::random(&mut r), Block::random(&mut r)])
        .collect();
    let cts = chosen_encrypt(&keys, &msgs).unwrap();
    let out = chosen_decrypt(&got, &choices, &cts).unwrap();
    for ((m, &c), o) in msgs.iter().zip(&choices).zip(&out) {
        assert_eq!(*o, m[usize::from(c)]);
    }
}

#[test]
fn base_ot_rejects_bad_points_and_lengths() {
    let mut r = rng(2);
    let (s, _) = BaseOtSender::new(&mut r, [0; 16], 4);
    let (rc, rmsg) = BaseOtReceiver::new(&mut r, [0; 16], &[true, false, true]);
    assert!(matches!(s.finish(&rmsg), Err(OtError::Length { .. })));
    let bad = BaseSenderMsg { a: [0xff; 32] };
    assert!(matches!(rc.finish(&bad), Err(OtError::BadPoint { .. })));
    let (_, rmsg) = BaseOtReceiver::new(&mut r, [0; 16], &[true]);
    let identity = BaseSenderMsg { a: [0; 32] };
    let (rc, _) = BaseOtReceiver::new(&mut r, [0; 16], &[true]);
    assert!(matches!(
        rc.finish(&identity),
        Err(OtError::BadPoint { .. })
    ));
    let mut garbage = rmsg.clone();
    garbage.r[0].0 = [0xee; 32];
    let (s, _) = BaseOtSender::new(&mut r, [0; 16], 1);
    assert!(matches!(s.finish(&garbage), Err(OtError::BadPoint { .. })));
}

fn setup(r: &mut ChaCha12Rng, delta: Block) -> (IknpSender, seco_protocols::ot::IknpReceiver) {
    let (ss, m1) = IknpSenderSetup::new(r, [9; 16], delta);
    let (rs, m2) = IknpReceiverSetup::new(r, [9; 16]);
    (ss.finish(&m2).unwrap(), rs.finish(&m1).unwrap())
}

#[test]
fn iknp_correlated_random_and_chosen() {
    let mut r = rng(3);
    let delta = Block::random(&mut r);
    let (mut s, mut rc) = setup(&mut r, delta);
    // Several extensions from one setup, of sizes that are not multiples of 128.
    for n in [1usize, 127, 128, 1000, 4099] {
        let choices: Vec<bool> = (0..n).map(|_| r.random()).collect();
        let (ext, t, first_r) = rc.extend(&choices);
        let (q, first_s) = s.extend(&ext, n).unwrap();
        assert_eq!(first_r, first_s);
        for i in 0..n {
            assert_eq!(t[i], q[i] ^ delta.select(choices[i]), "COT {i}");
        }
        let keys = rot_sender(&q, delta, first_s);
        let got = rot_receiver(&t, first_r);
        for i in 0..n {
            assert_eq!(got[i], keys[i][usize::from(choices[i])]);
            assert_ne!(got[i], keys[i][usize::from(!choices[i])]);
        }
        let msgs: Vec<[Block; 2]> = (0..n)
            .map(|_| [Block::random(&mut r), Block::random(&mut r)])
            .collect();
        let out = chosen_decrypt(&got, &choices, &chosen_encrypt(&keys, &msgs).unwrap()).unwrap();
        for i in 0..n {
            assert_eq!(out[i], msgs[i][usize::from(choices[i])]);
        }
    }
}

#[test]
fn iknp_rejects_wrong_sizes() {
    let mut r = rng(4);
    let d = Block::random(&mut r);
    let (mut s, mut rc) = setup(&mut r, d);
    let (ext, _, _) = rc.extend(&[true; 300]);
    assert!(matches!(s.extend(&ext, 299), Err(OtError::Length { .. })));
    let short = ExtendMsg {
        count: 300,
        u: ext.u[..ext.u.len() - 1].to_vec(),
    };
    assert!(matches!(s.extend(&short, 300), Err(OtError::Length { .. })));
    let decoded: Result<ExtendMsg, _> = ciborium::from_reader(&[0xa2u8, 0x65][..]);
    assert!(decoded.is_err());
}

#[test]
fn transpose_matches_naive() {
    let mut r = rng(5);
    let mut a = [0u128; 128];
    for x in a.iter_mut() {
        *x = r.random();
    }
    let orig = a;
    transpose128(&mut a);
    for (i, row) in a.iter().enumerate() {
        for (j, col) in orig.iter().enumerate() {
            assert_eq!((row >> j) & 1, (col >> i) & 1);
        }
    }
}
