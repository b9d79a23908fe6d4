//! A node's store on disk (`docs/operations.md`, "A broken store"): a truncated or scribbled
//! database is refused with its path and never opened as empty, its key share survives in the
//! sealed copy, and `seco store inspect|reset` bring the deployment back without a new key
//! generation.

mod common;

use common::{reference, seco, Deployment};

fn infer_once(d: &Deployment) -> std::process::Output {
    let (x, _) = reference("digits-mlp", 0);
    let input = d.input_file(&x);
    d.infer(&input, &["--json"])
}

/// `seco node` for `name` that must fail at start; returns its stderr.
fn start_fails(d: &Deployment, name: &str, role: &str) -> String {
    let o = d
        .seco_command()
        .args(["node", "--role", role, "--name", name, "--topology"])
        .arg(&d.topology)
        .arg("--data-dir")
        .arg(d.path(name))
        .arg("--part")
        .arg(d.path(&format!("parts/{name}")))
        .output()
        .unwrap();
    assert!(!o.status.success(), "{name} started on a broken store");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_truncated_store_is_refused_and_reset_keeps_the_key() {
    let d = Deployment::new("digits-mlp", 2);
    {
        let _nodes: Vec<_> = d.servers.iter().map(|s| d.start(s)).collect();
        let o = infer_once(&d);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // The remote's database is truncated to nothing.
    let db = d.path("remote-1/store/db");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(0)
        .unwrap();
    let err = start_fails(&d, "remote-1", "remote");
    assert!(err.contains("remote-1/store"), "{err}");
    let inspect = seco(&[
        "store",
        "inspect",
        "--data-dir",
        d.path("remote-1").to_str().unwrap(),
    ]);
    assert!(!inspect.status.success());
    let text = common::stdout(&inspect);
    assert!(
        text.contains("refused") && text.contains("key share copy: present"),
        "{text}"
    );
    let reset = seco(&[
        "store",
        "reset",
        "--data-dir",
        d.path("remote-1").to_str().unwrap(),
    ]);
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    assert!(common::stdout(&reset).contains("1 key share record"));
    // Both servers hold their key shares again: the next inference needs no key generation.
    let nodes: Vec<_> = d.servers.iter().map(|s| d.start(s)).collect();
    for n in &nodes {
        assert!(n.ready.contains("collective key present"), "{}", n.ready);
    }
    let o = infer_once(&d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A running node's store is in use: inspect says so, it does not call it refused.
    let busy = seco(&[
        "store",
        "inspect",
        "--data-dir",
        d.path("gateway").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(!busy.status.success() && err.contains("in use"), "{err}");
    assert!(!common::stdout(&busy).contains("refused"));
    // Nor is it reset or moved aside under the running node.
    let busy = seco(&[
        "store",
        "reset",
        "--data-dir",
        d.path("gateway").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(!busy.status.success() && err.contains("in use"), "{err}");
    assert!(!common::stdout(&busy).contains("moved the old store"));
    // The log is appended across both runs: the last session opened with the stored key.
    let log = nodes[0].log_text();
    let last = log
        .lines()
        .rfind(|l| l.contains("session opened"))
        .unwrap_or("");
    assert!(
        last.contains("generating_key") && last.contains("false"),
        "{last}"
    );
}

#[test]
fn a_scribbled_store_is_refused_or_keeps_its_key() {
    let d = Deployment::new("digits-mlp", 2);
    {
        let _nodes: Vec<_> = d.servers.iter().map(|s| d.start(s)).collect();
        let o = infer_once(&d);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // A few KB in the middle of the gateway's database overwritten.
    let db = d.path("gateway/store/db");
    let mut bytes = std::fs::read(&db).unwrap();
    let mid = bytes.len() / 2;
    let end = (mid + 4096).min(bytes.len());
    for b in &mut bytes[mid..end] {
        *b = 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    // Refused with the path, or (sled skipped the damaged part) opened with every record
    // checked and the key share still there; never an empty store.
    let o = d
        .seco_command()
        .args(["store", "inspect", "--data-dir"])
        .arg(d.path("gateway"))
        .output()
        .unwrap();
    let text = common::stdout(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        assert!(
            text.contains("collective key share: present"),
            "{text}{err}"
        );
        // The node drops what was damaged (a bundle, a chunk garbling, a session record) at
        // start, and the deployment serves the next inference with the key it had.
        {
            let _nodes: Vec<_> = d.servers.iter().map(|s| d.start(s)).collect();
            let o = infer_once(&d);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let after = common::stdout(
            &d.seco_command()
                .args(["store", "inspect", "--data-dir"])
                .arg(d.path("gateway"))
                .output()
                .unwrap(),
        );
        eprintln!("inspect before:\n{text}\ninspect after the restart:\n{after}");
        assert!(after.contains("damaged records: none"), "{after}");
    } else {
        assert!(text.contains("refused"), "{text}{err}");
        let err = start_fails(&d, "gateway", "gateway");
        assert!(err.contains("gateway/store"), "{err}");
    }
}
