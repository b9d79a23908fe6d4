//! The views and the detector of `seco_privacy_stats.rs`: each server's online view decoded
//! into bit positions, the counts of ones per input, and the statistical tests of its module doc.

use std::collections::BTreeMap;

use seco_protocols::bmr::{BmrMsg, Body as BmrBody};
use seco_protocols::seco::local::Delivered;
use seco_protocols::seco::msg::{ring_bytes, unpack_ring, Body};
use seco_protocols::seco::{Party, Phase};

use super::{AGG_Z, ALPHA};

/// How a field's bits are distributed when the protocol masks correctly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// Ring elements masked by a uniform mask: uniform bits.
    Ring,
    /// BMR masked wire values `x ^ lambda`: uniform bits.
    WireBits,
    /// BMR active wire keys: uniform bits (the lsb is `Lambda_w`).
    WireKeys,
    /// Ciphertexts under the user's key: the same distribution for any input, not uniform.
    Ciphertext,
}

impl Kind {
    fn uniform(self) -> bool {
        self != Kind::Ciphertext
    }
}

/// Where a field sits in a server's view: (receiver, sender, message, stage, chunk, occurrence).
pub(crate) type Place = (Party, Party, &'static str, u16, u32, u32);

/// One run's view of every server: its fields' bits.
pub(crate) type RunView = BTreeMap<Place, (Kind, Vec<bool>)>;

/// Counts of ones per bit position of a field, for `x0` (`[0]`) and `x1` (`[1]`).
#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub(crate) kind: Kind,
    pub(crate) ones: [Vec<u32>; 2],
}

/// Every server's accumulated view.
pub(crate) type View = BTreeMap<Place, Field>;

fn bits_of_bytes(bytes: &[u8]) -> Vec<bool> {
    bytes
        .iter()
        .flat_map(|b| (0..8).map(move |j| (b >> j) & 1 == 1))
        .collect()
}

pub(crate) fn bits_of_words(words: &[u64], k: u32) -> Vec<bool> {
    words
        .iter()
        .flat_map(|w| (0..k).map(move |j| (w >> j) & 1 == 1))
        .collect()
}

fn ring(bytes: &[u8], k: u32) -> Vec<u64> {
    unpack_ring(bytes, k, bytes.len() / ring_bytes(k)).unwrap()
}

/// The decoded value-carrying fields of one received online message.
fn fields(d: &Delivered, k: u32) -> Vec<(&'static str, u16, u32, Kind, Vec<bool>)> {
    match &d.msg.body {
        Body::Infer { masked_input, .. } => vec![(
            "Infer",
            0,
            0,
            Kind::Ring,
            bits_of_words(&ring(masked_input, k), k),
        )],
        Body::MaskedInput { values, .. } => vec![(
            "MaskedInput",
            0,
            0,
            Kind::Ring,
            bits_of_words(&ring(values, k), k),
        )],
        Body::BmrOnline {
            stage, chunk, msg, ..
        } => {
            let m: BmrMsg = ciborium::from_reader(msg.as_slice()).unwrap();
            let (name, kind, bits) = match &m.body {
                BmrBody::MaskedInputs(b) => {
                    ("BmrOnline MaskedInputs", Kind::WireBits, b.to_bools())
                }
                BmrBody::Outputs(b) => ("BmrOnline Outputs", Kind::WireBits, b.to_bools()),
                BmrBody::InputKeys(keys) => (
                    "BmrOnline InputKeys",
                    Kind::WireKeys,
                    keys.iter()
                        .flat_map(|b| bits_of_bytes(&b.to_bytes()))
                        .collect(),
                ),
                other => panic!("unexpected BMR round online: {}", other.round()),
            };
            vec![(name, *stage, *chunk, kind, bits)]
        }
        Body::ResultShare { cts, .. } => cts
            .iter()
            .map(|c| ("ResultShare", 0, 0, Kind::Ciphertext, bits_of_bytes(c)))
            .collect(),
        // OnlineStart carries only the bundle id.
        _ => Vec::new(),
    }
}

/// The online view of every server in one run.
pub(crate) fn run_view(trace: &[Delivered], k: u32) -> RunView {
    let mut view = RunView::new();
    let mut seen: BTreeMap<(Party, Party, &'static str, u16, u32), u32> = BTreeMap::new();
    for d in trace {
        if d.msg.body.phase() != Phase::Online || d.to == Party::User {
            continue;
        }
        for (name, stage, chunk, kind, bits) in fields(d, k) {
            let n = seen.entry((d.to, d.from, name, stage, chunk)).or_default();
            view.insert((d.to, d.from, name, stage, chunk, *n), (kind, bits));
            *n += 1;
        }
    }
    view
}

/// Adds one run of input `which` to the counts; the first run fixes the layout.
pub(crate) fn accumulate(acc: &mut View, run: &RunView, which: usize) {
    if acc.is_empty() {
        for (place, (kind, bits)) in run {
            let zeros = vec![0u32; bits.len()];
            acc.insert(
                *place,
                Field {
                    kind: *kind,
                    ones: [zeros.clone(), zeros],
                },
            );
        }
    }
    assert_eq!(
        acc.keys().collect::<Vec<_>>(),
        run.keys().collect::<Vec<_>>(),
        "the messages a server receives depend on the input or the run"
    );
    for (place, (kind, bits)) in run {
        let f = acc.get_mut(place).unwrap();
        assert_eq!(f.kind, *kind);
        assert_eq!(f.ones[which].len(), bits.len(), "{place:?}: length changed");
        for (c, &b) in f.ones[which].iter_mut().zip(bits) {
            *c += u32::from(b);
        }
    }
}

/// Which test failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Test {
    /// `|c0 - c1| / m` of one position.
    TwoSample,
    /// `|c / m - 1/2|` of one position and input.
    Uniform,
    /// The sum of a server's squared two-sample statistics of one kind.
    SumTwoSample,
    /// The sum of a server's squared uniformity statistics of one kind.
    SumUniform,
}

/// A failed test.
#[derive(Clone, Debug)]
pub(crate) struct Flag {
    pub(crate) to: Party,
    pub(crate) message: &'static str,
    pub(crate) kind: Kind,
    test: Test,
    detail: String,
}

/// The statistics of one server's fields of one kind.
#[derive(Clone, Debug, Default)]
struct Group {
    positions: usize,
    /// Largest `|c0 - c1| / m`.
    max_two: f64,
    /// Largest `|c / m - 1/2|` (masked kinds).
    max_uniform: f64,
    /// `sum (c0 - c1)^2 / (m/2) / P` and its bound (masked kinds).
    sum_two: (f64, f64),
    /// `sum (2c - m)^2 / m / 2P` and its bound (masked kinds).
    sum_uniform: (f64, f64),
}

/// What the detector found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Number of per-position tests (Bonferroni).
    tests: usize,
    /// Thresholds: `|c0 - c1| / m` and `|c / m - 1/2|`.
    t_two: f64,
    t_uniform: f64,
    /// Per (receiver, kind).
    groups: BTreeMap<(Party, Kind), Group>,
    /// Every failed test.
    pub(crate) flagged: Vec<Flag>,
}

impl Report {
    pub(crate) fn flags(&self, to: Party, message: &str, test: Test) -> bool {
        self.flagged
            .iter()
            .any(|f| f.to == to && f.message == message && f.test == test)
    }
}

/// Wilson-Hilferty upper bound of `chi^2(p)` at `z`.
fn chi2_bound(p: usize, z: f64) -> f64 {
    let p = p as f64;
    let a = 2.0 / (9.0 * p);
    p * (1.0 - a + z * a.sqrt()).powi(3)
}

/// The statistical tests of the module doc on `m` runs per input.
pub(crate) fn detect(view: &View, m: usize) -> Report {
    let mf = m as f64;
    let tests: usize = view
        .values()
        .map(|f| f.ones[0].len() * if f.kind.uniform() { 3 } else { 1 })
        .sum();
    let log = (2.0 * tests as f64 / ALPHA).ln();
    let mut r = Report {
        tests,
        t_two: (log / mf).sqrt(),
        t_uniform: (log / (2.0 * mf)).sqrt(),
        ..Report::default()
    };
    for (place, f) in view {
        let (to, from, message, stage, chunk, occ) = *place;
        let at = |i: usize| {
            format!("{to} <- {from} {message} stage {stage} chunk {chunk} #{occ} bit {i}")
        };
        let flag = |test, detail| Flag {
            to,
            message,
            kind: f.kind,
            test,
            detail,
        };
        let g = r.groups.entry((to, f.kind)).or_default();
        for i in 0..f.ones[0].len() {
            let (c0, c1) = (f64::from(f.ones[0][i]), f64::from(f.ones[1][i]));
            g.positions += 1;
            let two = (c0 - c1).abs() / mf;
            g.max_two = g.max_two.max(two);
            if two >= r.t_two {
                let d = format!("{}: {c0} vs {c1} ones", at(i));
                r.flagged.push(flag(Test::TwoSample, d));
            }
            if !f.kind.uniform() {
                continue;
            }
            g.sum_two.0 += (c0 - c1).powi(2) / (mf / 2.0);
            for c in [c0, c1] {
                let dev = (c / mf - 0.5).abs();
                g.max_uniform = g.max_uniform.max(dev);
                if dev >= r.t_uniform {
                    let d = format!("{}: {c} ones of {m}", at(i));
                    r.flagged.push(flag(Test::Uniform, d));
                }
                g.sum_uniform.0 += (2.0 * c - mf).powi(2) / mf;
            }
        }
    }
    for (&(to, kind), g) in r.groups.iter_mut() {
        if !kind.uniform() {
            continue;
        }
        let p = g.positions;
        g.sum_two = (g.sum_two.0 / p as f64, chi2_bound(p, AGG_Z) / p as f64);
        g.sum_uniform = (
            g.sum_uniform.0 / (2 * p) as f64,
            chi2_bound(2 * p, AGG_Z) / (2 * p) as f64,
        );
        for (test, (v, bound)) in [
            (Test::SumTwoSample, g.sum_two),
            (Test::SumUniform, g.sum_uniform),
        ] {
            if v >= bound {
                r.flagged.push(Flag {
                    to,
                    message: "(all)",
                    kind,
                    test,
                    detail: format!("{to} {kind:?}: {test:?} {v:.3} >= {bound:.3}"),
                });
            }
        }
    }
    r
}

pub(crate) fn print(label: &str, r: &Report) {
    println!(
        "{label}: {} tests; per position |c0-c1|/m >= {:.3} or |c/m - 1/2| >= {:.3} fails",
        r.tests, r.t_two, r.t_uniform
    );
    for ((to, kind), g) in &r.groups {
        print!(
            "  {to:8} {:10} {:6} bits: max |c0-c1|/m {:.3}",
            format!("{kind:?}"),
            g.positions,
            g.max_two
        );
        if kind.uniform() {
            print!(
                ", max |c/m-1/2| {:.3}, sums / P: two-sample {:.3} (< {:.3}), uniformity {:.3} (< {:.3})",
                g.max_uniform, g.sum_two.0, g.sum_two.1, g.sum_uniform.0, g.sum_uniform.1
            );
        }
        println!();
    }
    println!("  {} failed tests", r.flagged.len());
    for f in r.flagged.iter().take(4) {
        println!("    {:?} {}", f.test, f.detail);
    }
}
