use std::path::Path;
use std::time::Duration;

use super::*;
use crate::dev::example_keypair;

fn pid(name: &str) -> String {
    example_keypair(name)
        .unwrap()
        .public()
        .to_peer_id()
        .to_string()
}

fn sample() -> String {
    format!(
        r#"
version = 1
model = "digits-mlp"

[timeouts]
open = 30
inference = 2.5
idle = 90

[[node]]
name = "gateway"
role = "gateway"
peer_id = "{g}"
listen = ["/ip4/127.0.0.1/tcp/7001"]

[[node]]
name = "remote-1"
role = "remote"
peer_id = "{r1}"
listen = ["/ip4/0.0.0.0/tcp/7002"]
advertise = ["/ip4/10.0.0.2/tcp/7002"]
bootstrap = ["gateway"]

[[node]]
name = "remote-2"
role = "remote"
peer_id = "{r2}"
listen = ["/ip4/127.0.0.1/tcp/0"]
bootstrap = ["gateway"]

[[node]]
name = "user"
role = "user"
peer_id = "{u}"
bootstrap = ["gateway"]
identity = "keys/user.key"
"#,
        g = pid("gateway"),
        r1 = pid("remote-1"),
        r2 = pid("remote-2"),
        u = pid("user")
    )
}

fn parse(text: &str) -> Result<Topology> {
    Topology::from_toml(text, Path::new("/etc/seco"))
}

#[test]
fn parses_a_full_file() {
    let t = parse(&sample()).unwrap();
    assert_eq!(t.model.as_deref(), Some("digits-mlp"));
    assert_eq!(t.timeouts.open, Duration::from_secs(30));
    assert_eq!(t.timeouts.inference, Some(Duration::from_millis(2500)));
    // Not in the file: scaled to the split at a server, the fixed default at the user.
    assert_eq!(t.timeouts.prep, None);
    assert_eq!(t.timeouts.user_prep(), crate::config::USER_PREP);
    assert_eq!(t.timeouts.idle, Duration::from_secs(90));
    assert_eq!(t.server_names(), ["gateway", "remote-1", "remote-2"]);
    assert_eq!(t.users().len(), 1);
    assert_eq!(t.allowlist().len(), 4);
    let r1 = t.node("remote-1").unwrap();
    assert_eq!(r1.advertise[0].to_string(), "/ip4/10.0.0.2/tcp/7002");
    // Port 0: nothing to advertise, found through Kademlia.
    assert!(t.node("remote-2").unwrap().advertise.is_empty());
    let u = t.node("user").unwrap();
    assert_eq!(
        u.identity.as_deref(),
        Some(Path::new("/etc/seco/keys/user.key"))
    );
    let g = t.gateway().unwrap();
    assert_eq!(t.peer_role(&g.peer_id), Some(PeerRole::Server(0)));
    assert_eq!(t.peer_role(&u.peer_id), Some(PeerRole::User));
    let cfg = t.net_config(r1, false);
    assert_eq!(cfg.bootstrap.len(), 1);
    assert!(cfg.bootstrap[0].to_string().ends_with(&pid("gateway")));
    assert!(!cfg.mdns);
    // Writing and reading back gives the same topology.
    let again = parse(&t.to_toml()).unwrap();
    assert_eq!(again, t);
}

fn err_of(text: &str) -> String {
    let e = parse(text).unwrap_err();
    let s = e.to_string();
    assert_eq!(s.lines().count(), 1, "{s}");
    s
}

#[test]
fn every_mistake_has_a_one_line_error() {
    let s = sample();
    let cases: Vec<(String, &str)> = vec![
        (
            s.replace("role = \"remote\"", "role = \"relay\""),
            "unknown role \"relay\"",
        ),
        (
            s.replace("name = \"remote-2\"", "name = \"remote-1\""),
            "two nodes are called",
        ),
        (
            s.replace(&pid("remote-2"), &pid("remote-1")),
            "same peer id",
        ),
        (s.replace(&pid("user"), "not-a-peer"), "is not a peer id"),
        (
            s.replace("/ip4/10.0.0.2/tcp/7002", "/ip4/10.0.0.2/tcpp/1"),
            "is not a multiaddr",
        ),
        (
            s.replace("/ip4/10.0.0.2/tcp/7002", "/ip4/10.0.0.2/udp/1"),
            "has no /tcp",
        ),
        (
            s.replace("/ip4/10.0.0.2/tcp/7002", "/ip4/0.0.0.0/tcp/7002"),
            "cannot be dialled",
        ),
        (
            s.replacen("role = \"gateway\"", "role = \"remote\"", 1),
            "no node has role gateway",
        ),
        (
            s.replace("role = \"remote\"", "role = \"gateway\""),
            "more than one",
        ),
        (
            s.replace(
                "bootstrap = [\"gateway\"]\nidentity",
                "bootstrap = [\"nobody\"]\nidentity",
            ),
            "names no node",
        ),
        (
            s.replace(
                "bootstrap = [\"gateway\"]\nidentity",
                "bootstrap = [\"remote-1\"]\nidentity",
            ),
            "a user talks only to the gateway",
        ),
        (
            s.replace("inference = 2.5", "inference = -1"),
            "timeout inference",
        ),
        (s.replace("version = 1", "version = 9"), "version 9"),
        (s.replace("model = ", "modle = "), "line "),
        (s.replace("[timeouts]", "[timeouts"), "not valid"),
        (
            s.replace("name = \"user\"", "name = \"us er\""),
            "bad node name",
        ),
    ];
    for (text, needle) in cases {
        let e = err_of(&text);
        assert!(e.contains(needle), "{e:?} lacks {needle:?}");
    }
    let only_user = format!(
        "[[node]]\nname = \"u\"\nrole = \"user\"\npeer_id = \"{}\"\n",
        pid("u")
    );
    assert!(err_of(&only_user).contains("no node has role gateway"));
    let lonely = format!(
        "[[node]]\nname = \"g\"\nrole = \"gateway\"\npeer_id = \"{}\"\nlisten = [\"/ip4/127.0.0.1/tcp/1\"]\n",
        pid("g")
    );
    assert!(err_of(&lonely).contains("at least one remote"));
    let late_gateway = s
        .replacen("role = \"gateway\"", "role = \"remote\"", 1)
        .replacen(
            "name = \"remote-2\"\nrole = \"remote\"",
            "name = \"remote-2\"\nrole = \"gateway\"",
            1,
        );
    assert!(err_of(&late_gateway).contains("listed before the remotes"));
    let no_listen = s.replace("listen = [\"/ip4/127.0.0.1/tcp/0\"]\n", "");
    assert!(err_of(&no_listen).contains("must listen"));
    let missing = Topology::load(Path::new("/nonexistent/topology.toml")).unwrap_err();
    assert!(missing.to_string().contains("cannot read topology"));
}

#[test]
fn lookups_and_part_checks() {
    let t = parse(&sample()).unwrap();
    assert!(matches!(
        t.node("nobody"),
        Err(TopologyError::UnknownNode(_))
    ));
    assert!(matches!(
        t.node_with_role("user", Role::Gateway),
        Err(TopologyError::WrongRole { .. })
    ));
    let model = seco_protocols::model::Model::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/digits-mlp"),
    )
    .unwrap();
    let q = model.quantize().unwrap();
    let plan = seco_protocols::plan::SplitPlan::balanced(&q, &t.server_names()).unwrap();
    let part = plan.server_part(&q, 1).unwrap();
    t.check_part("remote-1", &part).unwrap();
    let e = t.check_part("remote-2", &part).unwrap_err().to_string();
    assert!(e.contains("belongs to server \"remote-1\""), "{e}");
    let other = seco_protocols::plan::SplitPlan::balanced(&q, &["a".into(), "b".into()]).unwrap();
    let e = t
        .check_part("remote-1", &other.server_part(&q, 1).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("the topology lists"), "{e}");
    let mut wrong_model = t.clone();
    wrong_model.model = Some("mnist-mlp".into());
    let e = wrong_model
        .check_part("remote-1", &part)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mnist-mlp"), "{e}");
}

#[test]
fn remapping_ports_keeps_addresses_consistent() {
    let mut t = parse(&sample()).unwrap();
    t.remap_ports(|_, p| p + 1000);
    let r1 = t.node("remote-1").unwrap();
    assert_eq!(r1.listen[0].to_string(), "/ip4/0.0.0.0/tcp/8002");
    assert_eq!(r1.advertise[0].to_string(), "/ip4/10.0.0.2/tcp/8002");
    assert_eq!(
        t.node("remote-2").unwrap().listen[0].to_string(),
        "/ip4/127.0.0.1/tcp/0"
    );
}

proptest::proptest! {
    /// No text makes the parser panic: garbage, and the sample with bytes replaced.
    #[test]
    fn garbage_never_panics(text in ".{0,400}", cut in 0usize..2000, byte in 0u8..128) {
        let _ = parse(&text);
        let mut s = sample().into_bytes();
        if let Some(b) = s.get_mut(cut) {
            *b = byte;
        }
        let _ = parse(&String::from_utf8_lossy(&s));
    }
}

/// Item 9 of issue 14: a user talks only to the gateway. Each node's allowlist holds the roles
/// it talks to; `check_peer` refuses a user at a remote with a typed reason.
#[test]
fn allowlists_and_peer_checks_follow_the_roles() {
    let t = parse(&sample()).unwrap();
    let id = |name: &str| t.node(name).unwrap().peer_id;
    let (g, r1, r2, u) = (id("gateway"), id("remote-1"), id("remote-2"), id("user"));
    let of = |name: &str| t.allowlist_for(t.node(name).unwrap());
    assert_eq!(of("gateway"), [g, r1, r2, u].into_iter().collect());
    assert_eq!(of("remote-1"), [g, r1, r2].into_iter().collect());
    assert_eq!(of("user"), [g].into_iter().collect());
    assert_eq!(
        t.net_config(t.node("remote-2").unwrap(), false).allowlist,
        of("remote-2")
    );
    assert_eq!(t.check_peer(Role::Gateway, &u).unwrap(), PeerRole::User);
    assert_eq!(t.check_peer(Role::Remote, &g).unwrap(), PeerRole::Server(0));
    assert_eq!(t.check_peer(Role::User, &g).unwrap(), PeerRole::Server(0));
    let err = t.check_peer(Role::Remote, &u).unwrap_err();
    assert!(
        matches!(
            err,
            TopologyError::RoleRefused {
                me: Role::Remote,
                peer: Role::User
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("a user talks only to the gateway"));
    assert!(matches!(
        t.check_peer(Role::User, &r1),
        Err(TopologyError::RoleRefused { .. })
    ));
    let outsider = seco_runtime::identity::generate().public().to_peer_id();
    assert!(matches!(
        t.check_peer(Role::Gateway, &outsider),
        Err(TopologyError::UnknownPeer(_))
    ));
    assert_eq!(t.role_text(&r2), "a remote server");
}
