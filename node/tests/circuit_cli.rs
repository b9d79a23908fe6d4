//! `seco circuit run` end to end: known answers under every engine, one-line errors.

use std::process::Command;

fn seco(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seco"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn circuit(name: &str) -> String {
    format!(
        "{}/../protocols/testdata/circuits/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn aes_under_every_engine() {
    let aes = circuit("aes_128.txt");
    for parties in ["1", "2", "3"] {
        let (ok, out, err) = seco(&[
            "circuit",
            "run",
            "--circuit",
            &aes,
            "--parties",
            parties,
            "--seed",
            "3",
            "--input",
            "000102030405060708090a0b0c0d0e0f",
            "--input",
            "00112233445566778899aabbccddeeff",
        ]);
        assert!(ok, "{err}");
        assert!(
            out.contains("output 0: 69c4e0d86a7b0430d8cdb78070b4c55a"),
            "{out}"
        );
        assert!(out.contains("6400 AND"), "{out}");
        assert!(out.contains("bytes exchanged"), "{out}");
    }
}

#[test]
fn bad_input_is_a_one_line_error() {
    let adder = circuit("adder_32bit.txt");
    for args in [
        vec![
            "circuit",
            "run",
            "--circuit",
            "/nonexistent",
            "--input",
            "1",
        ],
        vec!["circuit", "run", "--circuit", &adder, "--input", "1"],
        vec![
            "circuit",
            "run",
            "--circuit",
            &adder,
            "--input",
            "xyz",
            "--input",
            "1",
        ],
        vec![
            "circuit",
            "run",
            "--circuit",
            &adder,
            "--parties",
            "3",
            "--engine",
            "halfgates",
            "--input",
            "1",
            "--input",
            "2",
        ],
    ] {
        let (ok, _, err) = seco(&args);
        assert!(!ok);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
    }
}
