//! The chart: throughput and p99 latency per workload, one bar per system,
//! both on log scales (the systems differ by orders of magnitude), as SVG.

use super::report::{Report, Sys, Work};
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One colour per system, in [`Sys::ALL`] order.
const COLORS: [RGBColor; 5] = [
    RGBColor(0x1b, 0x9e, 0x77),
    RGBColor(0x75, 0x70, 0xb3),
    RGBColor(0xd9, 0x5f, 0x02),
    RGBColor(0xe7, 0x29, 0x8a),
    RGBColor(0x66, 0x66, 0x66),
];

type Values = Vec<[Option<f64>; 5]>;

/// Writes the chart to `path`.
pub fn write(report: &Report, path: &Path) -> Result<()> {
    let works: Vec<Work> = Work::ALL
        .into_iter()
        .filter(|w| Sys::ALL.iter().any(|s| report.outcome(*w, *s).is_some()))
        .collect();
    let pick = |f: &dyn Fn(&super::workloads::Measured) -> f64| -> Values {
        works
            .iter()
            .map(|w| Sys::ALL.map(|s| report.outcome(*w, s).map(|o| f(&o.measured))))
            .collect()
    };
    let throughput = pick(&|m| m.throughput());
    let p99 = pick(&|m| m.latency_us(0.99));
    let names: Vec<&str> = works.iter().map(|w| w.short()).collect();

    let root = SVGBackend::new(path, (1280, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("chart: {e}"))?;
    // One legend strip on top, so no bar is ever hidden behind it; each
    // entry as wide as its name (about 8 px a character at 15 px).
    let (legend, plots) = root.split_vertically(40);
    let mut x = 40;
    for (k, sys) in Sys::ALL.iter().enumerate() {
        legend
            .draw(&Rectangle::new([(x, 14), (x + 16, 30)], COLORS[k].filled()))
            .map_err(|e| anyhow!("chart: {e:?}"))?;
        legend
            .draw(&Text::new(sys.name(), (x + 22, 15), ("sans-serif", 15)))
            .map_err(|e| anyhow!("chart: {e:?}"))?;
        x += 22 + 8 * sys.name().len() as i32 + 24;
    }
    let (left, right) = plots.split_horizontally(640);
    panel(
        &left,
        "Throughput (operations/s, log scale)",
        &names,
        &throughput,
    )?;
    panel(
        &right,
        "p99 latency (µs, log scale; admit: per batch)",
        &names,
        &p99,
    )?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    names: &[&str],
    values: &Values,
) -> Result<()> {
    let all: Vec<f64> = values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|v| *v > 0.0)
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = if all.is_empty() {
        (1.0, 10.0)
    } else {
        (lo / 3.0, hi * 3.0)
    };
    let err = |e| anyhow!("chart: {e:?}");
    let n = names.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..n - 0.5, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len() + 1)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names
                    .get(i as usize)
                    .map_or(String::new(), |s| s.to_string())
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| short(*y))
        .draw()
        .map_err(err)?;
    let width = 0.8 / COLORS.len() as f64;
    for (k, color) in COLORS.iter().enumerate() {
        let bars = values.iter().enumerate().filter_map(|(i, v)| {
            let v = v[k]?;
            let x0 = i as f64 - 0.4 + k as f64 * width;
            Some(Rectangle::new(
                [(x0, lo), (x0 + width * 0.9, v)],
                color.filled(),
            ))
        });
        chart.draw_series(bars).map_err(err)?;
    }
    Ok(())
}

/// 1500 → "1.5k", 2e6 → "2M".
fn short(v: f64) -> String {
    let (d, unit) = if v >= 1e9 {
        (1e9, "G")
    } else if v >= 1e6 {
        (1e6, "M")
    } else if v >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    if x >= 10.0 || (x - x.round()).abs() < 0.05 {
        format!("{x:.0}{unit}")
    } else {
        format!("{x:.1}{unit}")
    }
}
