//! SVG plots of a sweep: efficiency against cores for each workload, and the
//! mean utilisation over time of each workload's largest run.

use crate::SimReport;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;

/// Writes `efficiency.svg` and `utilisation.svg` into `dir`; returns the file
/// names written.
pub fn write_all(dir: &Path, reports: &[SimReport]) -> Result<Vec<String>, Box<dyn Error>> {
    let mut written = Vec::new();
    if reports
        .iter()
        .map(|r| r.cores)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1
    {
        efficiency(&dir.join("efficiency.svg"), reports)?;
        written.push("efficiency.svg".to_owned());
    }
    if !reports.is_empty() {
        utilisation(&dir.join("utilisation.svg"), reports)?;
        written.push("utilisation.svg".to_owned());
    }
    Ok(written)
}

fn by_workload(reports: &[SimReport]) -> BTreeMap<&str, Vec<&SimReport>> {
    let mut map: BTreeMap<&str, Vec<&SimReport>> = BTreeMap::new();
    for r in reports {
        map.entry(r.workload.as_str()).or_default().push(r);
    }
    for runs in map.values_mut() {
        runs.sort_by_key(|r| r.cores);
    }
    map
}

fn efficiency(path: &Path, reports: &[SimReport]) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_cores = reports.iter().map(|r| r.cores).max().unwrap_or(2).max(2) as f64;
    let top = reports.iter().map(|r| r.efficiency).fold(1.0, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "simulated parallel efficiency (speedup / cores; server: work / capacity) against cores",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .right_y_label_area_size(10)
        .build_cartesian_2d((1f64..max_cores).log_scale(), 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("cores (log scale)")
        .y_desc("efficiency")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for (i, (workload, runs)) in by_workload(reports).iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let style = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                runs.iter().map(|r| (r.cores as f64, r.efficiency)),
                style,
            ))?
            .label(*workload)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        chart.draw_series(
            runs.iter()
                .map(|r| Circle::new((r.cores as f64, r.efficiency), 3, color.filled())),
        )?;
    }
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

fn utilisation(path: &Path, reports: &[SimReport]) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "mean core utilisation over the run, each workload at its largest core count",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..1.05)?;
    chart
        .configure_mesh()
        .x_desc("fraction of the makespan")
        .y_desc("busy fraction of all cores")
        .draw()?;
    for (i, (workload, runs)) in by_workload(reports).iter().enumerate() {
        let Some(r) = runs.last() else { continue };
        let u = &r.utilisation;
        let span = r.makespan_ns.max(1) as f64;
        let color = Palette99::pick(i).to_rgba();
        let style = color.stroke_width(2);
        let points: Vec<(f64, f64)> = u
            .mean_over_time
            .iter()
            .enumerate()
            .map(|(b, &v)| ((((b as f64) + 0.5) * u.bucket_ns as f64 / span).min(1.0), v))
            .collect();
        chart
            .draw_series(LineSeries::new(points, style))?
            .label(format!("{workload} ({} cores)", r.cores))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// The legend both plots draw, lower left on a light background.
fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<(), Box<dyn Error>>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
