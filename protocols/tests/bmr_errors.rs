//! BMR under bad input: wrong round, party, session, duplicates, wrong lengths, corrupt
//! tables, unfinished state; and the serialized offline state round trip.

use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use seco_protocols::bmr::{
    driver, BmrConfig, BmrError, BmrMsg, Body, OfflineParty, OnlineParty, Prepared,
};
use seco_protocols::circuit::{bits, Builder, Circuit, ReluReshare};
use seco_protocols::gc::{Block, PackedBits};

fn small() -> (Circuit, BmrConfig) {
    let (mut b, w) = Builder::new(&[8, 8]);
    let s = b.add(&w[0], &w[1]);
    let c = b.finish(&[s]).unwrap();
    let owners = [vec![0; 8], vec![1; 8]].concat();
    let cfg = BmrConfig::new([9; 16], &c, 3, 2, owners, vec![1; 8]).unwrap();
    (c, cfg)
}

fn msg(from: usize, body: Body) -> BmrMsg {
    BmrMsg {
        session: [9; 16],
        from,
        body,
    }
}

#[test]
fn offline_rejects_wrong_round_party_session_and_duplicates() {
    let (c, cfg) = small();
    let mut r = ChaCha12Rng::seed_from_u64(1);
    let (mut p0, _) = OfflineParty::new(&mut r, cfg.clone(), &c, 0).unwrap();
    let (_, out1) = OfflineParty::new(&mut r, cfg.clone(), &c, 1).unwrap();
    let base_from_1 = out1.iter().find(|(to, _)| *to == 0).unwrap().1.clone();
    // Online message during the offline phase; a round-3 message in round 1.
    let e = p0
        .handle(
            1,
            msg(1, Body::MaskedInputs(PackedBits::from_bools(&[true; 8]))),
        )
        .unwrap_err();
    assert!(matches!(e, BmrError::WrongRound { .. }), "{e}");
    let e = p0
        .handle(1, msg(1, Body::Derand(PackedBits::from_bools(&[true; 7]))))
        .unwrap_err();
    assert!(matches!(e, BmrError::WrongRound { .. }), "{e}");
    // Wrong session, unknown party, self, forged sender.
    let mut other = base_from_1.clone();
    other.session = [0; 16];
    assert!(matches!(p0.handle(1, other), Err(BmrError::WrongSession)));
    assert!(matches!(
        p0.handle(7, base_from_1.clone()),
        Err(BmrError::UnknownParty { party: 7 })
    ));
    assert!(matches!(
        p0.handle(0, base_from_1.clone()),
        Err(BmrError::UnknownParty { party: 0 })
    ));
    assert!(matches!(
        p0.handle(2, base_from_1.clone()),
        Err(BmrError::WrongSender { .. })
    ));
    // Wrong lengths: too few base OT points, extension of the wrong size.
    if let Body::Base {
        ot_sender,
        ot_receiver,
    } = &base_from_1.body
    {
        let mut cut = ot_receiver.clone();
        cut.as_mut().expect("party 1 holds keys").r.pop();
        let bad = msg(
            1,
            Body::Base {
                ot_sender: ot_sender.clone(),
                ot_receiver: cut,
            },
        );
        assert!(matches!(p0.handle(1, bad), Err(BmrError::Length { .. })));
    }
    // The real message is accepted once, then it is a duplicate.
    assert!(p0.handle(1, base_from_1.clone()).unwrap().is_empty());
    assert!(matches!(
        p0.handle(1, base_from_1),
        Err(BmrError::Duplicate { .. })
    ));
    // Not finished.
    assert!(matches!(
        p0.into_prepared(),
        Err(BmrError::NotFinished { .. })
    ));
    // The evaluator (a garbler here) refuses a Final before it could have been sent.
    let (mut p2, _) = OfflineParty::new(&mut r, cfg, &c, 2).unwrap();
    let fin = msg(
        0,
        Body::Final {
            output_masks: PackedBits::default(),
            key_seed: None,
        },
    );
    assert!(matches!(
        p2.handle(0, fin),
        Err(BmrError::WrongRound { .. })
    ));
}

#[test]
fn online_rejects_bad_messages_and_corrupt_state() {
    let (c, cfg) = small();
    let mut r = ChaCha12Rng::seed_from_u64(2);
    let (prepared, _) = driver::run_offline(&mut r, &cfg, &c).unwrap();
    // Serialized and restored (as a bundle would be), then used.
    let restored: Vec<Prepared> = prepared
        .iter()
        .map(|p| {
            let mut buf = Vec::new();
            ciborium::into_writer(p, &mut buf).unwrap();
            assert_eq!(buf.len(), p.encoded_len());
            ciborium::from_reader(&buf[..]).unwrap()
        })
        .collect();
    assert_eq!(restored, prepared);
    // Wrong input length.
    assert!(matches!(
        OnlineParty::new(prepared[0].clone(), &c, &[true; 7]),
        Err(BmrError::Length { .. })
    ));
    // Another circuit than the one garbled.
    let (mut b, w) = Builder::new(&[8, 8]);
    let s = b.sub(&w[0], &w[1]);
    let other = b.finish(&[s]).unwrap();
    assert!(matches!(
        OnlineParty::new(prepared[0].clone(), &other, &[true; 8]),
        Err(BmrError::CircuitMismatch)
    ));
    // Truncated tables at the evaluator.
    let mut cut = prepared[2].clone();
    if let Some(t) = cut.tables.as_mut() {
        t.pop();
    }
    assert!(matches!(
        OnlineParty::new(cut, &c, &[]),
        Err(BmrError::Length { .. })
    ));
    // Messages in the wrong online round, keys of the wrong length, duplicates.
    let (mut ev, _) = OnlineParty::new(prepared[2].clone(), &c, &[]).unwrap();
    let e = ev
        .handle(0, msg(0, Body::Outputs(PackedBits::from_bools(&[true; 8]))))
        .unwrap_err();
    assert!(matches!(e, BmrError::WrongRound { .. }), "{e}");
    let e = ev
        .handle(0, msg(0, Body::BitOt(PackedBits::default())))
        .unwrap_err();
    assert!(matches!(e, BmrError::WrongRound { .. }), "{e}");
    assert!(matches!(
        ev.handle(0, msg(0, Body::InputKeys(vec![Block::ZERO; 3]))),
        Err(BmrError::Length { .. })
    ));
    let (mut g1, _) = OnlineParty::new(prepared[1].clone(), &c, &[false; 8]).unwrap();
    let mi = msg(0, Body::MaskedInputs(PackedBits::from_bools(&[true; 8])));
    g1.handle(0, mi.clone()).unwrap();
    assert!(matches!(g1.handle(0, mi), Err(BmrError::Duplicate { .. })));
    // Corrupted tables: the run completes with a typed error or a wrong value, never a panic.
    let mut bad = prepared.clone();
    if let Some(t) = bad[2].tables.as_mut() {
        for b in t.iter_mut() {
            *b = Block(b.0 ^ 0x5a5a);
        }
    }
    let inputs = vec![bits::u64_to_bits(3, 8), bits::u64_to_bits(4, 8), vec![]];
    match driver::run_online(bad, &c, &inputs) {
        Err(BmrError::Inconsistent { .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("corrupt tables went unnoticed"),
    }
    // And the genuine state still works.
    let (outs, _) = driver::run_online(restored, &c, &inputs).unwrap();
    assert_eq!(bits::bits_to_u64(&outs[1]), 7);
}

#[test]
fn garbage_bytes_do_not_decode() {
    for bytes in [
        &[][..],
        &[0xa3, 0x00][..],
        &[0x9f, 0xff, 0x00, 0x41][..],
        &[0xbf; 64][..],
        &[0x00; 64][..],
    ] {
        assert!(ciborium::from_reader::<BmrMsg, _>(bytes).is_err());
        assert!(ciborium::from_reader::<Prepared, _>(bytes).is_err());
        assert!(Prepared::from_record(bytes).is_err());
    }
}

/// The stored form (`Prepared::to_record`): every party's state round-trips, records stored
/// as plain CBOR before it still read, and every cut or altered head is a typed error.
#[test]
fn stored_records_round_trip_read_old_cbor_and_refuse_damage() {
    let (c, cfg) = small();
    let mut r = ChaCha12Rng::seed_from_u64(3);
    let (prepared, _) = driver::run_offline(&mut r, &cfg, &c).unwrap();
    for p in &prepared {
        let mut p = p.clone();
        let record = p.to_record();
        assert_eq!(record[0], seco_protocols::bmr::RECORD_MAGIC);
        assert_eq!(Prepared::from_record(&record).unwrap(), p);
        let mut old = Vec::new();
        ciborium::into_writer(&p, &mut old).unwrap();
        assert_eq!(Prepared::from_record(&old).unwrap(), p);
        // Every truncation, and a flipped tables flag or a header length beyond the record.
        for cut in 0..record.len() {
            assert!(
                Prepared::from_record(&record[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // A flipped tables flag: refused, or (no tables -> an empty table) a state that is
        // not the stored one, which `Prepared::validate` refuses for the party's role.
        let mut flag = record.clone();
        flag[1] ^= 1;
        if let Ok(q) = Prepared::from_record(&flag) {
            assert_ne!(q, p);
            assert!(p.tables.is_none() && q.tables == Some(Vec::new()));
        }
        let mut long = record.clone();
        long[2..10].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Prepared::from_record(&long).is_err());
    }
    let evaluator = prepared.iter().find(|p| p.tables.is_some()).unwrap();
    let tables = evaluator.tables.as_ref().unwrap().len();
    let record = evaluator.clone().to_record();
    let mut old = Vec::new();
    ciborium::into_writer(evaluator, &mut old).unwrap();
    println!(
        "evaluator's garbling: {tables} table blocks, record {} B, CBOR {} B",
        record.len(),
        old.len()
    );
}

#[test]
fn prepared_sizes_of_relu_reshare() {
    // The shape issue 5 persists: one ReLU layer of 16 elements, 3 servers.
    let spec = ReluReshare {
        parties: 3,
        elements: 16,
        k: 32,
        f: 12,
    };
    let c = spec.circuit().unwrap();
    let cfg = BmrConfig::new(
        [1; 16],
        &c,
        3,
        0,
        spec.input_owners(),
        vec![2; c.num_outputs()],
    )
    .unwrap();
    let mut r = ChaCha12Rng::seed_from_u64(3);
    let (prepared, traffic) = driver::run_offline(&mut r, &cfg, &c).unwrap();
    let and = c.counts().and as usize;
    println!(
        "ReLU-reshare 16 x k=32: {and} AND, offline {} B ({:.0} B/AND/party), prepared sizes {:?}",
        traffic.total(),
        traffic.total() as f64 / and as f64 / 3.0,
        prepared.iter().map(|p| p.encoded_len()).collect::<Vec<_>>()
    );
    // The evaluator (party 0) holds no keys: its tables have one key slot per other garbler.
    assert!(prepared[0].encoded_len() > 4 * 2 * 16 * and);
    assert!(prepared[0].encoded_len() < 4 * 3 * 16 * and);
}
