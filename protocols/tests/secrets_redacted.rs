//! Issue 14: types holding secrets print `[redacted]` in `Debug`, never their contents, and
//! their secret parts can be wiped.

use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use seco_protocols::circuit::{Builder, Program};
use seco_protocols::gc::{self, Block, PackedBits};
use seco_protocols::mhe::{ParamId, SecretKeyShare, SessionKey};
use seco_protocols::seco::bundle::{ServerBundle, StageMaterial, UserBundle, BUNDLE_VERSION};
use seco_protocols::seco::record::{SessionRecord, RECORD_VERSION};
use seco_protocols::seco::{BundleId, KeyMaterial, Persist, SessionId};
use zeroize::Zeroize;

const SECRET: u64 = 987_654_321;

fn assert_redacted(debug: &str, secrets: &[String]) {
    assert!(debug.contains("[redacted]"), "{debug}");
    for s in secrets {
        assert!(!debug.contains(s.as_str()), "{debug} shows {s}");
    }
}

#[test]
fn key_shares_and_session_keys_print_redacted() {
    let mut rng = ChaCha12Rng::seed_from_u64(1);
    let param = ParamId::Bfv2048T32V1;
    let sk = SecretKeyShare::generate(param, 3, &mut rng).unwrap();
    assert_eq!(
        format!("{sk:?}"),
        "SecretKeyShare { param: Bfv2048T32V1, party: 3, s: [redacted] }"
    );
    let session = SessionKey::generate(param, &mut rng).unwrap();
    assert_eq!(
        format!("{session:?}"),
        "SessionKey { param: Bfv2048T32V1, sk: [redacted] }"
    );
    let keys = KeyMaterial::new(sk, session.public_key().clone());
    let debug = format!("{keys:#?}");
    assert_redacted(&debug, &[]);
    // The share's coefficients are small: a printed vector would show a run of them.
    assert!(debug.len() < 300, "{debug}");
    let persist = Persist::Keys(keys.to_bytes().to_vec());
    assert_eq!(format!("{persist:?}"), {
        let n = keys.to_bytes().len();
        format!("Keys({n} bytes [redacted])")
    });
}

#[test]
fn bundles_and_records_print_no_masks_or_offset() {
    let (session, bundle) = (SessionId([1; 16]), BundleId([2; 16]));
    let stage = StageMaterial {
        u: vec![SECRET, 1],
        s: Some(vec![SECRET + 1]),
        r_next: Some(vec![SECRET + 2]),
        chunks: 4,
    };
    assert_eq!(
        format!("{stage:?}"),
        "StageMaterial { len: 2, .. [redacted] }"
    );
    let server = ServerBundle {
        version: BUNDLE_VERSION,
        session,
        bundle,
        party: 1,
        stages: vec![stage],
        result_share: None,
    };
    let user = UserBundle {
        version: BUNDLE_VERSION,
        session,
        bundle,
        r1: vec![SECRET; 3],
    };
    let secrets: Vec<String> = (0..3).map(|i| (SECRET + i).to_string()).collect();
    assert_redacted(&format!("{server:?}"), &secrets);
    assert_redacted(&format!("{user:#?}"), &secrets);
    let stored = Persist::Bundle {
        bundle,
        bytes: server.to_bytes(),
    };
    assert_redacted(&format!("{stored:?}"), &secrets);

    let offset = Block(0xabcd_ef01_2345_6789_abcd_ef01_2345_6789);
    let record = SessionRecord {
        version: RECORD_VERSION,
        session,
        model: "tiny".into(),
        user_pk: serde_bytes::ByteBuf::from(vec![5; 8]),
        key_id: [1; 32],
        epoch: 2,
        output: 0,
        offset: Some(serde_bytes::ByteBuf::from(offset.to_bytes().to_vec())),
        part: Some([3; 32]),
        layout: 1,
    };
    let debug = format!("{record:?}");
    let bytes = offset.to_bytes();
    assert_redacted(
        &debug,
        &[
            format!("{:032x}", offset.0),
            format!("{:?}", &bytes[..4]),
            bytes[0].to_string(),
        ],
    );
    assert!(debug.contains("offset: Some([redacted])"), "{debug}");
    assert!(debug.contains("epoch: 2"), "{debug}");
}

#[test]
fn garblings_print_no_labels() {
    let mut rng = ChaCha12Rng::seed_from_u64(2);
    let (mut b, words) = Builder::new(&[2]);
    let z = b.and(words[0][0], words[0][1]);
    let program = Program::compile(&b.finish(&[vec![z]]).unwrap()).unwrap();
    let delta = Block(Block::random(&mut rng).0 | 1);
    let zero: Vec<Block> = (0..2).map(|_| Block::random(&mut rng)).collect();
    let g = gc::garble(&program, delta, &zero).unwrap();
    let label = g.output_zero[0];
    assert_redacted(
        &format!("{g:?}"),
        &[format!("{:032x}", label.0), label.0.to_string()],
    );
    assert_eq!(
        format!("{g:?}"),
        "Garbling { tables: 2, output_zero: [redacted] }"
    );
}

#[test]
fn secret_parts_zeroize() {
    let mut offset = Block(0x1234_5678_9abc_def0_1122_3344_5566_7788);
    offset.zeroize();
    assert_eq!(offset, Block::ZERO);

    let mut masks = PackedBits::from_bools(&[true, false, true, true]);
    masks.zeroize();
    assert_eq!(masks.len(), 0);

    let mut labels = vec![Block(7), Block(9)];
    labels.zeroize();
    assert!(labels.is_empty());
}
