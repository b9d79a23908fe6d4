//! Bristol readers against known answers, bit order, export round trip, and bad files.

use proptest::prelude::*;
use seco_protocols::circuit::{bits, bristol, bristol::Format, CircuitError, Program};

fn load(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/testdata/circuits/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const KEY: &str = "000102030405060708090a0b0c0d0e0f";
const PT: &str = "00112233445566778899aabbccddeeff";
const CT: &str = "69c4e0d86a7b0430d8cdb78070b4c55a";

#[test]
fn aes128_fips197_vector_plain() {
    let text = load("aes_128.txt");
    assert_eq!(Format::detect(&text), Format::Fashion);
    let c = bristol::read(&text, Some(Format::Fashion)).unwrap();
    assert_eq!(c.input_groups(), &[128, 128]);
    assert_eq!(c.output_groups(), &[128]);
    assert_eq!(c.counts().and, 6400);
    let mut inp = bits::hex_to_bits(KEY, 128).unwrap();
    inp.extend(bits::hex_to_bits(PT, 128).unwrap());
    let out = c.eval_plain(&inp).unwrap();
    assert_eq!(bits::bits_to_hex(&out), CT);
    // The lowered, layered program computes the same.
    let p = Program::compile(&c).unwrap();
    assert_eq!(p.eval_plain(&inp).unwrap(), out);
}

#[test]
fn adder32_old_format_lsb_first() {
    let text = load("adder_32bit.txt");
    assert_eq!(Format::detect(&text), Format::Old);
    let c = bristol::read(&text, None).unwrap();
    assert_eq!(c.input_groups(), &[32, 32]);
    assert_eq!(c.output_groups(), &[33]);
    for (a, b) in [
        (0u64, 0u64),
        (1, 1),
        (0xffff_ffff, 1),
        (0x89ab_cdef, 0xfedc_ba98),
        (123456, 654321),
    ] {
        let mut inp = bits::u64_to_bits(a, 32);
        inp.extend(bits::u64_to_bits(b, 32));
        assert_eq!(bits::bits_to_u64(&c.eval_plain(&inp).unwrap()), a + b);
    }
}

#[test]
fn export_round_trip() {
    let c = bristol::read(&load("adder_32bit.txt"), None).unwrap();
    let text = bristol::write_fashion(&c);
    let d = bristol::read(&text, Some(Format::Fashion)).unwrap();
    let mut inp = bits::u64_to_bits(0xdead_beef, 32);
    inp.extend(bits::u64_to_bits(0x1234_5678, 32));
    assert_eq!(c.eval_plain(&inp).unwrap(), d.eval_plain(&inp).unwrap());
    assert_eq!(d.counts().and, c.counts().and);
}

#[test]
fn hex_bit_order() {
    assert_eq!(
        bits::hex_to_bits("01", 8).unwrap(),
        vec![true, false, false, false, false, false, false, false]
    );
    assert_eq!(bits::bits_to_hex(&bits::hex_to_bits(CT, 128).unwrap()), CT);
    assert!(bits::hex_to_bits("100", 8).is_err());
    assert!(bits::hex_to_bits("zz", 8).is_err());
}

fn err(text: &str, f: Format) -> CircuitError {
    bristol::read(text, Some(f)).unwrap_err()
}

#[test]
fn malformed_files_are_typed_errors() {
    let fashion = |gates: &str, n: u32, w: u32| format!("{n} {w}\n2 1 1\n1 1\n\n{gates}");
    // Wrong gate count (fewer lines than declared, more lines than declared).
    assert!(matches!(
        err(&fashion("2 1 0 1 2 AND\n", 2, 3), Format::Fashion),
        CircuitError::Truncated { .. }
    ));
    assert!(matches!(
        err(
            &fashion("2 1 0 1 2 AND\n1 1 2 3 INV\n", 1, 3),
            Format::Fashion
        ),
        CircuitError::Parse { .. }
    ));
    // Wire out of range.
    assert!(matches!(
        err(&fashion("2 1 0 9 2 AND\n", 1, 3), Format::Fashion),
        CircuitError::WireOutOfRange { .. }
    ));
    // Use before define (a cycle: 2 reads 3, 3 reads 2).
    let cyc = fashion("2 1 0 3 2 AND\n2 1 1 2 3 XOR\n", 2, 4);
    assert!(matches!(
        err(&cyc, Format::Fashion),
        CircuitError::UseBeforeDefine { .. }
    ));
    // Redefinition and unknown gate.
    assert!(matches!(
        err(&fashion("2 1 0 1 1 AND\n", 1, 3), Format::Fashion),
        CircuitError::Redefined { .. }
    ));
    assert!(matches!(
        err(&fashion("2 1 0 1 2 NAND\n", 1, 3), Format::Fashion),
        CircuitError::UnknownGate { .. }
    ));
    assert!(matches!(
        err(&fashion("4 2 0 1 0 1 2 3 MAND\n", 1, 4), Format::Fashion),
        CircuitError::UnknownGate { .. }
    ));
    assert!(matches!(
        err(&fashion("2 1 0 1 AND\n", 1, 3), Format::Fashion),
        CircuitError::Parse { .. }
    ));
    // Absurd sizes are refused before allocating.
    assert!(matches!(
        err("4000000000 4000000000\n2 1 1\n1 1\n", Format::Fashion),
        CircuitError::TooLarge { .. }
    ));
    let huge = format!("{} {}\n2 1 1\n1 1\n2 1 0 1 2 AND\n", 1 << 27, 1 << 27);
    assert!(matches!(
        err(&huge, Format::Fashion),
        CircuitError::Truncated { .. }
    ));
    // Input/output declarations that do not add up.
    assert!(matches!(
        err("1 3\n3 1 1\n1 1\n2 1 0 1 2 AND\n", Format::Fashion),
        CircuitError::Parse { .. }
    ));
    assert!(matches!(
        err("1 3\n2 2 2\n1 1\n2 1 0 1 2 AND\n", Format::Fashion),
        CircuitError::CountMismatch { .. }
    ));
    assert!(matches!(
        err("1 3\n1 1\n2 1 0 1 2 AND\n", Format::Old),
        CircuitError::Parse { .. }
    ));
    assert!(matches!(
        err("", Format::Old),
        CircuitError::Truncated { .. }
    ));
    assert!(matches!(
        err("x y\n", Format::Old),
        CircuitError::Parse { .. }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn readers_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = bristol::read(&text, Some(Format::Fashion));
        let _ = bristol::read(&text, Some(Format::Old));
        let _ = bristol::read(&text, None);
    }

    #[test]
    fn readers_never_panic_on_mutated_circuits(pos in 0usize..2000, byte in any::<u8>(), cut in 0usize..3000) {
        let mut b = load("adder_32bit.txt").into_bytes();
        b.truncate(cut.max(1) + 2000);
        if let Some(x) = b.get_mut(pos) { *x = byte; }
        let text = String::from_utf8_lossy(&b);
        if let Ok(c) = bristol::read(&text, None) {
            let inputs = vec![false; c.num_inputs()];
            let _ = c.eval_plain(&inputs);
            let _ = Program::compile(&c);
        }
    }
}
