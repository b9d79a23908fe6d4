//! The markdown tables of `seco report`: machine, secure inference per deployment, bytes per
//! party and phase, loopback vs LAN vs WAN, scaling with servers, seco-rs vs CrypTen, and the
//! user's cost per inference next to the model's size.

use std::fmt::Write;

use super::load::{Doc, Run, Spread};
use crate::cmd::common::fmt_bytes;

/// A run with the document it came from.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    pub doc: &'a Doc,
    pub run: &'a Run,
}

impl Entry<'_> {
    /// `seco-rs, 3 servers, processes / loopback` or `crypten, 3 parties, ...`.
    pub fn label(&self) -> String {
        // The in-process baseline of a `--deploy processes` run: say which run it belongs to.
        let of = self
            .doc
            .runs
            .iter()
            .find(|r| r.deploy == "processes" && self.run.deploy == "inprocess")
            .map_or(String::new(), |r| format!(" (in the {} run)", r.network));
        format!(
            "{}, {} {}, {}{of}",
            self.doc.tool(),
            self.doc.servers,
            if self.doc.tool() == "crypten" {
                "parties"
            } else {
                "servers"
            },
            self.run.label()
        )
    }
}

/// Every run of every document, sorted by model, tool, servers, deployment, network.
pub fn entries(docs: &[Doc]) -> Vec<Entry<'_>> {
    let order = |n: &str| match n {
        "loopback" => 0,
        "lan" => 1,
        "wan" => 2,
        _ => 3,
    };
    let mut v: Vec<Entry> = docs
        .iter()
        .flat_map(|doc| doc.runs.iter().map(move |run| Entry { doc, run }))
        .collect();
    v.sort_by_key(|e| {
        (
            e.doc.model.clone(),
            e.doc.tool() != "seco-rs",
            e.doc.servers,
            e.run.deploy != "processes",
            order(&e.run.network),
            e.run.provider.clone(),
        )
    });
    v
}

pub fn ms(x: f64) -> String {
    if x < 1.0 {
        format!("{x:.3} ms")
    } else if x < 100.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.0} ms")
    }
}

fn spread(s: &Spread) -> String {
    if s.n == 0 {
        "-".into()
    } else if s.n == 1 {
        ms(s.median_ms)
    } else {
        format!(
            "{} [{} .. {}]",
            ms(s.median_ms),
            ms(s.min_ms).trim_end_matches(" ms"),
            ms(s.max_ms).trim_end_matches(" ms")
        )
    }
}

fn opt_bytes(b: Option<u64>) -> String {
    b.map_or("-".into(), fmt_bytes)
}

/// The machines and dates of the documents.
pub fn machines(docs: &[Doc], out: &mut String) {
    out.push_str("| file | tool | date (UTC) | cores | CPU | load (1 min) at start |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for d in docs {
        let m = d.machine.clone().unwrap_or_default();
        let s = |k: &str| {
            m[k].as_str()
                .map(str::to_string)
                .or_else(|| m[k].as_f64().map(|v| format!("{v}")))
                .unwrap_or_else(|| "-".into())
        };
        let name = d
            .file
            .file_name()
            .map_or("".into(), |f| f.to_string_lossy());
        let _ = writeln!(
            out,
            "| `{name}` | {} {} | {} | {} | {} | {} |",
            d.tool(),
            d.version.as_deref().unwrap_or(""),
            s("date"),
            s("cores"),
            s("cpu_model"),
            s("load_1m")
        );
    }
}

/// One table per model: each deployment's phases, the input owner's bytes per inference and
/// the bytes sent by all parties per inference; seco-rs' plaintext baseline.
pub fn per_deployment(entries: &[Entry], docs: &[Doc], out: &mut String) {
    let mut models: Vec<&str> = entries.iter().map(|e| e.doc.model.as_str()).collect();
    models.dedup();
    for model in models {
        let _ = writeln!(out, "\n#### `{model}`\n");
        out.push_str("| tool, deployment | session open | preprocessing / bundle | online / inference | input owner's bytes / inference | bytes sent by all / inference | messages online (rounds) |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
        for e in entries.iter().filter(|e| e.doc.model == model) {
            let r = e.run;
            let msgs = r.messages.get("online").copied().unwrap_or(0);
            let rounds = r
                .rounds
                .get("online")
                .map_or(String::new(), |v| format!(" ({v:.0})"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} ({}) | {} | {msgs}{rounds} |",
                e.label(),
                spread(&r.open),
                spread(&r.prep),
                spread(&r.online),
                opt_bytes(r.owner_bytes()),
                r.owner(),
                fmt_bytes(r.sent("prep") + r.sent("online")),
            );
        }
        for d in docs.iter().filter(|d| d.model == model) {
            if let Some(p) = &d.plaintext {
                let _ = writeln!(
                    out,
                    "| {}, plaintext fixed point (`{}`) | | | {} | | | |",
                    d.tool(),
                    d.file.file_name().unwrap_or_default().to_string_lossy(),
                    spread(p)
                );
            }
        }
    }
}

/// Per party and phase of each run: bytes sent / received, messages, CPU.
pub fn per_party(entries: &[Entry], out: &mut String) {
    for e in entries.iter().filter(|e| !e.run.parties.is_empty()) {
        let _ = writeln!(out, "\n`{}`, {}:\n", e.doc.model, e.label());
        out.push_str("| party | session open (once) | preprocessing (per bundle) | online (per inference) |\n");
        out.push_str("| --- | --- | --- | --- |\n");
        for (party, phases) in &e.run.parties {
            let cell = |ph: &str| {
                phases.get(ph).map_or("-".into(), |u| {
                    format!(
                        "{} / {}, {} msg, {:.1} ms CPU",
                        fmt_bytes(u.bytes_sent),
                        fmt_bytes(u.bytes_received),
                        u.messages,
                        u.cpu_ms
                    )
                })
            };
            let _ = writeln!(
                out,
                "| {party} | {} | {} | {} |",
                cell("open"),
                cell("prep"),
                cell("online")
            );
        }
    }
}

/// Loopback vs LAN vs WAN for each seco-rs model and server count with more than one network:
/// online time, its ratio to loopback, and the bound `messages x rtt + bytes / rate`.
pub fn networks(entries: &[Entry], out: &mut String) -> bool {
    let shaped: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.doc.tool() == "seco-rs" && e.run.deploy == "processes")
        .collect();
    let mut keys: Vec<(&str, usize)> = shaped
        .iter()
        .map(|e| (e.doc.model.as_str(), e.doc.servers))
        .collect();
    keys.dedup();
    let mut any = false;
    for (model, servers) in keys {
        let group: Vec<&&Entry> = shaped
            .iter()
            .filter(|e| e.doc.model == model && e.doc.servers == servers)
            .collect();
        if group.len() < 2 {
            continue;
        }
        if !any {
            out.push_str("| model, servers | network | preprocessing / bundle | online / inference | online / loopback | bound: online messages x rtt + bytes sent / rate | online / bound |\n");
            out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
            any = true;
        }
        let base = group
            .iter()
            .find(|e| e.run.network == "loopback")
            .map(|e| e.run.online.median_ms);
        for e in group {
            let r = e.run;
            let (net, bound) = match (r.rate_mbit_s, r.rtt_ms) {
                (Some(rate), Some(rtt)) => {
                    let msgs = r.messages.get("online").copied().unwrap_or(0) as f64;
                    let bytes = r.sent("online") as f64;
                    let b = msgs * rtt + bytes * 8.0 / (rate * 1e6) * 1e3;
                    (format!("{} ({rate} Mbit/s, {rtt} ms)", r.network), Some(b))
                }
                _ => (r.network.clone(), None),
            };
            let _ = writeln!(
                out,
                "| `{model}`, {servers} | {net} | {} | {} | {} | {} | {} |",
                spread(&r.prep),
                spread(&r.online),
                base.map_or("-".into(), |b| format!("{:.1}x", r.online.median_ms / b)),
                bound.map_or("-".into(), ms),
                bound.map_or("-".into(), |b| format!("{:.2}", r.online.median_ms / b)),
            );
        }
    }
    any
}

/// Scaling with servers: seco-rs runs of one model and deployment at several server counts.
pub fn scaling(entries: &[Entry], out: &mut String) -> bool {
    let seco: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.doc.tool() == "seco-rs")
        .collect();
    let mut any = false;
    let mut keys: Vec<(String, String)> = seco
        .iter()
        .map(|e| (e.doc.model.clone(), e.run.label()))
        .collect();
    keys.sort();
    keys.dedup();
    for (model, label) in keys {
        let mut group: Vec<&&Entry> = seco
            .iter()
            .filter(|e| e.doc.model == model && e.run.label() == label)
            .collect();
        group.sort_by_key(|e| e.doc.servers);
        group.dedup_by_key(|e| e.doc.servers);
        if group.len() < 2 {
            continue;
        }
        if !any {
            out.push_str("| model, deployment | servers | session open | preprocessing / bundle | online / inference | user's bytes / inference | bytes sent by all / inference |\n");
            out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
            any = true;
        }
        for e in group {
            let r = e.run;
            let _ = writeln!(
                out,
                "| `{model}`, {label} | {} | {} | {} | {} | {} | {} |",
                e.doc.servers,
                spread(&r.open),
                spread(&r.prep),
                spread(&r.online),
                opt_bytes(r.owner_bytes()),
                fmt_bytes(r.sent("prep") + r.sent("online")),
            );
        }
    }
    any
}

/// The seco-rs run a CrypTen run is compared with: processes on loopback, same model, the same
/// number of servers as CrypTen has parties if measured, else the most servers measured.
pub fn seco_peer<'a>(entries: &[Entry<'a>], c: &Entry) -> Option<Entry<'a>> {
    let mut v: Vec<Entry<'a>> = entries
        .iter()
        .filter(|e| {
            e.doc.tool() == "seco-rs"
                && e.doc.model == c.doc.model
                && e.run.deploy == "processes"
                && e.run.network == c.run.network
        })
        .copied()
        .collect();
    v.sort_by_key(|e| (e.doc.servers == c.doc.servers, e.doc.servers));
    v.pop()
}

/// seco-rs vs CrypTen: online time and the input owner's bytes per inference as ratios.
/// Returns the headline lines (3 parties).
pub fn versus(entries: &[Entry], docs: &[Doc], out: &mut String) -> Vec<String> {
    let mut head = Vec::new();
    for d in docs.iter().filter(|d| d.tool() == "crypten") {
        if let Some(err) = &d.error {
            let _ = writeln!(
                out,
                "- CrypTen, `{}`, {} parties: not measured: {err}",
                d.model, d.servers
            );
        }
    }
    let crypten: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.doc.tool() == "crypten")
        .collect();
    if crypten.is_empty() {
        out.push_str("\nNo CrypTen runs in these files.\n");
        return head;
    }
    out.push_str("\n| model | CrypTen: parties, provider, network | CrypTen online / inference | seco-rs online / inference | CrypTen / seco-rs | CrypTen input owner's bytes / inference | seco-rs user's bytes / inference | CrypTen / seco-rs | targets (3 parties: online >= 5x, bytes >= 10x) |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for c in crypten {
        let Some(s) = seco_peer(entries, c) else {
            continue;
        };
        let t = c.run.online.median_ms / s.run.online.median_ms;
        let (cb, sb) = (c.run.owner_bytes(), s.run.owner_bytes());
        let b = match (cb, sb) {
            (Some(cb), Some(sb)) if sb > 0 => Some(cb as f64 / sb as f64),
            _ => None,
        };
        let provider = c.run.provider.clone().unwrap_or_default();
        let target = if c.doc.servers == 3 && s.doc.servers == 3 {
            let met = |ok: bool| if ok { "met" } else { "not met" };
            format!(
                "online {}, bytes {}",
                met(t >= 5.0),
                met(b.is_some_and(|b| b >= 10.0))
            )
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "| `{}` | {}, {provider}, {} | {} | {} ({} servers) | {t:.1}x | {} | {} | {} | {target} |",
            c.doc.model,
            c.doc.servers,
            c.run.network,
            spread(&c.run.online),
            spread(&s.run.online),
            s.doc.servers,
            opt_bytes(cb),
            opt_bytes(sb),
            b.map_or("-".into(), |b| format!("{b:.1}x")),
        );
        if c.doc.servers == 3 && s.doc.servers == 3 {
            head.push(format!(
                "`{}`, 3 servers vs CrypTen 3 parties ({provider}, {}): online {t:.1}x faster, the user's bytes per inference {} fewer",
                c.doc.model,
                c.run.network,
                b.map_or("-".into(), |b| format!("{b:.1}x")),
            ));
        }
    }
    head
}

/// The user's bytes per inference next to the model's size, per model.
pub fn user_cost(entries: &[Entry], docs: &[Doc], out: &mut String) {
    out.push_str("| model | parameters | model size (f32) | deployment | input owner's bytes / inference | / model size |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for e in entries
        .iter()
        .filter(|e| e.run.deploy == "processes" && e.run.network == "loopback")
    {
        let params = docs
            .iter()
            .filter(|d| d.model == e.doc.model)
            .find_map(|d| d.model_parameters.zip(d.model_bytes));
        let b = e.run.owner_bytes();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            e.doc.model,
            params.map_or("-".into(), |p| p.0.to_string()),
            opt_bytes(params.map(|p| p.1)),
            e.label(),
            opt_bytes(b),
            match (b, params) {
                (Some(b), Some((_, m))) if m > 0 => format!("{:.2}x", b as f64 / m as f64),
                _ => "-".into(),
            }
        );
    }
}
