//! Issue 13, item 10: a deaf node exits. A `seco node` whose store fails under it exits
//! non-zero with a one-line reason (instead of running on without persisting anything); a node
//! whose network event loop ends stops on its own; `seco node` logs a periodic status line.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{reference, Deployment};
use seco_actors::config::Limits;
use seco_actors::node::{Node, ServerSetup};
use seco_actors::topology::Topology;
use seco_protocols::plan::ServerPart;

/// Waits up to `limit` for `cond` on the text of `log`.
fn wait_log(log: &std::path::Path, limit: Duration, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if cond(&text) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_node_whose_store_fails_exits_non_zero_with_the_reason() {
    let d = Deployment::with_timeouts(
        "digits-mlp",
        2,
        "open = 15\nprep = 10\ninference = 8\nack = 3\nretry = 3\n",
    );
    let mut gateway = d.start_with("gateway", &["--status-every", "1"]);
    let mut remote = d.start_with("remote-1", &["--status-every", "1"]);
    assert!(
        remote.ready.contains("key id none"),
        "ready line without the key id: {}",
        remote.ready
    );
    // The periodic status line.
    let text = wait_log(&remote.log, Duration::from_secs(10), |t| {
        t.contains("status: ")
    });
    let status = text.lines().find(|l| l.contains("status: ")).unwrap_or("");
    assert!(
        status.contains("peers connected")
            && status.contains("sessions open")
            && status.contains("bundles held")
            && status.contains("key id none"),
        "{text}"
    );
    // The remote's disk refuses writes under the running node (its database file and its
    // blob directory made immutable: EPERM even through open descriptors, also for root).
    let Some(_guard) =
        Immutable::set(&[d.path("remote-1/store/db"), d.path("remote-1/store/blobs")])
    else {
        eprintln!("skipped: chattr +i is not permitted here (needs CAP_LINUX_IMMUTABLE)");
        return;
    };
    let (x, _) = reference("digits-mlp", 0);
    let input = d.input_file(&x);
    let started = Instant::now();
    let o = d.infer(&input, &[]);
    assert!(
        !o.status.success(),
        "the inference ran without remote-1's store"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}: {}",
        started.elapsed(),
        String::from_utf8_lossy(&o.stderr)
    );
    // The remote exits on its own, non-zero, with the reason as its last line.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = remote.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "remote-1 runs on with a failed store: {}",
            remote.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "{status:?}");
    let log = remote.log_text();
    let last = log.trim_end().lines().last().unwrap_or("");
    // The reason names the store's path (`stopped: store DIR: ... failed`).
    assert!(
        last.starts_with("error: node remote-1 stopped: store ") && last.contains("failed"),
        "{log}"
    );
    // A node stopped by SIGTERM exits 0 and does not take its network's end for a failure.
    gateway.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = gateway.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the gateway did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = gateway.log_text();
    assert!(status.success(), "{status:?}: {log}");
    assert!(
        !log.contains("network lost") && !log.contains("ERROR"),
        "{log}"
    );
}

/// Files made immutable (`chattr +i`) until dropped.
struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    fn set(paths: &[std::path::PathBuf]) -> Option<Self> {
        let mut done = Immutable(Vec::new());
        for p in paths {
            let ok = std::process::Command::new("chattr")
                .arg("+i")
                .arg(p)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return None;
            }
            done.0.push(p.clone());
        }
        Some(done)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(p)
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_network_task_ends_stops() {
    let d = Deployment::new("digits-mlp", 2);
    let topology = Arc::new(Topology::load(&d.topology).unwrap());
    let part = ServerPart::load(d.path("parts/gateway/part.cbor")).unwrap();
    let key = seco_runtime::identity::load(&d.path("gateway/identity.key")).unwrap();
    let network = Node::network(&topology, "gateway", key, false).unwrap();
    let mut node = Node::start_server(ServerSetup {
        name: "gateway".into(),
        topology,
        part: Arc::new(part),
        store: Arc::new(seco_runtime::store::MemStore::new()),
        network,
        stats_file: None,
        limits: Limits::default(),
    })
    .await
    .unwrap();
    // The libp2p event loop ends under the running node (as if its task had died).
    node.client().kill_event_loop().await;
    tokio::time::timeout(Duration::from_secs(10), node.stopped())
        .await
        .expect("the node runs on deaf");
}
