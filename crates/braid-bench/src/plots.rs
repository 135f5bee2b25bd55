//! Plots of a run, drawn from its records: braid's ratio against its best peer
//! for every figure, speedup curves of the thread-scale profile, and the wake
//! delays of the latency-under-load test. SVG files beside `report.md`.

use crate::report::{Distribution, Record};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;

/// Whether a larger number is better for this record's figure: throughput,
/// speedup and efficiency (everything else is a time, a delay or a size).
fn higher_is_better(r: &Record) -> bool {
    matches!(r.unit.as_str(), "req/s" | "x" | "fraction")
}

/// Writes the plots that the records allow; returns the file names written.
pub(crate) fn write_all(
    dir: &Path,
    records: &[Record],
    distributions: &[Distribution],
) -> Result<Vec<String>, Box<dyn Error>> {
    let mut written = Vec::new();
    if ratios(&dir.join("ratios.svg"), records)? {
        written.push("ratios.svg".to_owned());
    }
    if scaling(&dir.join("scaling.svg"), records)? {
        written.push("scaling.svg".to_owned());
    }
    if latency(&dir.join("latency.svg"), distributions)? {
        written.push("latency.svg".to_owned());
    }
    Ok(written)
}

/// One bar per figure: braid against the best peer of that figure, on a log
/// scale (right of 1: braid is better).
fn ratios(path: &Path, records: &[Record]) -> Result<bool, Box<dyn Error>> {
    let mut groups: BTreeMap<(String, String, usize), Vec<&Record>> = BTreeMap::new();
    for r in records {
        groups
            .entry((r.workload.clone(), r.metric.clone(), r.cores))
            .or_default()
            .push(r);
    }
    let mut bars: Vec<(String, f64, String)> = Vec::new();
    for ((workload, metric, cores), rs) in &groups {
        if metric == "efficiency" {
            continue; // the speedup bar says the same
        }
        let Some(braid) = rs.iter().find(|r| r.runtime == "braid") else {
            continue;
        };
        let better = higher_is_better(braid);
        let best = rs
            .iter()
            .filter(|r| r.runtime != "braid" && r.median > 0.0 && braid.median > 0.0)
            .map(|r| {
                let ratio = if better {
                    braid.median / r.median
                } else {
                    r.median / braid.median
                };
                (ratio, r.runtime.clone())
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((ratio, peer)) = best {
            bars.push((format!("{workload} · {metric} · {cores}c"), ratio, peer));
        }
    }
    if bars.is_empty() {
        return Ok(false);
    }
    let height = 60 + 22 * bars.len() as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (lo, hi) = bars.iter().fold((0.5f64, 2.0f64), |(lo, hi), b| {
        (lo.min(b.1 / 1.5), hi.max(b.1 * 1.5))
    });
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "braid vs its best peer in the same run (log scale; right of 1 = braid better)",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(330)
        .build_cartesian_2d((lo..hi).log_scale(), -0.5f64..bars.len() as f64 - 0.5)?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|y| {
            // Ticks fall on the bars' centres, 0, 1, 2 …
            let i = y.round();
            if (y - i).abs() > 0.01 || i < 0.0 {
                return String::new();
            }
            labels.get(i as usize).cloned().unwrap_or_default()
        })
        .x_desc("ratio")
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, ratio, _))| {
        let color = if *ratio >= 1.0 {
            GREEN.mix(0.7)
        } else {
            RED.mix(0.7)
        };
        let y = i as f64;
        Rectangle::new([(1.0, y - 0.35), (*ratio, y + 0.35)], color.filled())
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, ratio, peer))| {
        Text::new(
            format!("{ratio:.2}x vs {peer}"),
            (if *ratio >= 1.0 { *ratio } else { 1.0 }, i as f64 - 0.2),
            ("sans-serif", 11),
        )
    }))?;
    root.present()?;
    Ok(true)
}

/// Speedup (left) and efficiency (right) against worker count for each
/// thread-scale workload and runtime, with the ideal lines.
fn scaling(path: &Path, records: &[Record]) -> Result<bool, Box<dyn Error>> {
    if !records.iter().any(|r| r.metric == "speedup") {
        return Ok(false);
    }
    let root = SVGBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    scale_panel(&left, records, "speedup", |w| w)?;
    scale_panel(&right, records, "efficiency", |_| 1.0)?;
    root.present()?;
    Ok(true)
}

/// One panel of the scaling plot: `metric` of every workload and runtime
/// against workers (1 worker: the ideal value), and `ideal` dashed.
fn scale_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    records: &[Record],
    metric: &str,
    ideal: fn(f64) -> f64,
) -> Result<(), Box<dyn Error>> {
    let mut series: BTreeMap<(String, String), Vec<(usize, f64)>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.metric == metric) {
        series
            .entry((r.workload.clone(), r.runtime.clone()))
            .or_insert_with(|| vec![(1, ideal(1.0))])
            .push((r.cores, r.median));
    }
    let max_w = series
        .values()
        .flat_map(|s| s.iter().map(|p| p.0))
        .max()
        .unwrap_or(2) as f64;
    let max_y = series
        .values()
        .flat_map(|s| s.iter().map(|p| p.1))
        .fold(ideal(max_w).max(ideal(1.0)), f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("thread-scale profile: {metric} against workers (dashed: ideal)"),
            ("sans-serif", 16),
        )
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(1f64..max_w, 0f64..max_y * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("workers")
        .y_desc(metric)
        .draw()?;
    chart.draw_series(DashedLineSeries::new(
        [(1.0, ideal(1.0)), (max_w, ideal(max_w))],
        5,
        5,
        BLACK.stroke_width(1),
    ))?;
    for (i, ((workload, runtime), points)) in series.iter().enumerate() {
        let mut points = points.clone();
        points.sort_by_key(|p| p.0);
        let color = Palette99::pick(i / 2).to_rgba();
        let style = if runtime == "braid" {
            color.stroke_width(3)
        } else {
            color.stroke_width(1)
        };
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0 as f64, p.1)),
                style,
            ))?
            .label(format!("{workload} ({runtime})"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()?;
    Ok(())
}

/// Position of quantile `q` on a "nines" axis: 0 at p0, 1 at p90, 2 at p99, …
fn nines(q: f64) -> f64 {
    -(1.0 - q).log10()
}

/// The 1 ms sleeper's wake delays beside hogs: one curve per runtime, delay
/// (log scale) against quantile on a "nines" axis, so the median and the far
/// tail are both readable.
fn latency(path: &Path, distributions: &[Distribution]) -> Result<bool, Box<dyn Error>> {
    let ds: Vec<&Distribution> = distributions
        .iter()
        .filter(|d| d.workload == "latency_under_load" && !d.values.is_empty())
        .collect();
    if ds.is_empty() {
        return Ok(false);
    }
    let curve = |d: &Distribution| -> Vec<(f64, f64)> {
        let n = d.values.len();
        d.values
            .iter()
            .enumerate()
            .map(|(i, v)| (nines(i as f64 / n as f64), v.max(1.0)))
            .collect()
    };
    let x_max = ds
        .iter()
        .map(|d| nines((d.values.len() - 1) as f64 / d.values.len() as f64))
        .fold(2.0f64, f64::max);
    let y_max = ds
        .iter()
        .filter_map(|d| d.values.last().copied())
        .fold(10.0f64, f64::max)
        * 2.0;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "latency under load: wake delay of a 1 ms sleeper with every core hogged",
            ("sans-serif", 16),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, (1f64..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(x_max.ceil() as usize + 1)
        .x_label_formatter(&|x| {
            let q = 100.0 * (1.0 - 10f64.powf(-x));
            format!("p{}", (q * 1000.0).round() / 1000.0)
        })
        .x_desc("quantile of all wakes in all measured runs")
        .y_desc("delay beyond 1 ms, µs (log)")
        .draw()?;
    for (k, d) in ds.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let style = if d.runtime == "braid" {
            color.stroke_width(3)
        } else {
            color.stroke_width(1)
        };
        chart
            .draw_series(LineSeries::new(curve(d), style))?
            .label(format!("{} ({} wakes)", d.runtime, d.values.len()))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(true)
}
