//! Word gadgets: AND counts and plain integer semantics (plain evaluation and BMR, 3 parties).

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use seco_protocols::bmr::{driver, BmrConfig};
use seco_protocols::circuit::reshare::{mask, relu, signed, trunc};
use seco_protocols::circuit::{bits, Builder, Circuit};

/// AND count of one gadget on fresh k-bit inputs.
fn count(
    k: u32,
    words: usize,
    f: impl FnOnce(&mut Builder, &[Vec<seco_protocols::circuit::Bit>]),
) -> u64 {
    let (mut b, w) = Builder::new(&vec![k; words]);
    f(&mut b, &w);
    b.and_count()
}

#[test]
fn and_counts_near_textbook_minimum() {
    let k = 32;
    let table = [
        ("add", count(k, 2, |b, w| drop(b.add(&w[0], &w[1]))), 31),
        ("sub", count(k, 2, |b, w| drop(b.sub(&w[0], &w[1]))), 31),
        ("neg", count(k, 1, |b, w| drop(b.neg(&w[0]))), 30),
        (
            "lt_signed",
            count(k, 2, |b, w| {
                let _ = b.lt_signed(&w[0], &w[1]);
            }),
            32,
        ),
        (
            "mux",
            count(k, 3, |b, w| drop(b.mux(w[2][0], &w[0], &w[1]))),
            32,
        ),
        ("relu", count(k, 1, |b, w| drop(b.relu(&w[0]))), 31),
        ("ashr", count(k, 1, |b, w| drop(b.ashr(&w[0], 12))), 0),
        (
            "relu(ashr 12)",
            count(k, 1, |b, w| {
                let t = b.ashr(&w[0], 12);
                drop(b.relu(&t))
            }),
            19,
        ),
        (
            "max_signed",
            count(k, 2, |b, w| drop(b.max_signed(&w[0], &w[1]))),
            64,
        ),
        ("max_many(4)", count(k, 4, |b, w| drop(b.max_many(w))), 192),
        (
            "max_many(4) of ashr 12",
            count(k, 4, |b, w| {
                let t: Vec<_> = w.iter().map(|x| b.ashr(x, 12)).collect();
                drop(b.max_many(&t))
            }),
            120,
        ),
        // Index bits: the first level's index muxes fold to wires (free), one AND after.
        (
            "argmax(4)",
            count(k, 4, |b, w| drop(b.argmax(w))),
            3 * 64 + 1,
        ),
        ("sum of 3", count(k, 3, |b, w| drop(b.sum(w))), 62),
    ];
    for (name, got, want) in table {
        println!("{name:>24}: {got} AND gates (k = {k})");
        assert_eq!(got, want, "{name}");
    }
}

/// One circuit with every gadget: inputs a, b, c, d (k bits) and s (1 bit).
fn all_gadgets(k: u32, f: usize) -> Circuit {
    let (mut b, w) = Builder::new(&[k, k, k, k, 1]);
    let (x, y) = (&w[0], &w[1]);
    let lt = b.lt_signed(x, y);
    let (idx, val) = b.argmax(&w[..4]);
    let outs = vec![
        b.add(x, y),
        b.sub(x, y),
        b.neg(x),
        vec![lt],
        b.mux(w[4][0], x, y),
        b.relu(x),
        b.ashr(x, f),
        b.max_signed(x, y),
        b.max_many(&w[..4]),
        idx,
        val,
    ];
    b.finish(&outs).unwrap()
}

/// Integer semantics of the same outputs.
fn reference(k: usize, f: usize, v: [u64; 4], s: bool) -> Vec<u64> {
    let m = mask(k);
    let (a, b) = (v[0], v[1]);
    let smax = |x: u64, y: u64| if signed(x, k) < signed(y, k) { y } else { x };
    let mut best = 0;
    for i in 1..4 {
        if signed(v[i], k) > signed(v[best], k) {
            best = i;
        }
    }
    vec![
        a.wrapping_add(b) & m,
        a.wrapping_sub(b) & m,
        a.wrapping_neg() & m,
        u64::from(signed(a, k) < signed(b, k)),
        if s { b } else { a },
        relu(a, k),
        trunc(a, k, f),
        smax(a, b),
        smax(smax(v[0], v[1]), smax(v[2], v[3])),
        best as u64,
        v[best],
    ]
}

fn encode(k: usize, v: [u64; 4], s: bool) -> Vec<bool> {
    let mut x: Vec<bool> = v.iter().flat_map(|&a| bits::u64_to_bits(a, k)).collect();
    x.push(s);
    x
}

fn decode(c: &Circuit, out: &[bool]) -> Vec<u64> {
    Circuit::split_groups(out, c.output_groups())
        .into_iter()
        .map(bits::bits_to_u64)
        .collect()
}

fn inputs(k: usize) -> impl Strategy<Value = ([u64; 4], bool)> {
    let m = mask(k);
    // Mix uniform values with edge cases (0, -1, min, max, equal values).
    let word = prop_oneof![
        any::<u64>().prop_map(move |x| x & m),
        Just(0),
        Just(m),
        Just(m >> 1),
        Just((m >> 1) + 1)
    ];
    (proptest::array::uniform4(word), any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn gadgets_match_integers_plain_k32((v, s) in inputs(32)) {
        let c = all_gadgets(32, 12);
        prop_assert_eq!(decode(&c, &c.eval_plain(&encode(32, v, s)).unwrap()), reference(32, 12, v, s));
    }

    #[test]
    fn gadgets_match_integers_plain_k8_k64(
        (v, s) in inputs(8), (w, t) in inputs(64), f in 0usize..8,
    ) {
        let c = all_gadgets(8, f);
        prop_assert_eq!(decode(&c, &c.eval_plain(&encode(8, v, s)).unwrap()), reference(8, f, v, s));
        let c = all_gadgets(64, f);
        prop_assert_eq!(decode(&c, &c.eval_plain(&encode(64, w, t)).unwrap()), reference(64, f, w, t));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]
    #[test]
    fn gadgets_match_integers_bmr_3_parties((v, s) in inputs(16), seed in any::<u64>()) {
        let (k, f) = (16, 5);
        let c = all_gadgets(k as u32, f);
        // Input words to parties 0, 1, 2, 0 and the select bit to party 1; evaluator 2; outputs
        // alternate between parties 0 and 1.
        let owners: Vec<usize> = [0usize, 1, 2, 0].iter().flat_map(|&p| vec![p; k]).chain([1]).collect();
        let outs: Vec<usize> = (0..c.num_outputs()).map(|i| i % 2).collect();
        let cfg = BmrConfig::new([1; 16], &c, 3, 2, owners, outs).unwrap();
        let mut r = ChaCha12Rng::seed_from_u64(seed);
        let flat = encode(k, v, s);
        let (out, _, _) = driver::run(&mut r, &cfg, &c, &driver::split_inputs(&cfg, &flat)).unwrap();
        prop_assert_eq!(decode(&c, &out), reference(k, f, v, s));
    }
}
