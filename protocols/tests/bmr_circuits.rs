//! BMR on the reference circuits with 2, 3 and 4 garblers, evaluator inside or outside.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use seco_protocols::bmr::{driver, owners_round_robin, BmrConfig};
use seco_protocols::circuit::{bits, bristol, Circuit};

fn load(name: &str) -> Circuit {
    let text = std::fs::read_to_string(format!(
        "{}/testdata/circuits/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    bristol::read(&text, None).unwrap()
}

fn config(c: &Circuit, n: usize, evaluator: usize, out_owner: usize) -> BmrConfig {
    let owners = owners_round_robin(c.input_groups(), n);
    BmrConfig::new(
        [3; 16],
        c,
        n,
        evaluator,
        owners,
        vec![out_owner; c.num_outputs()],
    )
    .unwrap()
}

/// FIPS-197 appendix C.1: the key, then the plaintext.
fn fips197_inputs() -> Vec<bool> {
    let key = bits::hex_to_bits("000102030405060708090a0b0c0d0e0f", 128).unwrap();
    let pt = bits::hex_to_bits("00112233445566778899aabbccddeeff", 128).unwrap();
    key.iter().chain(&pt).copied().collect()
}

#[test]
fn adder32_bmr_2_3_4_parties() {
    let c = load("adder_32bit.txt");
    let mut r = ChaCha12Rng::seed_from_u64(1);
    for (n, evaluator, owner) in [
        (2, 0, 1),
        (2, 1, 1),
        (3, 2, 0),
        (3, 3, 1),
        (4, 1, 3),
        (4, 4, 4),
    ] {
        let cfg = config(&c, n, evaluator, owner);
        let (a, b): (u32, u32) = (r.random(), r.random());
        let mut flat = bits::u64_to_bits(a.into(), 32);
        flat.extend(bits::u64_to_bits(b.into(), 32));
        let (out, off, on) =
            driver::run(&mut r, &cfg, &c, &driver::split_inputs(&cfg, &flat)).unwrap();
        assert_eq!(
            bits::bits_to_u64(&out),
            u64::from(a) + u64::from(b),
            "n={n} evaluator={evaluator}"
        );
        assert!(off.total() > 0 && on.total() > 0);
        assert_eq!(on.rounds, if owner == evaluator { 2 } else { 3 });
    }
}

#[test]
fn aes128_bmr_fips197_three_and_four_parties() {
    let c = load("aes_128.txt");
    let flat = fips197_inputs();
    let mut r = ChaCha12Rng::seed_from_u64(2);
    for (n, evaluator) in [(2, 1), (3, 2), (4, 3)] {
        let cfg = config(&c, n, evaluator, 0);
        let (out, off, _) =
            driver::run(&mut r, &cfg, &c, &driver::split_inputs(&cfg, &flat)).unwrap();
        assert_eq!(
            bits::bits_to_hex(&out),
            "69c4e0d86a7b0430d8cdb78070b4c55a",
            "n={n}"
        );
        let per_and = off.total() as f64 / n as f64 / 6400.0;
        println!(
            "AES-128, {n} garblers: offline {} bytes, {per_and:.0} B per AND per party",
            off.total()
        );
    }
}

/// The table chain may start at any key slot (`BmrConfig::chain_start`): the output is the
/// same, and the keyed garbler in the chain's first place is the one that receives no table
/// part (only OT columns and bits), so rotating the start moves the load of the others.
#[test]
fn the_table_chain_starts_at_any_slot_and_its_first_place_receives_the_least() {
    let c = load("aes_128.txt");
    let flat = fips197_inputs();
    let mut r = ChaCha12Rng::seed_from_u64(4);
    for (n, evaluator) in [(3, 2), (3, 0), (4, 1), (4, 4)] {
        let base = config(&c, n, evaluator, 0);
        let k = base.num_keyed();
        let mut first_places = Vec::new();
        for start in 0..k + 1 {
            let cfg = base.clone().with_chain_start(start);
            assert_eq!(cfg.chain_start, start % k);
            let chain = cfg.chain();
            assert_eq!(chain.len(), k);
            assert_eq!(cfg.chain_prev(chain[0]), None);
            assert_eq!(cfg.chain_next(chain[k - 1]), evaluator);
            assert_eq!(cfg.chain_prev(evaluator), Some(chain[k - 1]));
            let (out, off, _) =
                driver::run(&mut r, &cfg, &c, &driver::split_inputs(&cfg, &flat)).unwrap();
            assert_eq!(
                bits::bits_to_hex(&out),
                "69c4e0d86a7b0430d8cdb78070b4c55a",
                "n={n} evaluator={evaluator} start={start}"
            );
            let first = off.bytes_received[chain[0]];
            for &p in &chain[1..] {
                assert!(
                    off.bytes_received[p] > first,
                    "n={n} start={start}: {off:?}"
                );
            }
            first_places.push(chain[0]);
            println!(
                "AES-128, {n} garblers, evaluator {evaluator}, chain {chain:?}: received {:?}",
                off.bytes_received
            );
        }
        first_places.sort_unstable();
        first_places.dedup();
        assert_eq!(
            first_places.len(),
            k,
            "every keyed garbler takes the first place"
        );
    }
}

#[test]
fn a_chain_start_beyond_the_keyed_garblers_is_refused() {
    let c = load("adder_32bit.txt");
    let mut cfg = config(&c, 3, 2, 0);
    cfg.chain_start = 2;
    assert!(cfg.check(&c).is_err());
    cfg.chain_start = 1;
    assert!(cfg.check(&c).is_ok());
}

/// `BmrConfig::for_program` (the schedule's constructor, which does not hash the circuit
/// again) gives the same configuration as `BmrConfig::new` and refuses what it refuses.
#[test]
fn a_config_for_a_program_equals_the_one_for_its_circuit() {
    use seco_protocols::circuit::Program;
    let c = load("adder_32bit.txt");
    let p = Program::compile(&c).unwrap();
    let owners = owners_round_robin(c.input_groups(), 3);
    let outs = vec![0; c.num_outputs()];
    let a = BmrConfig::new([3; 16], &c, 3, 2, owners.clone(), outs.clone()).unwrap();
    let b = BmrConfig::for_program([3; 16], &p, 3, 2, owners.clone(), outs.clone()).unwrap();
    assert_eq!(a, b);
    assert!(BmrConfig::for_program([3; 16], &p, 3, 5, owners.clone(), outs).is_err());
    assert!(BmrConfig::for_program([3; 16], &p, 3, 2, owners, vec![0; 3]).is_err());
}
