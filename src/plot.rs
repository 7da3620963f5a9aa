//! Plots people would rather look at than read, as SVG (no fonts or system libraries
//! needed): training curves and comparison charts. Behind the `cli` feature.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};

/// One named line of points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points `(x, y)`.
    pub points: Vec<(f64, f64)>,
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        reason: format!("cannot write plot: {e}"),
    }
}

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Writes a line chart of `series` to `path` (SVG), with axis labels and a legend.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written; [`Error::InvalidSetting`] without finite
/// points.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    if finite().next().is_none() {
        return Err(Error::InvalidSetting {
            name: "series",
            value: format!("{} series", series.len()),
            reason: "a chart needs at least one finite point",
        });
    }
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in finite() {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(|e| plot_error(path, e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| plot_error(path, e))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    root.present().map_err(|e| plot_error(path, e))
}

/// One bar with an error bar: `(label, mean, standard deviation)`.
pub type Bar = (String, f64, f64);

/// Writes a bar chart with error bars (mean +- std) to `path` (SVG).
///
/// # Errors
/// [`Error::Io`] if the file cannot be written; [`Error::InvalidSetting`] without bars.
pub fn bar_chart(
    path: &Path,
    title: &str,
    y_label: &str,
    bars: &[Bar],
    y_range: (f64, f64),
) -> Result<()> {
    if bars.is_empty() {
        return Err(Error::InvalidSetting {
            name: "bars",
            value: "0".into(),
            reason: "a chart needs at least one bar",
        });
    }
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let n = bars.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y_range.0..y_range.1)
        .map_err(|e| plot_error(path, e))?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    for (i, (_, mean, std)) in bars.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let x = i as f64;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.35, y_range.0), (x + 0.35, *mean)],
                colour.filled(),
            )))
            .map_err(|e| plot_error(path, e))?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, mean - std), (x, mean + std)],
                BLACK.stroke_width(2),
            )))
            .map_err(|e| plot_error(path, e))?;
    }
    root.present().map_err(|e| plot_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg_files() {
        let dir = std::env::temp_dir().join(format!("qfl-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let curve = dir.join("curve.svg");
        let s = Series {
            name: "train".into(),
            points: (1..20).map(|e| (e as f64, 1.0 / e as f64)).collect(),
        };
        line_chart(&curve, "Training", "epoch", "loss", &[s]).unwrap();
        let text = std::fs::read_to_string(&curve).unwrap();
        assert!(text.starts_with("<svg") && text.contains("Training") && text.contains("train"));
        let bars = dir.join("bars.svg");
        bar_chart(
            &bars,
            "AUC",
            "ROC AUC",
            &[("QFL".into(), 0.8, 0.05), ("LMF".into(), 0.7, 0.1)],
            (0.0, 1.0),
        )
        .unwrap();
        assert!(std::fs::read_to_string(&bars).unwrap().contains("QFL"));
        assert!(line_chart(&curve, "t", "x", "y", &[]).is_err());
        assert!(
            bar_chart(
                &dir.join("missing/dir/x.svg"),
                "t",
                "y",
                &[("a".into(), 0.5, 0.1)],
                (0.0, 1.0)
            )
            .is_err()
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
