//! Storage faults in the middle of a session (issue 13, item 8; `docs/operations.md`, "Storage
//! faults"): a remote's data directory fills up, or its file system turns read-only, between
//! two bundles of an open session. The remote exits non-zero with an error naming its store,
//! and stays down (no restart loop); the user's session gets an error within a bound; once the
//! fault is cleared and the remote restarted, its collective key share is there and the next
//! `seco infer` runs without a new key generation.
//!
//! The faults are real: a small tmpfs filled to the last byte (disk full), and ext4 on a loop
//! device mounted `errors=remount-ro` whose error is triggered through
//! `/sys/fs/ext4/DEV/trigger_fs_error` (the kernel turns it read-only under the open files, as
//! after an I/O error; a plain `remount,ro` is refused while sled holds its files open). Both
//! need root and mounts: without them each test prints why and passes. Mounts are undone by a
//! drop guard.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{reference, Deployment};
use seco_actors::node::{Node, UserSetup};
use seco_actors::topology::Topology;
use seco_protocols::plan::UserPart;

/// How long the user may wait for its error, and the remote for its exit.
const BOUND: Duration = Duration::from_secs(60);

/// A mount on `path`, undone when dropped (lazily if still busy).
struct Mounted {
    path: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let o = cmd.output().map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

/// Mounts a fresh file system on server `name`'s data directory, keeping its identity key.
/// `mount` does the mounting on an empty directory; `Err` (a reason to skip) if it fails.
fn mount_data_dir(
    d: &Deployment,
    name: &str,
    mount: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<Mounted, String> {
    if !is_root() {
        return Err("not root".into());
    }
    let dir = d.path(name);
    let key = std::fs::read(dir.join("identity.key")).map_err(|e| e.to_string())?;
    std::fs::remove_file(dir.join("identity.key")).map_err(|e| e.to_string())?;
    mount(&dir)?;
    let guard = Mounted { path: dir.clone() };
    let file = dir.join("identity.key");
    std::fs::write(&file, key).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    // On disk before any fault (a file system turned read-only drops unwritten pages).
    for p in [&file, &dir] {
        std::fs::File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|e| e.to_string())?;
    }
    Ok(guard)
}

/// The user, in this process, over libp2p (as in `restart.rs`).
async fn start_user(d: &Deployment) -> Node {
    let topology = Arc::new(Topology::load(&d.topology).unwrap());
    let part: UserPart =
        serde_json::from_str(&std::fs::read_to_string(d.path("parts/user.json")).unwrap()).unwrap();
    let key = seco_runtime::identity::load(&d.path("user.key")).unwrap();
    let network = Node::network(&topology, "user", key, false).unwrap();
    Node::start_user(UserSetup {
        name: "user".into(),
        topology,
        part,
        store: Arc::new(seco_runtime::store::MemStore::new()),
        network,
    })
    .await
    .unwrap()
}

/// `seco infer` of test input 0; its signed fixed-point logits, or the error.
fn infer_cli(d: &Deployment) -> Result<Vec<i64>, String> {
    let (x, _) = reference("digits-mlp", 0);
    let input = d.input_file(&x);
    let o = d.infer(&input, &["--json"]);
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let line: serde_json::Value =
        serde_json::from_str(common::stdout(&o).lines().next().unwrap_or(""))
            .map_err(|e| format!("{e}: {}", common::stdout(&o)))?;
    serde_json::from_value(line["fixed"].clone()).map_err(|e| e.to_string())
}

/// Waits (bounded) for a node process to exit; its exit status.
fn wait_exit(node: &mut common::Node) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        if let Some(s) = node.child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// `seco node` for remote `name`, which must exit non-zero within [`BOUND`]; its stderr.
fn start_refused(d: &Deployment, name: &str) -> String {
    let err = d.path(&format!("{name}.refused"));
    let mut child = d
        .seco_command()
        .args(["node", "--role", "remote", "--name", name, "--topology"])
        .arg(&d.topology)
        .arg("--data-dir")
        .arg(d.path(name))
        .arg("--part")
        .arg(d.path(&format!("parts/{name}")))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} runs on a broken disk");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    std::fs::read_to_string(err).unwrap_or_default()
}

/// The scenario: key generation and one bundle, then `fault` at remote-1, then a second
/// bundle; then `clear`, a restart of remote-1 and a fresh `seco infer`.
async fn fault_in_mid_session(
    d: &Deployment,
    fault: impl FnOnce() -> Result<(), String>,
    clear: impl FnOnce() -> Result<(), String>,
    expect_in_error: &[&str],
    refused_at_start: bool,
) {
    let mut nodes: Vec<_> = d.servers.iter().map(|s| d.start(s)).collect();
    let user = start_user(d).await;
    let session = user.open_session().await.unwrap();
    session.preprocess().await.unwrap();

    fault().expect("inject the fault");
    let t = Instant::now();
    let r = tokio::time::timeout(BOUND, session.preprocess()).await;
    let waited = t.elapsed();
    match r {
        Err(_) => panic!("the user got no answer within {BOUND:?}"),
        Ok(Ok(b)) => panic!("bundle {b} prepared on a broken disk"),
        Ok(Err(e)) => println!("user: error after {waited:.1?}: {e}"),
    }
    let remote = &mut nodes[1];
    let status = tokio::task::block_in_place(|| wait_exit(remote));
    let log = remote.log_text();
    let status = status.unwrap_or_else(|| panic!("remote-1 still runs on a broken store: {log}"));
    assert!(!status.success(), "remote-1 exited 0: {log}");
    let last = log.lines().last().unwrap_or("");
    println!("remote-1: {status}, last line: {last}");
    assert!(last.starts_with("error: "), "{log}");
    assert!(
        last.contains("remote-1/store"),
        "the error names no path: {log}"
    );
    for needle in expect_in_error {
        assert!(last.contains(needle), "{needle:?} not in {last:?}");
    }
    // A session that crashed on the failed store is not restarted (no resume), and new
    // sessions (the user's retries) are refused; at most one session crashed.
    let crashes = log.matches("session actor crashed").count();
    let resumed = log.matches("session resumed from the store").count();
    assert!(
        crashes <= 1 && resumed == 0,
        "{crashes} session crashes, {resumed} resumes on a broken store: {log}"
    );
    user.shutdown().await.unwrap();
    if refused_at_start {
        // Started again on the broken disk (as a supervisor would): refused at once, naming
        // the store, instead of running.
        let err = tokio::task::block_in_place(|| start_refused(d, "remote-1"));
        println!("remote-1 restarted on the broken disk: {err}");
        assert!(err.contains("remote-1/store"), "{err}");
    }

    clear().expect("clear the fault");
    nodes[1] = d.start("remote-1");
    assert!(
        nodes[1].ready.contains("collective key present"),
        "{}",
        nodes[1].ready
    );
    let (_, want) = reference("digits-mlp", 0);
    let got = tokio::task::block_in_place(|| infer_cli(d)).expect("inference after the fault");
    assert_eq!(got, want);
    let log = nodes[0].log_text();
    let last = log
        .lines()
        .rfind(|l| l.contains("session opened"))
        .unwrap_or("");
    assert!(
        last.contains("generating_key") && last.contains("false"),
        "a new key generation ran: {last}"
    );
}

/// Fills the file system of `dir` to the last byte (`dir/filler`).
fn fill(dir: &Path) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).map_err(|e| e.to_string())?;
    let block = vec![0xa5u8; 64 << 10];
    loop {
        if let Err(e) = f.write_all(&block) {
            if e.raw_os_error() == Some(28) {
                break;
            }
            return Err(e.to_string());
        }
    }
    // The last partial block.
    for _ in 0..(64 << 10) {
        if f.write_all(&[0xa5]).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_in_mid_session_stops_the_node_and_keeps_the_key() {
    let d = Deployment::new("digits-mlp", 2);
    let guard = mount_data_dir(&d, "remote-1", |dir| {
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256m,mode=0700", "tmpfs"])
            .arg(dir))
    });
    let _guard = match guard {
        Ok(g) => g,
        Err(why) => {
            println!("skipped: cannot mount a tmpfs ({why})");
            return;
        }
    };
    let dir = d.path("remote-1");
    let filler = dir.join("filler");
    fault_in_mid_session(
        &d,
        || fill(&dir),
        || std::fs::remove_file(&filler).map_err(|e| e.to_string()),
        &[],
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_in_mid_session_stops_the_node_and_keeps_the_key() {
    let d = Deployment::new("digits-mlp", 2);
    let image = d.path("remote-1.ext4");
    let made = std::fs::File::create(&image)
        .and_then(|f| f.set_len(256 << 20))
        .map_err(|e| e.to_string())
        .and_then(|()| run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image)));
    let mount_ext4 = |dir: &Path| {
        run(Command::new("mount")
            .args(["-o", "loop,errors=remount-ro"])
            .arg(&image)
            .arg(dir))
    };
    let guard = made.and_then(|()| mount_data_dir(&d, "remote-1", mount_ext4));
    let guard = match guard {
        Ok(g) => g,
        Err(why) => {
            println!("skipped: cannot mount an ext4 image ({why})");
            return;
        }
    };
    let dir = d.path("remote-1");
    let source = String::from_utf8_lossy(
        &Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(&dir)
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let dev = source.rsplit('/').next().unwrap_or("").to_string();
    let trigger = PathBuf::from(format!("/sys/fs/ext4/{dev}/trigger_fs_error"));
    if !trigger.exists() {
        println!("skipped: no {} to turn ext4 read-only", trigger.display());
        return;
    }
    let mut guard = Some(guard);
    fault_in_mid_session(
        &d,
        || std::fs::write(&trigger, "1").map_err(|e| e.to_string()),
        || {
            // The file system stays read-only until it is mounted again (the node is down).
            drop(guard.take());
            let g = mount_data_dir_again(&dir, mount_ext4)?;
            guard = Some(g);
            Ok(())
        },
        &["Read-only file system"],
        true,
    )
    .await;
    drop(guard);
}

/// Mounts `dir` again (after an unmount), its contents being the file system's own.
fn mount_data_dir_again(
    dir: &Path,
    mount: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<Mounted, String> {
    mount(dir)?;
    Ok(Mounted {
        path: dir.to_path_buf(),
    })
}
