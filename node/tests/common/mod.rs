//! Shared by the process tests: run the built `seco`, check one-line errors, set up a loopback
//! deployment with the CLI itself (split, identities) and a topology on free ports, start
//! `seco node` processes and wait for their `ready:` line.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use seco_protocols::model::{Model, TestSet};

pub fn seco_bin() -> &'static str {
    env!("CARGO_BIN_EXE_seco")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `seco` with the default log filter (as a user would).
pub fn seco(args: &[&str]) -> Output {
    Command::new(seco_bin())
        .args(args)
        .current_dir(repo())
        .env_remove("SECO_LOG")
        .output()
        .expect("run seco")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Exit code != 0 and exactly one line on stderr starting with `error:`, containing `needle`.
pub fn assert_one_line_error(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure, stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
}

/// A free TCP port on 127.0.0.1 (bound by the OS, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A deployment prepared with the CLI: parts, identities, topology.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub model: String,
    pub servers: Vec<String>,
    pub topology: PathBuf,
    /// Network namespace the nodes run in (`ip netns exec`); `None`: this one.
    pub netns: Option<String>,
}

impl Deployment {
    /// `n` servers (gateway, remote-1, ...) and a user for shipped model `model`, on loopback:
    /// the remotes bootstrap from the gateway.
    pub fn new(model: &str, n: usize) -> Self {
        Self::with_addresses(model, n, |i| {
            let boot = if i == 0 {
                ""
            } else {
                "bootstrap = [\"gateway\"]\n"
            };
            format!("listen = [\"/ip4/127.0.0.1/tcp/{}\"]\n{boot}", free_port())
        })
    }

    /// As `new`, with the address lines (`listen`, `advertise`, `bootstrap`) of server `i` from
    /// `addresses(i)`; the user bootstraps from the gateway.
    pub fn with_addresses(model: &str, n: usize, addresses: impl Fn(usize) -> String) -> Self {
        Self::build(model, n, addresses, "ack = 5\ninference = 20\n")
    }

    /// As `new`, with the `[timeouts]` section's lines `timeouts` (e.g. `"open = 30\n"`).
    pub fn with_timeouts(model: &str, n: usize, timeouts: &str) -> Self {
        Self::build(
            model,
            n,
            |i| {
                let boot = if i == 0 {
                    ""
                } else {
                    "bootstrap = [\"gateway\"]\n"
                };
                format!("listen = [\"/ip4/127.0.0.1/tcp/{}\"]\n{boot}", free_port())
            },
            timeouts,
        )
    }

    fn build(model: &str, n: usize, addresses: impl Fn(usize) -> String, timeouts: &str) -> Self {
        let mut dir = tempfile::tempdir().unwrap();
        if std::env::var_os("SECO_KEEP_TEST_DIR").is_some() {
            dir.disable_cleanup(true);
            eprintln!("test directory kept: {}", dir.path().display());
        }
        let servers = seco_protocols::plan::default_server_names(n);
        let parts = dir.path().join("parts");
        let o = seco(&[
            "model",
            "split",
            &format!("models/{model}"),
            "--servers",
            &servers.join(","),
            "--out",
            parts.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut toml = format!("version = 1\nmodel = \"{model}\"\n\n[timeouts]\n{timeouts}\n");
        for (i, name) in servers.iter().enumerate() {
            let key = dir.path().join(name).join("identity.key");
            std::fs::create_dir_all(key.parent().unwrap()).unwrap();
            let peer = new_identity(&key);
            let role = if i == 0 { "gateway" } else { "remote" };
            toml.push_str(&format!(
                "[[node]]\nname = \"{name}\"\nrole = \"{role}\"\npeer_id = \"{peer}\"\n{}\n",
                addresses(i)
            ));
        }
        let user_key = dir.path().join("user.key");
        let peer = new_identity(&user_key);
        toml.push_str(&format!(
            "[[node]]\nname = \"user\"\nrole = \"user\"\npeer_id = \"{peer}\"\nbootstrap = [\"gateway\"]\nidentity = \"user.key\"\n"
        ));
        let topology = dir.path().join("topology.toml");
        std::fs::write(&topology, toml).unwrap();
        Self {
            dir,
            model: model.into(),
            servers,
            topology,
            netns: None,
        }
    }

    /// A command running the built `seco`, inside `netns` if set.
    pub fn seco_command(&self) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, seco_bin()]);
                c
            }
            None => Command::new(seco_bin()),
        };
        c.current_dir(repo());
        c
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Starts `seco node` for server `name`, logging to `<dir>/<name>.log`; waits for `ready:`.
    pub fn start(&self, name: &str) -> Node {
        self.start_with(name, &[])
    }

    /// As `start`, with `extra` arguments to `seco node` (e.g. `--mdns`).
    pub fn start_with(&self, name: &str, extra: &[&str]) -> Node {
        self.start_logged(name, extra, "info")
    }

    /// As `start_with`, with the log filter `log` (`SECO_LOG`).
    pub fn start_logged(&self, name: &str, extra: &[&str], filter: &str) -> Node {
        let i = self.servers.iter().position(|s| s == name).unwrap();
        let role = if i == 0 { "gateway" } else { "remote" };
        let log = self.path(&format!("{name}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = self
            .seco_command()
            .args([
                "node",
                "--role",
                role,
                "--name",
                name,
                "--stop-on-stdin-eof",
            ])
            .args(extra)
            .arg("--topology")
            .arg(&self.topology)
            .arg("--data-dir")
            .arg(self.path(name))
            .arg("--part")
            .arg(self.path(&format!("parts/{name}")))
            .env("SECO_LOG", filter)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "{name} not ready: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        assert!(ready.starts_with("ready:"), "{ready}");
        Node { child, ready, log }
    }

    /// Runs `seco infer` as this deployment's user on the input file `input`, with `extra`
    /// arguments (e.g. `--json`, `--retries 0`).
    pub fn infer(&self, input: &Path, extra: &[&str]) -> Output {
        let topology = self.topology.to_str().unwrap().to_string();
        let part = self.path("parts/user.json").to_str().unwrap().to_string();
        let input = input.to_str().unwrap().to_string();
        let mut args = vec![
            "infer",
            "--topology",
            &topology,
            "--model-part",
            &part,
            "--input",
            &input,
        ];
        args.extend_from_slice(extra);
        seco(&args)
    }

    /// Writes a JSON input file of test input `i` of the model and returns its path.
    pub fn input_file(&self, x: &[f32]) -> PathBuf {
        let p = self.path("input.json");
        std::fs::write(&p, serde_json::to_string(x).unwrap()).unwrap();
        p
    }
}

/// Test input `i` of shipped model `model` and its fixed-point reference logits (signed).
pub fn reference(model: &str, i: usize) -> (Vec<f32>, Vec<i64>) {
    let dir = repo().join("models").join(model);
    let m = Model::load(&dir).unwrap();
    let x = TestSet::load(&dir).unwrap().input(i).unwrap().to_vec();
    let q = m.quantize().unwrap();
    let enc = m.encode_input(&x).unwrap();
    let want = q
        .infer(&enc)
        .unwrap()
        .iter()
        .map(|&v| m.fixed_point.to_signed(v))
        .collect();
    (x, want)
}

/// `seco identity new --file key`; returns the printed peer id.
pub fn new_identity(key: &Path) -> String {
    let o = seco(&["identity", "new", "--file", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout(&o).trim().to_string()
}

/// A running `seco node`; killed when dropped.
pub struct Node {
    pub child: Child,
    pub ready: String,
    pub log: PathBuf,
}

impl Node {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `sig` (`KILL`, `STOP`, `CONT`, ...) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// SIGKILL, as a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends signal `sig` (`KILL`, `STOP`, `CONT`, ...) to process `pid` with `kill(1)`.
pub fn signal(pid: u32, sig: &str) {
    let o = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .output()
        .expect("run kill");
    assert!(
        o.status.success(),
        "kill -{sig} {pid}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
