//! The cost-curve chart: measured proving times against gas, the fitted line and its error band.

use std::path::Path;

use plotters::prelude::*;

use crate::profile::Profile;
use crate::{ProfileError, Result};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn perr(e: impl std::fmt::Display) -> ProfileError {
    ProfileError::Plot(e.to_string())
}

/// Half-width of the error band, as a fraction of the prediction: the largest relative miss of
/// any size's median, and at least 5%.
fn band(p: &Profile) -> f64 {
    p.sizes
        .iter()
        .map(|s| s.prediction_error.abs())
        .fold(0.05, f64::max)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    p: &Profile,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(perr)?;
    let gmax = p.sizes.iter().map(|s| s.gas).max().unwrap_or(1) as f64;
    let tmax = p
        .sizes
        .iter()
        .flat_map(|s| s.runs.iter().map(|r| r.prove))
        .fold(p.curve.predict(gmax as u64), f64::max);
    let bw = band(p);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} {}: proving time against gas", p.name, p.version),
            ("sans-serif", 26),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..gmax * 1.1, 0f64..tmax * 1.25)
        .map_err(perr)?;
    chart
        .configure_mesh()
        .x_desc("gas per task")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("proving seconds")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(perr)?;
    let xs: Vec<f64> = (0..=100).map(|i| gmax * 1.1 * i as f64 / 100.0).collect();
    let c = &p.curve;
    chart
        .draw_series(AreaSeries::new(
            xs.iter()
                .map(|&x| (x, (c.fixed_seconds + c.seconds_per_gas * x) * (1.0 + bw))),
            0.0,
            RGBColor(200, 220, 255).mix(0.6),
        ))
        .map_err(perr)?;
    chart
        .draw_series(AreaSeries::new(
            xs.iter().map(|&x| {
                (
                    x,
                    ((c.fixed_seconds + c.seconds_per_gas * x) * (1.0 - bw)).max(0.0),
                )
            }),
            0.0,
            WHITE.mix(1.0),
        ))
        .map_err(perr)?;
    chart
        .draw_series(LineSeries::new(
            xs.iter()
                .map(|&x| (x, c.fixed_seconds + c.seconds_per_gas * x)),
            BLUE.stroke_width(2),
        ))
        .map_err(perr)?
        .label(format!(
            "fit: {:.3} s + {:.3e} s/gas (R² {:.3})",
            c.fixed_seconds, c.seconds_per_gas, c.r2
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(p.sizes.iter().flat_map(|s| {
            s.runs
                .iter()
                .map(move |r| Circle::new((s.gas as f64, r.prove), 3, RED.mix(0.5).filled()))
        }))
        .map_err(perr)?
        .label("measured runs")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, RED.filled()));
    chart
        .draw_series(
            p.sizes
                .iter()
                .map(|s| Cross::new((s.gas as f64, s.median_seconds), 7, BLACK.stroke_width(2))),
        )
        .map_err(perr)?
        .label("median per size")
        .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (0.0, 0.0)],
            RGBColor(200, 220, 255).filled(),
        )))
        .map_err(perr)?
        .label(format!("error band ±{:.1}%", bw * 100.0))
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 5), (x + 20, y + 5)],
                RGBColor(200, 220, 255).filled(),
            )
        });
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(perr)?;
    root.present().map_err(perr)
}

/// Writes the chart; the format follows the extension (`.svg` or `.png`).
pub fn plot(p: &Profile, path: &Path) -> Result<()> {
    register();
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => draw(SVGBackend::new(path, (1000, 650)).into_drawing_area(), p),
        Some("png") => draw(BitMapBackend::new(path, (1000, 650)).into_drawing_area(), p),
        _ => Err(ProfileError::Plot(format!(
            "{}: use a .svg or .png file name",
            path.display()
        ))),
    }
}
