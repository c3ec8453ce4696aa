//! Charts for `BENCHMARKS.md`, as SVG written directly: bar charts (one bar
//! per target, the median over rounds, with a whisker from the lowest round
//! to the highest) and line charts (how a measure grows with a load's size,
//! on a logarithmic x axis).
//!
//! Not `plotters`: its text layout needs a font backend, either `ttf`
//! (font-kit, which links the system's fontconfig and FreeType) or
//! `ab_glyph` with a font file shipped in the repository, for what is here
//! rectangles, lines and `<text>` elements that the viewer lays out.

use std::fmt::Write as _;

/// One bar: its label, the median and the range over rounds.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) value: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
}

const WIDTH: f64 = 760.0;
const LABEL_WIDTH: f64 = 250.0;
const VALUE_WIDTH: f64 = 90.0;
const ROW: f64 = 26.0;
const TOP: f64 = 34.0;

/// A horizontal bar chart titled `title`, its values in `unit`.
pub(crate) fn bars(title: &str, unit: &str, bars: &[Bar]) -> String {
    let height = TOP + ROW * bars.len() as f64 + 12.0;
    let span = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let max = bars
        .iter()
        .map(|bar| bar.high.max(bar.value))
        .fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { span / max } else { 0.0 };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="8" y="20" font-weight="bold">{} ({})</text>"##,
        escape(title),
        escape(unit)
    );
    for (index, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * index as f64;
        let middle = y + ROW / 2.0;
        let _ = writeln!(
            svg,
            r##"<text x="{x}" y="{text_y}" text-anchor="end">{label}</text><rect x="{LABEL_WIDTH}" y="{bar_y}" width="{w:.1}" height="{h}" fill="#4878a8"/>"##,
            x = LABEL_WIDTH - 8.0,
            text_y = middle + 4.0,
            label = escape(&bar.label),
            bar_y = y + 4.0,
            w = bar.value * scale,
            h = ROW - 8.0,
        );
        if bar.high > bar.low {
            let _ = writeln!(
                svg,
                r##"<line x1="{a:.1}" x2="{b:.1}" y1="{middle}" y2="{middle}" stroke="#202020" stroke-width="2"/>"##,
                a = LABEL_WIDTH + bar.low * scale,
                b = LABEL_WIDTH + bar.high * scale,
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{text_y}">{value}</text>"#,
            x = LABEL_WIDTH + bar.high.max(bar.value) * scale + 6.0,
            text_y = middle + 4.0,
            value = format_value(bar.value),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One line of a line chart: `(x, y)` points in the order drawn.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) points: Vec<(f64, f64)>,
}

/// One plot of a line chart: what its y axis measures, and its lines.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    pub(crate) y_label: String,
    pub(crate) series: Vec<Series>,
}

const PANEL_WIDTH: f64 = 360.0;
const PANEL_HEIGHT: f64 = 200.0;
const MARGIN_LEFT: f64 = 64.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 64.0;
const COLOURS: [&str; 4] = ["#4878a8", "#d0703c", "#5a9a5a", "#8a5aa8"];

/// Panels side by side sharing a logarithmic x axis whose ticks are
/// `ticks` (`(x, label)`), each with a linear y axis from 0; the series'
/// labels in a legend below.
pub(crate) fn lines(
    title: &str,
    x_label: &str,
    ticks: &[(f64, String)],
    panels: &[Panel],
) -> String {
    let width = (MARGIN_LEFT + PANEL_WIDTH + 24.0) * panels.len() as f64;
    let legend_rows = panels.first().map_or(0, |p| p.series.len());
    let height = MARGIN_TOP + PANEL_HEIGHT + MARGIN_BOTTOM + 18.0 * legend_rows as f64;
    let (low, high) = ticks.iter().fold((f64::MAX, f64::MIN), |(lo, hi), (x, _)| {
        (lo.min(*x), hi.max(*x))
    });
    let span = (high.log10() - low.log10()).max(f64::EPSILON);
    let x_at = |x: f64| (x.max(low).log10() - low.log10()) / span * PANEL_WIDTH;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="8" y="20" font-weight="bold" font-size="13">{}</text>"##,
        escape(title)
    );
    for (index, panel) in panels.iter().enumerate() {
        let left = MARGIN_LEFT + (MARGIN_LEFT + PANEL_WIDTH + 24.0) * index as f64;
        let bottom = MARGIN_TOP + PANEL_HEIGHT;
        let max = panel
            .series
            .iter()
            .flat_map(|series| series.points.iter().map(|&(_, y)| y))
            .fold(0.0_f64, f64::max);
        let y_max = if max > 0.0 { max * 1.1 } else { 1.0 };
        let y_at = |y: f64| bottom - y / y_max * PANEL_HEIGHT;
        let _ = writeln!(
            svg,
            r##"<rect x="{left}" y="{MARGIN_TOP}" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" fill="none" stroke="#b0b0b0"/><text x="{left}" y="{label_y}">{y_label}</text><text x="{x_mid}" y="{x_label_y}" text-anchor="middle">{x_label}</text>"##,
            label_y = MARGIN_TOP - 8.0,
            y_label = escape(&panel.y_label),
            x_mid = left + PANEL_WIDTH / 2.0,
            x_label_y = bottom + 36.0,
            x_label = escape(x_label),
        );
        for fraction in [0.0, 0.5, 1.0] {
            let value = max * fraction;
            let _ = writeln!(
                svg,
                r##"<text x="{x}" y="{y:.1}" text-anchor="end">{value}</text>"##,
                x = left - 6.0,
                y = y_at(value) + 4.0,
                value = format_value(value),
            );
        }
        for (x, label) in ticks {
            let _ = writeln!(
                svg,
                r##"<line x1="{px:.1}" x2="{px:.1}" y1="{bottom}" y2="{tick}" stroke="#808080"/><text x="{px:.1}" y="{text_y}" text-anchor="middle">{label}</text>"##,
                px = left + x_at(*x),
                tick = bottom + 4.0,
                text_y = bottom + 18.0,
                label = escape(label),
            );
        }
        for (series, colour) in panel.series.iter().zip(COLOURS.iter().cycle()) {
            let points: Vec<String> = series
                .points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", left + x_at(x), y_at(y)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                points.join(" ")
            );
            for point in &points {
                let (x, y) = point.split_once(',').unwrap_or_default();
                let _ = writeln!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>"#);
            }
        }
    }
    if let Some(first) = panels.first() {
        for (row, (series, colour)) in first.series.iter().zip(COLOURS.iter().cycle()).enumerate() {
            let y = MARGIN_TOP + PANEL_HEIGHT + MARGIN_BOTTOM - 8.0 + 18.0 * row as f64;
            let _ = writeln!(
                svg,
                r#"<rect x="{MARGIN_LEFT}" y="{top}" width="14" height="4" fill="{colour}"/><text x="{text_x}" y="{text_y}">{label}</text>"#,
                top = y - 6.0,
                text_x = MARGIN_LEFT + 20.0,
                text_y = y,
                label = escape(&series.label),
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// `12 345` for large values, `1.23` for small ones.
fn format_value(value: f64) -> String {
    if value == 0.0 {
        String::from("0")
    } else if value >= 100.0 {
        let whole = format!("{value:.0}");
        let mut grouped = String::new();
        for (index, digit) in whole.chars().enumerate() {
            if index > 0 && (whole.len() - index) % 3 == 0 {
                grouped.push('\u{2009}');
            }
            grouped.push(digit);
        }
        grouped
    } else {
        format!("{value:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_bar_and_whisker_per_target_scaled_to_the_highest() {
        let svg = bars(
            "throughput",
            "requests/s",
            &[
                Bar {
                    label: "bare <proxy>".into(),
                    value: 1000.0,
                    low: 900.0,
                    high: 1100.0,
                },
                Bar {
                    label: "gateway".into(),
                    value: 500.0,
                    low: 500.0,
                    high: 500.0,
                },
            ],
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.ends_with("</svg>\n"));
        assert!(svg.contains("bare &lt;proxy&gt;"));
        assert_eq!(svg.matches("fill=\"#4878a8\"").count(), 2);
        // Only the bar whose rounds differ has a whisker.
        assert_eq!(svg.matches("<line").count(), 1);
        // The highest round spans the whole bar area; the gateway's median half of it.
        let span = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
        assert!(svg.contains(&format!("x2=\"{:.1}\"", LABEL_WIDTH + span)));
        assert!(svg.contains(&format!("width=\"{:.1}\"", span * 500.0 / 1100.0)));
        assert!(svg.contains("1\u{2009}000"));
    }

    #[test]
    fn draws_one_line_per_series_on_a_log_axis() {
        let series = |label: &str, points: &[(f64, f64)]| Series {
            label: label.into(),
            points: points.to_vec(),
        };
        let svg = lines(
            "growth",
            "connections",
            &[
                (1.0, "1".into()),
                (10.0, "10".into()),
                (100.0, "100".into()),
            ],
            &[
                Panel {
                    y_label: "requests/s".into(),
                    series: vec![
                        series("bare", &[(1.0, 100.0), (10.0, 200.0), (100.0, 200.0)]),
                        series("gateway <x>", &[(1.0, 50.0), (100.0, 150.0)]),
                    ],
                },
                Panel {
                    y_label: "p99 ms".into(),
                    series: vec![series("bare", &[(1.0, 1.0)])],
                },
            ],
        );
        assert!(
            svg.starts_with("<svg") && svg.ends_with("</svg>\n"),
            "{svg}"
        );
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains("gateway &lt;x&gt;"));
        // Logarithmic: 10 sits halfway between 1 and 100.
        let left = MARGIN_LEFT;
        let middle = format!("cx=\"{:.1}\"", left + PANEL_WIDTH / 2.0);
        assert!(svg.contains(&middle), "{svg}");
        // The highest value is drawn at 1/1.1 of the panel's height.
        let top = MARGIN_TOP + PANEL_HEIGHT - PANEL_HEIGHT / 1.1;
        assert!(svg.contains(&format!("cy=\"{top:.1}\"")), "{svg}");
    }

    #[test]
    fn formats_values_for_reading() {
        assert_eq!(format_value(12_345.4), "12\u{2009}345");
        assert_eq!(format_value(0.8), "0.80");
        assert_eq!(format_value(999.0), "999");
        assert_eq!(format_value(0.0), "0");
    }
}
