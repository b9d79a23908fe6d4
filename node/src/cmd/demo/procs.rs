//! The demo's server processes: `seco node ...` children of this process, killed when the demo
//! ends (normally, on an error, on ctrl-c: `kill_on_drop`), and stopping on their own if the
//! demo dies (they watch their standard input, which the demo holds open).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// One server process.
pub struct Server {
    /// Node name.
    pub name: String,
    /// Its log file (stderr).
    pub log: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
}

/// What a server process is started with.
pub struct Launch<'a> {
    /// Node name.
    pub name: &'a str,
    /// `gateway` or `remote`.
    pub role: &'a str,
    /// Topology file.
    pub topology: &'a Path,
    /// Data directory.
    pub data_dir: &'a Path,
    /// Model part directory.
    pub part: &'a Path,
    /// Log file.
    pub log: PathBuf,
}

impl Server {
    /// Starts `seco node` (this same executable) for one server.
    pub fn spawn(l: Launch<'_>) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find the seco executable")?;
        let log = std::fs::File::create(&l.log)
            .with_context(|| format!("cannot create {}", l.log.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg("node")
            .arg("--topology")
            .arg(l.topology)
            .args(["--role", l.role, "--name", l.name])
            .arg("--data-dir")
            .arg(l.data_dir)
            .arg("--part")
            .arg(l.part)
            .arg("--stop-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        if std::env::var_os(seco_runtime::telemetry::LOG_ENV).is_none() {
            cmd.env(seco_runtime::telemetry::LOG_ENV, "info");
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start node {}", l.name))?;
        Ok(Self {
            name: l.name.to_string(),
            log: l.log,
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            child,
        })
    }

    /// Waits for the node's `ready:` line.
    pub async fn ready(&mut self, timeout: Duration) -> Result<String> {
        let stdout = self
            .stdout
            .take()
            .ok_or_else(|| anyhow!("node {}: no standard output", self.name))?;
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("ready:") {
                    return Ok::<_, std::io::Error>(Some(line));
                }
            }
            Ok(None)
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(Some(line))) => {
                // Keep draining its stdout so that the child never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                Ok(line)
            }
            Ok(Ok(None)) | Ok(Err(_)) => bail!(
                "node {} exited before it was ready: {}",
                self.name,
                last_log_line(&self.log)
            ),
            Err(_) => bail!(
                "node {} not ready after {timeout:?}: {}",
                self.name,
                last_log_line(&self.log)
            ),
        }
    }

    /// Stops the node gracefully (closes its standard input), killing it after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        drop(self.stdin.take());
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The last non-empty line of a log file (for error messages).
pub fn last_log_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .map_or_else(
            || format!("see {}", path.display()),
            |l| format!("{} (log {})", strip_ansi(&l), path.display()),
        )
}

/// Removes terminal color codes from a log line.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
