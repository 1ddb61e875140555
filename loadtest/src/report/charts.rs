//! Inline SVG line charts (plotters' SVG backend, no fonts, no scripts).
//!
//! One shape for every chart of the report: time in seconds since the run's
//! start on x, a count or a latency on y from 0, a few named lines and an
//! optional limit drawn dashed (capacity, admit_per_s, the poll budget). A
//! chart with nothing to draw, or one plotters fails on, becomes a short
//! "no data" note instead: a report of an empty run is still a report.
//! The legend is HTML next to the chart ([`legend`]), so it never hides
//! a line.

use plotters::prelude::*;
use plotters::series::DashedLineSeries;

/// The report's palette: calm, distinguishable, readable on white.
pub(crate) const BLUE: RGBColor = RGBColor(37, 99, 235);
pub(crate) const GREEN: RGBColor = RGBColor(22, 163, 74);
pub(crate) const AMBER: RGBColor = RGBColor(217, 119, 6);
pub(crate) const PURPLE: RGBColor = RGBColor(147, 51, 234);
pub(crate) const SLATE: RGBColor = RGBColor(100, 116, 139);
pub(crate) const LIMIT: RGBColor = RGBColor(220, 38, 38);
const GRID: RGBColor = RGBColor(226, 232, 240);
const AXIS: RGBColor = RGBColor(71, 85, 105);

#[derive(Clone, Debug)]
pub(crate) struct Line {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

impl Line {
    pub(crate) fn new(name: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Line {
        Line {
            name: name.to_owned(),
            color,
            points,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Chart {
    pub y_desc: String,
    pub lines: Vec<Line>,
    /// A horizontal limit: its label and value.
    pub limit: Option<(String, f64)>,
    /// The x axis reaches at least this far (the run's length), so the
    /// charts of one report share their time axis.
    pub x_end: f64,
}

/// `#rrggbb`.
pub(crate) fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The chart's legend as HTML: a swatch and the (escaped) name per line, a
/// dashed one for the limit.
pub(crate) fn legend(chart: &Chart) -> String {
    let mut s = String::from("<div class=\"legend\">");
    for l in &chart.lines {
        s.push_str(&format!(
            "<span><i style=\"background:{}\"></i>{}</span>",
            css(l.color),
            super::html::esc(&l.name)
        ));
    }
    if let Some((name, _)) = &chart.limit {
        s.push_str(&format!(
            "<span><i class=\"dash\" style=\"border-color:{}\"></i>{}</span>",
            css(LIMIT),
            super::html::esc(name)
        ));
    }
    s.push_str("</div>");
    s
}

pub(crate) const WIDTH: u32 = 560;
pub(crate) const HEIGHT: u32 = 260;

/// `1.2k`, `3.4M`: axis labels that fit.
pub(crate) fn human(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x.fract().abs() < 1e-9 || x.abs() >= 10.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    format!("{s}{unit}")
}

/// The chart as an `<svg>` element, or a "no data" note.
pub(crate) fn render(chart: &Chart, width: u32, height: u32) -> String {
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let points = || {
        chart
            .lines
            .iter()
            .flat_map(|l| l.points.iter().filter(finite))
    };
    if points().next().is_none() {
        return "<p class=\"nodata\">no data</p>".to_owned();
    }
    let x_max = points().map(|p| p.0).fold(chart.x_end, f64::max).max(1.0);
    let limit = chart.limit.as_ref().map_or(0.0, |l| l.1);
    let y_top = points().map(|p| p.1).fold(limit, f64::max);
    let y_max = if y_top > 0.0 { y_top * 1.12 } else { 1.0 };
    let mut svg = String::new();
    match draw(chart, &mut svg, (width, height), x_max, y_max) {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"nodata\">chart failed: {}</p>",
            super::html::esc(&e)
        ),
    }
}

fn draw(
    chart: &Chart,
    svg: &mut String,
    size: (u32, u32),
    x_max: f64,
    y_max: f64,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut c = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(&e))?;
    let y_fmt = |v: &f64| human(*v);
    let x_fmt = |v: &f64| format!("{v:.0}");
    c.configure_mesh()
        .light_line_style(GRID.mix(0.6))
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .label_style(("sans-serif", 12).into_font().color(&AXIS))
        .axis_desc_style(("sans-serif", 12).into_font().color(&AXIS))
        .x_desc("s since start")
        .y_desc(chart.y_desc.as_str())
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()
        .map_err(|e| err(&e))?;
    // The limit first, so a line running along it stays visible.
    if let Some((_, v)) = &chart.limit {
        c.draw_series(DashedLineSeries::new(
            vec![(0.0, *v), (x_max, *v)],
            6,
            4,
            LIMIT.stroke_width(1),
        ))
        .map_err(|e| err(&e))?;
    }
    for line in &chart.lines {
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        c.draw_series(LineSeries::new(pts, line.color.stroke_width(2)))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short() {
        assert_eq!(human(0.0), "0");
        assert_eq!(human(0.25), "0.25");
        assert_eq!(human(2.5), "2.5");
        assert_eq!(human(1500.0), "1.5k");
        assert_eq!(human(250_000.0), "250k");
        assert_eq!(human(10_000_000.0), "10M");
    }

    #[test]
    fn an_empty_chart_is_a_note() {
        assert!(render(&Chart::default(), WIDTH, HEIGHT).contains("no data"));
        let nan = Chart {
            lines: vec![Line::new("x", BLUE, vec![(f64::NAN, 1.0)])],
            ..Chart::default()
        };
        assert!(render(&nan, WIDTH, HEIGHT).contains("no data"));
    }

    #[test]
    fn a_chart_is_svg() {
        let c = Chart {
            y_desc: "per s".into(),
            lines: vec![Line::new("joins", BLUE, vec![(0.0, 1.0), (1.0, 3.0)])],
            limit: Some(("limit <5>".into(), 5.0)),
            x_end: 10.0,
        };
        let s = render(&c, WIDTH, HEIGHT);
        assert!(s.starts_with("<svg"), "{s}");
        let l = legend(&c);
        assert!(l.contains("joins") && l.contains("limit &lt;5&gt;"), "{l}");
        assert!(l.contains("#2563eb"), "{l}");
        // Flat zero and a single point draw too.
        let c = Chart {
            lines: vec![Line::new("z", BLUE, vec![(0.0, 0.0)])],
            ..Chart::default()
        };
        assert!(render(&c, WIDTH, HEIGHT).starts_with("<svg"));
    }
}
