//! What `seco bench` measures and how it prints it: per deployment (in-process, processes on a
//! network), the median and spread over the inputs of each phase's wall time, and per party
//! and phase the bytes, messages and CPU time (per bundle for preprocessing, per inference
//! online), as tables or one JSON document.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::cmd::common::fmt_bytes;

/// The three phases reported, in order; `open` is session + key generation + OT setup.
pub const PHASES: [&str; 3] = ["open", "prep", "online"];

/// The reported phase of a counter's phase name, if any.
pub fn phase_group(name: &str) -> Option<&'static str> {
    match name {
        "session" | "keygen" | "setup" => Some("open"),
        "prep" => Some("prep"),
        "online" => Some("online"),
        _ => None,
    }
}

/// Median and spread of a few wall times, in milliseconds (read back by `seco report`).
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Spread {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub median_ms: f64,
    /// Smallest.
    pub min_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Spread {
    /// Of `samples` (empty: all zero).
    pub fn of(samples: &[Duration]) -> Self {
        let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return Self::default();
        }
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            n,
            median_ms: median,
            min_ms: v[0],
            max_ms: v[n - 1],
        }
    }
}

/// One party's usage in one phase, per bundle (prep), per inference (online) or once (open).
/// The report generator (`seco report`) reads it back; CrypTen's JSON may leave fields out.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Usage {
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Messages sent.
    pub messages: u64,
    /// Time in the party's state machine.
    pub cpu_ms: f64,
}

impl Usage {
    /// Bytes sent and received.
    pub fn bytes(&self) -> u64 {
        self.bytes_sent + self.bytes_received
    }

    /// Adds a counter.
    pub fn add(&mut self, bytes_sent: u64, bytes_received: u64, messages: u64, cpu: Duration) {
        self.bytes_sent += bytes_sent;
        self.bytes_received += bytes_received;
        self.messages += messages;
        self.cpu_ms += cpu.as_secs_f64() * 1e3;
    }

    fn per(self, n: usize) -> Self {
        let k = n.max(1) as u64;
        Self {
            bytes_sent: self.bytes_sent / k,
            bytes_received: self.bytes_received / k,
            messages: self.messages / k,
            cpu_ms: self.cpu_ms / k as f64,
        }
    }
}

/// One deployment's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// `inprocess` or `processes`.
    pub deploy: String,
    /// `none` (in-process router), `loopback`, `lan`, `wan`.
    pub network: String,
    /// Link rate in Mbit/s, if shaped.
    pub rate_mbit_s: Option<f64>,
    /// Link round trip in ms, if shaped.
    pub rtt_ms: Option<f64>,
    /// Session open (once per run).
    pub open: Spread,
    /// Preparation of one bundle, over the bundles.
    pub prep: Spread,
    /// One inference, over the inputs.
    pub online: Spread,
    /// Party -> phase -> usage (prep per bundle, online per inference).
    pub parties: BTreeMap<String, BTreeMap<String, Usage>>,
    /// Messages sent by all parties per phase (per bundle / inference): a bound on its rounds.
    pub messages: BTreeMap<String, u64>,
    /// Inferences whose logits equal the plaintext fixed-point reference.
    pub bit_exact: usize,
    /// Parties whose counters were missing.
    pub missing_counters: Vec<String>,
    /// TCP connections that passed a shaping relay (shaped networks only).
    pub shaped_connections: Option<usize>,
    /// Peak resident set size of each server process in MiB (`VmHWM` when it stopped;
    /// separate processes only: in process, every party shares one).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub peak_rss_mib: BTreeMap<String, f64>,
}

impl Measurement {
    /// Builds one from wall times and raw counters (totals over the run).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        deploy: &str,
        network: &str,
        shape: Option<super::relay::Shape>,
        open: Duration,
        prep: &[Duration],
        online: &[Duration],
        totals: BTreeMap<String, BTreeMap<String, Usage>>,
        bit_exact: usize,
    ) -> Self {
        let parties: BTreeMap<String, BTreeMap<String, Usage>> = totals
            .into_iter()
            .map(|(party, phases)| {
                let phases = phases
                    .into_iter()
                    .map(|(ph, u)| {
                        let n = match ph.as_str() {
                            "prep" => prep.len(),
                            "online" => online.len(),
                            _ => 1,
                        };
                        (ph, u.per(n))
                    })
                    .collect();
                (party, phases)
            })
            .collect();
        let messages = PHASES
            .iter()
            .map(|ph| {
                let m = parties
                    .values()
                    .filter_map(|p| p.get(*ph))
                    .map(|u| u.messages)
                    .sum();
                ((*ph).to_string(), m)
            })
            .collect();
        Self {
            deploy: deploy.into(),
            network: network.into(),
            rate_mbit_s: shape.map(|s| s.bytes_per_sec * 8.0 / 1e6),
            rtt_ms: shape.map(|s| s.rtt.as_secs_f64() * 1e3),
            open: Spread::of(&[open]),
            prep: Spread::of(prep),
            online: Spread::of(online),
            parties,
            messages,
            bit_exact,
            missing_counters: Vec::new(),
            shaped_connections: None,
            peak_rss_mib: BTreeMap::new(),
        }
    }

    fn title(&self) -> String {
        match (self.rate_mbit_s, self.rtt_ms) {
            (Some(r), Some(t)) => format!(
                "{} / {} ({r} Mbit/s, {t} ms rtt)",
                self.deploy, self.network
            ),
            _ => format!("{} / {}", self.deploy, self.network),
        }
    }
}

fn cell(s: &Spread) -> String {
    format!("{:.1} ms [{:.1} .. {:.1}]", s.median_ms, s.min_ms, s.max_ms)
}

/// Prints the wall times of every measurement side by side, then each one's parties.
pub fn print(ms: &[Measurement], plaintext: &Spread) {
    println!("\nwall time at the user: median [min .. max] over the inputs");
    println!(
        "  {:<44} {:>28} {:>28} {:>28}",
        "deployment", "session open", "preprocessing / bundle", "online / inference"
    );
    for m in ms {
        println!(
            "  {:<44} {:>28} {:>28} {:>28}",
            m.title(),
            cell(&m.open),
            cell(&m.prep),
            cell(&m.online)
        );
    }
    println!(
        "  {:<44} {:>28} {:>28} {:>28}",
        "plaintext fixed point (this process)",
        "-",
        "-",
        format!(
            "{:.3} ms [{:.3} .. {:.3}]",
            plaintext.median_ms, plaintext.min_ms, plaintext.max_ms
        )
    );
    for m in ms {
        println!(
            "\n{}: bytes sent / received, messages sent, CPU in the state machine",
            m.title()
        );
        println!(
            "  {:<10} | {:<40} | {:<40} | {:<40}",
            "party", "session open (once)", "preprocessing (per bundle)", "online (per inference)"
        );
        for (party, phases) in &m.parties {
            let cells: Vec<String> = PHASES
                .iter()
                .map(|ph| {
                    let u = phases.get(*ph).copied().unwrap_or_default();
                    format!(
                        "{} / {}, {} msg, {:.1} ms",
                        fmt_bytes(u.bytes_sent),
                        fmt_bytes(u.bytes_received),
                        u.messages,
                        u.cpu_ms
                    )
                })
                .collect();
            println!(
                "  {:<10} | {:<40} | {:<40} | {:<40}",
                party, cells[0], cells[1], cells[2]
            );
        }
        let msg = |ph: &str| m.messages.get(ph).copied().unwrap_or(0);
        for p in &m.missing_counters {
            println!("  {p:<10} | (no counters: see its log)");
        }
        if !m.peak_rss_mib.is_empty() {
            let rss: Vec<String> = m
                .peak_rss_mib
                .iter()
                .map(|(p, mib)| format!("{p} {mib:.1} MiB"))
                .collect();
            println!("  peak RSS (VmHWM) per server: {}", rss.join(", "));
        }
        if let Some(c) = m.shaped_connections {
            println!("  TCP connections through the shaping relays: {c}");
        }
        println!(
            "  messages sent by all parties: open {}, per bundle {}, per inference {}",
            msg("open"),
            msg("prep"),
            msg("online")
        );
    }
}
