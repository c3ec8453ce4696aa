//! Bar charts for `BENCHMARKS.md`, as SVG written directly: one bar per
//! target (the median over rounds) with a whisker from the lowest round to
//! the highest.
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

/// `12 345` for large values, `1.23` for small ones.
fn format_value(value: f64) -> String {
    if value >= 100.0 {
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
    fn formats_values_for_reading() {
        assert_eq!(format_value(12_345.4), "12\u{2009}345");
        assert_eq!(format_value(0.8), "0.80");
        assert_eq!(format_value(999.0), "999");
    }
}
