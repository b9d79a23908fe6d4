//! `seco node --mdns`: gateway and remotes find each other by mDNS, with no bootstrap and no
//! advertised remote address, and a secure inference then matches the fixed-point reference.
//!
//! Network rule: mDNS multicasts, so this test runs every node inside a network namespace it
//! creates itself (`ip netns add`), with only `lo` and a veth pair on the private test subnet
//! 10.213.0.0/24 (addresses that exist only inside it). No packet reaches the machine's own
//! interfaces. Without the capability (not root, no `ip`, no veth) it prints `skipped:` and
//! passes. The namespace is deleted when the test ends, also on panic.

mod common;

use std::process::{Command, Stdio};

use common::{reference, Deployment};

/// The gateway's address, on the namespace's veth.
const IP: &str = "10.213.0.1";

/// A network namespace with `lo` and a veth pair (`IP` on one end, multicast routed there);
/// deleted on drop.
struct Netns(String);

impl Netns {
    /// An error (the failing `ip` command) when this machine cannot create one.
    fn create() -> Result<Self, String> {
        let ns = Netns(format!("seco-mdns-{}", std::process::id()));
        ip(&["netns", "add", &ns.0])?;
        for args in [
            "link set lo up",
            "link add veth0 type veth peer name veth1",
            &format!("addr add {IP}/24 dev veth0"),
            "link set veth0 up",
            "link set veth1 up",
            // mDNS sends to 224.0.0.251: route multicast to the veth, not to a default route
            // (the namespace has none).
            "route add 224.0.0.0/4 dev veth0",
        ] {
            let mut a = vec!["-n", &ns.0];
            a.extend(args.split(' '));
            ip(&a)?;
        }
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

#[test]
fn nodes_in_a_netns_find_each_other_by_mdns_and_infer() {
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(e) => {
            println!("skipped: cannot create a network namespace ({e})");
            return;
        }
    };
    // The gateway advertises its address (the user bootstraps from it); the remotes advertise
    // nothing and bootstrap from no one: only mDNS can tell the gateway where they are.
    let mut d = Deployment::with_addresses("digits-mlp", 3, |i| {
        let listen = format!("listen = [\"/ip4/{IP}/tcp/{}\"]\n", 7100 + i);
        if i == 0 {
            listen
        } else {
            listen + "advertise = []\n"
        }
    });
    d.netns = Some(ns.0.clone());
    let nodes: Vec<_> = d
        .servers
        .iter()
        .map(|s| d.start_with(s, &["--mdns"]))
        .collect();

    let (x, want) = reference("digits-mlp", 0);
    let input = d.input_file(&x);
    let o = d
        .seco_command()
        .arg("infer")
        .arg("--topology")
        .arg(&d.topology)
        .arg("--model-part")
        .arg(d.path("parts/user.json"))
        .arg("--input")
        .arg(&input)
        .arg("--json")
        .env_remove("SECO_LOG")
        .output()
        .unwrap();
    let logs = || -> String { nodes.iter().map(|n| n.log_text()).collect() };
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        logs()
    );
    let line = common::stdout(&o);
    let line = line.lines().find(|l| l.starts_with('{')).unwrap();
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    let got: Vec<i64> = serde_json::from_value(result["fixed"].clone()).unwrap();
    assert_eq!(got, want);

    // The gateway found each remote by mDNS, at its address in the namespace.
    let gateway_log = nodes[0].log_text();
    for (i, remote) in nodes.iter().enumerate().skip(1) {
        let peer = remote.ready.split(" peer ").nth(1).unwrap();
        let peer = peer.split(' ').next().unwrap();
        assert!(
            gateway_log.lines().any(|l| l.contains("discovered by mDNS")
                && l.contains(peer)
                && l.contains(&format!("/ip4/{IP}/tcp/{}", 7100 + i))),
            "{gateway_log}"
        );
    }
}
