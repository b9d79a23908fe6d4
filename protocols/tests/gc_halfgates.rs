//! Two-party half-gates: known answers, random circuits against plain evaluation, bad input.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use seco_protocols::circuit::{bits, bristol, Builder, Circuit, Program};
use seco_protocols::gc::protocol::Side;
use seco_protocols::gc::{
    self, run_two_party, Block, GcError, HgEvaluator, HgGarbler, HgMsg, PackedBits,
};

fn load(name: &str) -> Circuit {
    let text = std::fs::read_to_string(format!(
        "{}/testdata/circuits/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    bristol::read(&text, None).unwrap()
}

fn owners(c: &Circuit) -> Vec<Side> {
    let g = c.input_groups();
    (0..g.len())
        .flat_map(|i| {
            std::iter::repeat_n(
                if i % 2 == 0 {
                    Side::Garbler
                } else {
                    Side::Evaluator
                },
                g[i] as usize,
            )
        })
        .collect()
}

#[test]
fn aes128_fips197_two_party() {
    let c = load("aes_128.txt");
    let key = bits::hex_to_bits("000102030405060708090a0b0c0d0e0f", 128).unwrap();
    let pt = bits::hex_to_bits("00112233445566778899aabbccddeeff", 128).unwrap();
    let mut r = ChaCha12Rng::seed_from_u64(1);
    let (out, bytes) = run_two_party(&mut r, &c, &owners(&c), &key, &pt).unwrap();
    assert_eq!(bits::bits_to_hex(&out), "69c4e0d86a7b0430d8cdb78070b4c55a");
    // 32 bytes per AND dominate the garbler's traffic.
    assert!(
        bytes[0] >= 6400 * 32 && bytes[0] < 6400 * 32 + 20_000,
        "{bytes:?}"
    );
}

#[test]
fn adder32_two_party() {
    let c = load("adder_32bit.txt");
    let mut r = ChaCha12Rng::seed_from_u64(2);
    for _ in 0..4 {
        let (a, b): (u32, u32) = (r.random(), r.random());
        let (out, _) = run_two_party(
            &mut r,
            &c,
            &owners(&c),
            &bits::u64_to_bits(a.into(), 32),
            &bits::u64_to_bits(b.into(), 32),
        )
        .unwrap();
        assert_eq!(bits::bits_to_u64(&out), u64::from(a) + u64::from(b));
    }
}

/// A random circuit with all gate kinds, constants and copies.
fn random_circuit(r: &mut ChaCha12Rng, n_in: u32, n_gates: usize) -> Circuit {
    let (mut b, words) = Builder::new(&[n_in]);
    let mut pool: Vec<_> = words[0].clone();
    for _ in 0..n_gates {
        let x = pool[r.random_range(0..pool.len())];
        let y = pool[r.random_range(0..pool.len())];
        let z = match r.random_range(0..5) {
            0 | 1 => b.and(x, y),
            2 => b.xor(x, y),
            3 => b.not(x),
            _ => b.or(x, y),
        };
        pool.push(z);
    }
    let outs: Vec<_> = pool.iter().rev().take(16).copied().collect();
    b.finish(&[outs]).unwrap()
}

#[test]
fn garble_evaluate_matches_plain_on_random_circuits() {
    let mut r = ChaCha12Rng::seed_from_u64(3);
    for _ in 0..20 {
        let c = random_circuit(&mut r, 12, 200);
        let p = Program::compile(&c).unwrap();
        let delta = Block(Block::random(&mut r).0 | 1);
        let zero: Vec<Block> = (0..12).map(|_| Block::random(&mut r)).collect();
        let g = gc::garble(&p, delta, &zero).unwrap();
        assert_eq!(g.tables.len(), 2 * p.num_and);
        let x: Vec<bool> = (0..12).map(|_| r.random()).collect();
        let active: Vec<Block> = zero
            .iter()
            .zip(&x)
            .map(|(&l, &v)| l ^ delta.select(v))
            .collect();
        let out = gc::evaluate(&p, &g.tables, &active).unwrap();
        assert_eq!(
            gc::decode(&out, &g.decode_bits()).unwrap(),
            c.eval_plain(&x).unwrap()
        );
        // The compacted program (wire slots reused) garbles to the same tables and evaluates
        // to the same labels, with fewer wires.
        let pc = p.compact();
        assert!(pc.num_wires <= p.num_wires);
        assert_eq!(pc.eval_plain(&x).unwrap(), c.eval_plain(&x).unwrap());
        let gc2 = gc::garble(&pc, delta, &zero).unwrap();
        assert_eq!(gc2.tables, g.tables);
        assert_eq!(gc::evaluate(&pc, &g.tables, &active).unwrap(), out);
    }
}

#[test]
fn wrong_lengths_and_wrong_rounds_are_typed_errors() {
    let c = load("adder_32bit.txt");
    let p = Program::compile(&c).unwrap();
    let labels = vec![Block::ZERO; 64];
    let tables = vec![Block::ZERO; 2 * p.num_and - 1];
    assert!(matches!(
        gc::evaluate(&p, &tables, &labels),
        Err(GcError::Length { .. })
    ));
    let tables = vec![Block::ZERO; 2 * p.num_and];
    assert!(matches!(
        gc::evaluate(&p, &tables, &labels[1..]),
        Err(GcError::Length { .. })
    ));
    assert!(matches!(
        gc::garble(&p, Block(2), &labels),
        Err(GcError::BadDelta)
    ));
    assert!(matches!(
        gc::decode(&labels, &PackedBits::from_bools(&[true])),
        Err(GcError::Length { .. })
    ));

    let mut r = ChaCha12Rng::seed_from_u64(4);
    let own = owners(&c);
    let (mut g, to_e) = HgGarbler::new(&mut r, [0; 16], &c, &own, &[false; 32]).unwrap();
    let (mut e, to_g) = HgEvaluator::new(&mut r, [0; 16], &c, &own, &[true; 32]).unwrap();
    // Wrong round: an output before anything else, a garbled circuit before the OTs.
    assert!(matches!(
        g.handle(HgMsg::Output(PackedBits::from_bools(&[true; 33]))),
        Err(GcError::UnexpectedMessage { .. })
    ));
    let bogus = HgMsg::Garbled {
        tables: vec![],
        garbler_labels: vec![],
        decode: PackedBits::default(),
    };
    assert!(matches!(
        e.handle(bogus.clone()),
        Err(GcError::UnexpectedMessage { .. })
    ));
    // Correct flow still works after the rejected messages.
    let to_g2 = e.handle(to_e[0].clone()).unwrap();
    assert!(g.handle(to_g[0].clone()).unwrap().is_empty());
    let garbled = g.handle(to_g2[0].clone()).unwrap();
    // Truncated tables: typed error, state kept, then the real message succeeds.
    if let HgMsg::Garbled {
        tables,
        garbler_labels,
        decode,
    } = &garbled[0]
    {
        let cut = HgMsg::Garbled {
            tables: tables[1..].to_vec(),
            garbler_labels: garbler_labels.clone(),
            decode: decode.clone(),
        };
        assert!(matches!(e.handle(cut), Err(GcError::Length { .. })));
        let few = HgMsg::Garbled {
            tables: tables.clone(),
            garbler_labels: garbler_labels[1..].to_vec(),
            decode: decode.clone(),
        };
        assert!(matches!(e.handle(few), Err(GcError::Length { .. })));
    }
    let out = e.handle(garbled[0].clone()).unwrap();
    assert_eq!(bits::bits_to_u64(e.output().unwrap()), 0xffff_ffff);
    g.handle(out[0].clone()).unwrap();
    assert_eq!(g.output(), e.output());
    // Garbage bytes do not decode into a message.
    let junk: Result<HgMsg, _> = ciborium::from_reader(&[0x82u8, 0x01, 0xff, 0x00][..]);
    assert!(junk.is_err());
}
