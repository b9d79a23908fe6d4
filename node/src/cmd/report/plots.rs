//! The SVG plots of `seco report` (plotters' SVG backend, its built-in text estimate: no font
//! files needed): horizontal bars on a log scale, one bar per deployment.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::tables::Entry;

/// A horizontal bar chart of `items` (label, value > 0) on a log axis, written to `path`.
pub fn hbar(path: &Path, title: &str, unit: &str, items: &[(String, f64)]) -> Result<()> {
    let items: Vec<&(String, f64)> = items.iter().filter(|(_, v)| *v > 0.0).collect();
    if items.is_empty() {
        return Ok(());
    }
    let lo = items.iter().map(|i| i.1).fold(f64::INFINITY, f64::min);
    let hi = items.iter().map(|i| i.1).fold(0.0, f64::max);
    let (lo, hi) = (
        10f64.powf((lo.log10() - 0.3).floor()),
        10f64.powf((hi.log10() + 0.3).ceil()),
    );
    let longest = items.iter().map(|i| i.0.len()).max().unwrap_or(10) as u32;
    let height = 90 + 28 * items.len() as u32;
    let width = 560 + 6 * longest;
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("plot {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let n = items.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(6 * longest + 20)
        .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(unit)
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => n
                .checked_sub(1 + *i)
                .and_then(|k| items.get(k))
                .map_or(String::new(), |x| x.0.clone()),
            _ => String::new(),
        })
        .x_label_formatter(&|v| fmt_value(*v, unit).trim().to_string())
        .draw()
        .map_err(|e| err(&e))?;
    let palette = [BLUE, RED, GREEN, MAGENTA, CYAN];
    chart
        .draw_series(items.iter().enumerate().map(|(k, (label, v))| {
            let i = n - 1 - k;
            let color = palette[label_group(label) % palette.len()];
            let mut bar = Rectangle::new(
                [
                    (lo, SegmentValue::Exact(i)),
                    (*v, SegmentValue::Exact(i + 1)),
                ],
                color.mix(0.6).filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(items.iter().enumerate().map(|(k, (_, v))| {
            let i = n - 1 - k;
            let style = TextStyle::from(("sans-serif", 12).into_font())
                .pos(Pos::new(HPos::Left, VPos::Center));
            Text::new(fmt_value(*v, unit), (*v, SegmentValue::CenterOf(i)), style)
        }))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Colour group of a bar: by tool and deployment.
fn label_group(label: &str) -> usize {
    if label.contains("crypten") {
        1
    } else if label.contains("inprocess") {
        2
    } else if label.contains("model size") {
        3
    } else {
        0
    }
}

fn fmt_value(v: f64, unit: &str) -> String {
    if unit.starts_with("bytes") {
        format!(" {}", crate::cmd::common::fmt_bytes(v as u64))
    } else {
        format!(" {}", super::tables::ms(v))
    }
}

/// The plots of the report, written into `dir`; returns (file name, caption) of each written.
pub fn all(entries: &[Entry], dir: &Path) -> Result<Vec<(String, String)>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the plot directory {}", dir.display()))?;
    let mut out = Vec::new();
    let name = |e: &Entry| format!("{}: {}", e.doc.model, e.label());
    let online: Vec<(String, f64)> = entries
        .iter()
        .map(|e| (name(e), e.run.online.median_ms))
        .collect();
    hbar(
        &dir.join("online.svg"),
        "online time per inference (median)",
        "ms (log scale)",
        &online,
    )?;
    out.push(("online.svg".into(), "Online time per inference".into()));

    let mut bytes: Vec<(String, f64)> = Vec::new();
    let mut models: Vec<&str> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| e.run.deploy == "processes" && e.run.network == "loopback")
    {
        if !models.contains(&e.doc.model.as_str()) {
            models.push(&e.doc.model);
            if let Some(m) = e.doc.model_bytes {
                bytes.push((format!("{}: model size (f32)", e.doc.model), m as f64));
            }
        }
        if let Some(b) = e.run.owner_bytes() {
            bytes.push((format!("{} ({})", name(e), e.run.owner()), b as f64));
        }
    }
    if !bytes.is_empty() {
        hbar(
            &dir.join("bytes.svg"),
            "input owner's bytes per inference, loopback",
            "bytes (log scale)",
            &bytes,
        )?;
        out.push((
            "bytes.svg".into(),
            "Input owner's bytes per inference next to the model size".into(),
        ));
    }

    let nets: Vec<(String, f64)> = entries
        .iter()
        .filter(|e| e.doc.tool() == "seco-rs" && e.run.deploy == "processes")
        .map(|e| (name(e), e.run.online.median_ms))
        .collect();
    let distinct = |v: &[(String, f64)]| v.len() > 1;
    if distinct(&nets) {
        hbar(
            &dir.join("networks.svg"),
            "seco-rs online time by network and servers",
            "ms (log scale)",
            &nets,
        )?;
        out.push((
            "networks.svg".into(),
            "seco-rs online time: loopback, LAN, WAN, servers".into(),
        ));
    }
    Ok(out)
}
