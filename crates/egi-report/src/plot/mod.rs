//! Report figures. Every function writes `<stem>.svg` and `<stem>.png` (the extension is
//! appended to `stem`, so `out/rho.v2` gives `out/rho.v2.svg`), each atomically: rendered in
//! memory, written to a temporary file in the target directory, then renamed into place.
//!
//! Non-finite values are skipped; a figure with nothing to show says "no data". Text uses a
//! font found at run time (DejaVu Sans and a few other common paths, then `fc-match`, or the
//! file named by `EGI_PLOT_FONT`); without one the figures are drawn without any text and a
//! warning is logged once.

mod curves;
mod font;
mod output;
mod raster;

use std::ops::Range;
use std::path::Path;

use anyhow::Result;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use curves::{curves, ema, Curve, Panel};
pub use font::FONT_ENV;

use crate::stats;

const BLUE_T: RGBColor = RGBColor(31, 119, 180);
const ORANGE_T: RGBColor = RGBColor(255, 127, 14);
const RED_T: RGBColor = RGBColor(214, 39, 40);
const GREY_T: RGBColor = RGBColor(110, 110, 110);
const TEXT_T: RGBColor = RGBColor(40, 40, 40);

/// Scatter of per-token (or per-step) entropy against gradient influence, with a binned-median
/// trend line and the rank correlation in the subtitle. The y axis is logarithmic when the
/// positive influences span more than two decades (non-positive values are then dropped).
pub fn scatter_entropy_influence(
    stem: &Path,
    entropy: &[f64],
    influence: &[f64],
    rho: Option<f64>,
    title: &str,
) -> Result<()> {
    output::render(
        stem,
        &Scatter {
            entropy,
            influence,
            rho,
            title,
        },
    )
}

/// Histogram of values on [-1, 1] (per-response rho; the range widens if values fall outside)
/// with 0.1-wide bins, a dashed line at 0 and, if given, a solid line at `marker` (the mean).
pub fn histogram(
    stem: &Path,
    values: &[f64],
    x_label: &str,
    title: &str,
    marker: Option<f64>,
) -> Result<()> {
    output::render(
        stem,
        &Histogram {
            values,
            x_label,
            title,
            marker,
        },
    )
}

/// Heatmap of `values[row][col]` (rows = layers, drawn with row 0 at the bottom; columns =
/// projections labelled by `col_labels`) on a viridis scale with a colour bar. Ragged rows are
/// padded; missing and non-finite cells are grey.
pub fn heatmap(
    stem: &Path,
    values: &[Vec<f64>],
    row_label: &str,
    col_labels: &[&str],
    title: &str,
) -> Result<()> {
    output::render(
        stem,
        &Heatmap {
            values,
            row_label,
            col_labels,
            title,
        },
    )
}

/// Entropy (top panel) and gradient influence (bottom panel) along one response, sharing the
/// token-index axis; `step_starts` are the token indices where steps begin, drawn as boundary
/// lines with alternate steps shaded.
pub fn along_response(
    stem: &Path,
    entropy: &[f64],
    influence: &[f64],
    step_starts: &[usize],
    title: &str,
) -> Result<()> {
    output::render(
        stem,
        &Along {
            entropy,
            influence,
            step_starts,
            title,
        },
    )
}

/// Forest plot: one row per `(label, estimate, lo, hi)`, top to bottom in input order, with the
/// estimate as a point, [lo, hi] as a bar, a line at 0 and the numbers to the right.
pub fn compare_intervals(
    stem: &Path,
    rows: &[(String, f64, f64, f64)],
    x_label: &str,
    title: &str,
) -> Result<()> {
    output::render(
        stem,
        &Forest {
            rows,
            x_label,
            title,
        },
    )
}

/// Backends whose errors can travel in an `anyhow::Error`.
trait Backend: DrawingBackend<ErrorType: Send + Sync + 'static> {}
impl<T: DrawingBackend<ErrorType: Send + Sync + 'static>> Backend for T {}

/// One figure, drawable on any backend. `text` is false when no font is available: then
/// nothing may touch text APIs (plotters' ab_glyph backend fails on them).
trait Figure {
    fn size(&self) -> (u32, u32) {
        (800, 600)
    }
    fn draw<DB: Backend>(&self, root: &DrawingArea<DB, Shift>, text: bool) -> Result<()>;
}

fn font(size: f64) -> TextStyle<'static> {
    (font::FAMILY, size).into_font().color(&TEXT_T)
}

fn bold(size: f64) -> TextStyle<'static> {
    (font::FAMILY, size, FontStyle::Bold)
        .into_font()
        .color(&BLACK)
}

/// Draws the title (and a subtitle line) and returns the area below them.
fn header<DB: Backend>(
    root: &DrawingArea<DB, Shift>,
    text: bool,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<DB, Shift>> {
    let h = if subtitle.is_empty() { 44 } else { 68 };
    let (top, rest) = root.split_vertically(h);
    if text {
        let mid = top.dim_in_pixel().0 as i32 / 2;
        let centre = Pos::new(HPos::Center, VPos::Top);
        top.draw(&Text::new(title, (mid, 12), bold(22.0).pos(centre)))?;
        if !subtitle.is_empty() {
            let style = font(16.0).color(&GREY_T).pos(centre);
            top.draw(&Text::new(subtitle, (mid, 42), style))?;
        }
    }
    Ok(rest)
}

/// An empty frame, with "no data" when text is available.
fn no_data<DB: Backend>(area: &DrawingArea<DB, Shift>, text: bool) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    area.draw(&Rectangle::new(
        [(40, 20), (w - 40, h - 40)],
        GREY_T.mix(0.5).stroke_width(1),
    ))?;
    if text {
        let style = font(26.0)
            .color(&GREY_T)
            .pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new("no data", (w / 2, h / 2 - 10), style))?;
    }
    Ok(())
}

/// Common axis styling. Called last on a mesh: without text it removes every label.
fn finish_mesh<X, Y, DB>(
    mesh: &mut plotters::chart::MeshStyle<'_, '_, X, Y, DB>,
    text: bool,
    x_desc: &str,
    y_desc: &str,
) -> Result<()>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
    DB: Backend,
{
    mesh.bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK.mix(0.6));
    if text {
        mesh.label_style(font(14.0)).axis_desc_style(font(16.0));
        if !x_desc.is_empty() {
            mesh.x_desc(x_desc);
        }
        if !y_desc.is_empty() {
            mesh.y_desc(y_desc);
        }
    } else {
        // Some axes (integer ranges) produce a tick even when asked for none; an invisible
        // label style keeps those from reaching the font code.
        mesh.x_labels(0)
            .y_labels(0)
            .label_style(font(14.0).color(&TRANSPARENT));
    }
    mesh.draw()?;
    Ok(())
}

/// Finite (x, y) pairs, zipped up to the shorter input.
fn finite_pairs(x: &[f64], y: &[f64]) -> Vec<(f64, f64)> {
    if x.len() != y.len() {
        tracing::warn!(
            x = x.len(),
            y = y.len(),
            "plot inputs differ in length; using the common prefix"
        );
    }
    x.iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(&a, &b)| (a, b))
        .collect()
}

fn min_max(v: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    v.into_iter()
        .filter(|x| x.is_finite())
        .fold(None, |acc, x| match acc {
            None => Some((x, x)),
            Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
        })
}

/// A linear axis range around [lo, hi] with `frac` padding; a single value gets a
/// symmetric window so plotters never sees an empty range.
fn padded(lo: f64, hi: f64, frac: f64) -> Range<f64> {
    if hi > lo {
        let pad = (hi - lo) * frac;
        lo - pad..hi + pad
    } else {
        let pad = if lo != 0.0 { lo.abs() * 0.1 } else { 1.0 };
        lo - pad..hi + pad
    }
}

/// The positive range, when the positive values span more than two decades (log axis).
fn wants_log(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = min_max(values.into_iter().filter(|&v| v > 0.0))?;
    (hi / lo > 100.0).then_some((lo, hi))
}

fn log_range(lo: f64, hi: f64) -> LogCoord<f64> {
    (lo / 1.4..hi * 1.4).log_scale().into()
}

/// Compact tick/annotation numbers: 3 significant-ish digits, scientific when extreme.
fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A linear f64 axis with ticks exactly at `keys` (plotters' `WithKeyPoints` over f64 has no
/// label formatter, and the orphan rule stops us adding one).
struct Keyed {
    inner: RangedCoordf64,
    keys: Vec<f64>,
}

impl Keyed {
    fn new(range: Range<f64>, keys: Vec<f64>) -> Self {
        Keyed {
            inner: range.into(),
            keys,
        }
    }
}

impl Ranged for Keyed {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // No light grid lines: only the requested ticks (none when none are wanted).
        if hint.weight().allow_light_points() || hint.max_num_points() == 0 {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// Log-axis ticks (powers of ten): "1000", "0.01", "1e-5", never "10.0".
fn fmt_log_tick(v: &f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        return format!("{v:e}");
    }
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Linear-axis ticks: "45" not "45.0", "0" not "-0.0" or "1.1e-16" (key points carry float
/// noise; anything below a billionth of the axis span is zero).
fn tick_fmt(range: &Range<f64>) -> impl Fn(&f64) -> String {
    let span = (range.end - range.start).abs();
    move |v: &f64| {
        let v = *v;
        let a = v.abs();
        if a <= span * 1e-9 {
            return "0".into();
        }
        let trim = |s: &str| -> String {
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s.to_string()
            }
        };
        if !(1e-4..1e6).contains(&a) {
            let s = format!("{v:.3e}");
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            return format!("{}e{e}", trim(m));
        }
        trim(&format!("{v:.6}"))
    }
}

/// Integer ticks only (token indices); other key points get no label.
fn fmt_index_tick(v: &f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

fn rho_text(rho: Option<f64>) -> String {
    match rho {
        Some(r) if r.is_finite() => format!("Spearman rho = {r:.2}"),
        _ => "rho undefined".into(),
    }
}

// ---------------------------------------------------------------------------------------------

struct Scatter<'a> {
    entropy: &'a [f64],
    influence: &'a [f64],
    rho: Option<f64>,
    title: &'a str,
}

impl Figure for Scatter<'_> {
    fn draw<DB: Backend>(&self, root: &DrawingArea<DB, Shift>, text: bool) -> Result<()> {
        root.fill(&WHITE)?;
        let mut pts = finite_pairs(self.entropy, self.influence);
        let log = wants_log(pts.iter().map(|p| p.1));
        if log.is_some() {
            pts.retain(|p| p.1 > 0.0);
        }
        let subtitle = format!(
            "{}   ·   n = {}{}",
            rho_text(self.rho),
            pts.len(),
            if log.is_some() { "   ·   log y" } else { "" }
        );
        let area = header(root, text, self.title, &subtitle)?;
        let (Some((x0, x1)), Some((y0, y1))) = (
            min_max(pts.iter().map(|p| p.0)),
            min_max(pts.iter().map(|p| p.1)),
        ) else {
            return no_data(&area, text);
        };
        let xr = padded(x0, x1, 0.04);
        match log {
            Some((lo, hi)) => self.body(&area, text, &pts, xr, log_range(lo, hi), true),
            None => {
                let yr: RangedCoordf64 = padded(y0, y1, 0.06).into();
                self.body(&area, text, &pts, xr, yr, false)
            }
        }
    }
}

impl Scatter<'_> {
    fn body<DB: Backend, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
        &self,
        area: &DrawingArea<DB, Shift>,
        text: bool,
        pts: &[(f64, f64)],
        xr: Range<f64>,
        yr: Y,
        log: bool,
    ) -> Result<()> {
        let x_fmt = tick_fmt(&xr);
        let y_fmt = tick_fmt(&yr.range());
        let mut chart = ChartBuilder::on(area)
            .margin(16)
            .margin_top(4)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(xr, yr)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_label_formatter(&x_fmt);
        if log {
            mesh.y_label_formatter(&fmt_log_tick);
        } else {
            mesh.y_label_formatter(&y_fmt);
        }
        finish_mesh(
            &mut mesh,
            text,
            "token entropy (nats)",
            "gradient influence (mean nuclear norm)",
        )?;

        // Fewer, larger markers read better for small sets; big pooled sets need fainter ones.
        let (r, alpha) = match pts.len() {
            0..=500 => (4, 0.55),
            501..=2000 => (3, 0.4),
            _ => (2, 0.18),
        };
        chart
            .draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, r, BLUE_T.mix(alpha).filled())),
            )?
            .label("tokens")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, BLUE_T.mix(0.6).filled()));

        let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let bins = ((pts.len() as f64).sqrt().round() as usize).clamp(2, 20);
        let trend = stats::rank_trend(&xs, &ys, bins);
        if pts.len() >= 4 && trend.len() >= 2 {
            let line = RED_T.stroke_width(3);
            chart
                .draw_series(LineSeries::new(trend.iter().copied(), line))?
                .label("binned median trend")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
            chart.draw_series(trend.iter().map(|&p| Circle::new(p, 4, RED_T.filled())))?;
        }
        if text {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(font(14.0))
                .draw()?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

struct Histogram<'a> {
    values: &'a [f64],
    x_label: &'a str,
    title: &'a str,
    marker: Option<f64>,
}

impl Figure for Histogram<'_> {
    fn draw<DB: Backend>(&self, root: &DrawingArea<DB, Shift>, text: bool) -> Result<()> {
        root.fill(&WHITE)?;
        let vals: Vec<f64> = self
            .values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let below = vals.iter().filter(|&&v| v < 0.0).count();
        let subtitle = if vals.is_empty() {
            String::new()
        } else {
            format!(
                "n = {}   ·   {} below 0 ({:.0}%)",
                vals.len(),
                below,
                100.0 * below as f64 / vals.len() as f64
            )
        };
        let area = header(root, text, self.title, &subtitle)?;
        let Some((vmin, vmax)) = min_max(vals.iter().copied()) else {
            return no_data(&area, text);
        };
        let (lo, hi) = (vmin.min(-1.0), vmax.max(1.0));
        let nb = if lo == -1.0 && hi == 1.0 {
            20
        } else {
            tracing::warn!(
                lo,
                hi,
                "histogram values outside [-1, 1]; widening the range"
            );
            24
        };
        let width = (hi - lo) / nb as f64;
        let mut counts = vec![0i32; nb];
        for v in &vals {
            let b = (((v - lo) / width) as usize).min(nb - 1);
            counts[b] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(0);
        let ymax = (top as f64 * 1.15).ceil().max(top as f64 + 1.0) as i32;

        let pad = width * 0.5;
        let x_fmt = tick_fmt(&(lo..hi));
        let mut chart = ChartBuilder::on(&area)
            .margin(16)
            .margin_top(4)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(lo - pad..hi + pad, 0..ymax)?;
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh().x_label_formatter(&x_fmt);
        finish_mesh(&mut mesh, text, self.x_label, "count")?;

        chart.draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| {
                    let x0 = lo + i as f64 * width;
                    let gap = width * 0.06;
                    Rectangle::new(
                        [(x0 + gap, 0), (x0 + width - gap, c)],
                        BLUE_T.mix(0.75).filled(),
                    )
                }),
        )?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, 0), (0.0, ymax)],
            8,
            5,
            GREY_T.stroke_width(2),
        ))?;
        if let Some(m) = self.marker.filter(|m| m.is_finite()) {
            let line = RED_T.stroke_width(3);
            chart
                .draw_series(LineSeries::new([(m, 0), (m, ymax)], line))?
                .label(format!("mean = {m:.2}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
            if text {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .label_font(font(15.0))
                    .draw()?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

struct Heatmap<'a> {
    values: &'a [Vec<f64>],
    row_label: &'a str,
    col_labels: &'a [&'a str],
    title: &'a str,
}

/// Viridis at 11 evenly spaced stops (matplotlib's values), linearly interpolated.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 11] = [
        (68, 1, 84),
        (72, 36, 117),
        (65, 68, 135),
        (53, 95, 141),
        (42, 120, 142),
        (33, 145, 140),
        (34, 168, 132),
        (68, 191, 112),
        (122, 209, 81),
        (189, 223, 38),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let lerp = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

impl Figure for Heatmap<'_> {
    fn size(&self) -> (u32, u32) {
        // Keep layer rows readable for deep models.
        (800, (140 + 16 * self.values.len() as u32).clamp(600, 1600))
    }

    fn draw<DB: Backend>(&self, root: &DrawingArea<DB, Shift>, text: bool) -> Result<()> {
        root.fill(&WHITE)?;
        let nrows = self.values.len();
        let ncols = self.values.iter().map(Vec::len).max().unwrap_or(0);
        let range = min_max(self.values.iter().flatten().copied());
        let subtitle = match range {
            Some((lo, hi)) => format!(
                "{nrows} rows × {ncols} columns   ·   range {} … {}",
                fmt_num(lo),
                fmt_num(hi)
            ),
            None => String::new(),
        };
        let area = header(root, text, self.title, &subtitle)?;
        let Some((lo, hi)) = range else {
            return no_data(&area, text);
        };
        let norm = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };

        let (main, bar) = area.split_horizontally(area.dim_in_pixel().0 - 130);
        let col_name = |i: usize| {
            self.col_labels
                .get(i)
                .map(|s| s.to_string())
                .unwrap_or_else(|| i.to_string())
        };
        // Labels at cell centres via explicit key points; every k-th row for deep models.
        let step = nrows.div_ceil(24).max(1);
        let xk: Vec<f64> = (0..ncols).map(|c| c as f64 + 0.5).collect();
        let yk: Vec<f64> = (0..nrows).step_by(step).map(|r| r as f64 + 0.5).collect();
        let mut chart = ChartBuilder::on(&main)
            .margin(16)
            .margin_top(4)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(
                Keyed::new(0.0..ncols as f64, xk),
                Keyed::new(0.0..nrows as f64, yk),
            )?;
        let x_fmt = |v: &f64| col_name(v.floor() as usize);
        let y_fmt = |v: &f64| format!("{}", v.floor() as usize);
        let mut mesh = chart.configure_mesh();
        mesh.x_label_formatter(&x_fmt).y_label_formatter(&y_fmt);
        finish_mesh(&mut mesh, text, "projection", self.row_label)?;

        let missing = RGBColor(215, 215, 215);
        chart.draw_series((0..nrows).flat_map(|r| {
            (0..ncols).map(move |c| {
                let v = self.values[r].get(c).copied().unwrap_or(f64::NAN);
                let colour = if v.is_finite() {
                    viridis(norm(v))
                } else {
                    missing
                };
                let (x, y) = (c as f64, r as f64);
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], colour.filled())
            })
        }))?;
        // Values inside cells only when the cells are tall enough to hold them.
        let (_, plot_h) = chart.plotting_area().dim_in_pixel();
        if text && nrows > 0 && plot_h as usize / nrows >= 22 {
            let centre = Pos::new(HPos::Center, VPos::Center);
            for (r, row) in self.values.iter().enumerate() {
                for (c, &v) in row.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                    let ink = if norm(v) > 0.6 { &BLACK } else { &WHITE };
                    let style = font(13.0).color(ink).pos(centre);
                    let at = (c as f64 + 0.5, r as f64 + 0.5);
                    chart.draw_series([Text::new(fmt_num(v), at, style)])?;
                }
            }
        }

        // Colour bar: a narrow chart whose y axis is the value scale.
        let (blo, bhi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, hi + 0.5)
        };
        let bar_fmt = tick_fmt(&(blo..bhi));
        let mut cbar = ChartBuilder::on(&bar)
            .margin_top(4)
            .margin_bottom(66)
            .margin_right(8)
            .set_label_area_size(LabelAreaPosition::Right, 70)
            .build_cartesian_2d(0.0..1.0, blo..bhi)?;
        let mut mesh = cbar.configure_mesh();
        mesh.disable_x_mesh()
            .disable_y_mesh()
            .x_labels(0)
            .y_label_formatter(&bar_fmt);
        finish_mesh(&mut mesh, text, "", "")?;
        let n = 96;
        cbar.draw_series((0..n).map(|i| {
            let a = blo + (bhi - blo) * i as f64 / n as f64;
            let b = blo + (bhi - blo) * (i + 1) as f64 / n as f64;
            Rectangle::new([(0.0, a), (1.0, b)], viridis(norm((a + b) / 2.0)).filled())
        }))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

struct Along<'a> {
    entropy: &'a [f64],
    influence: &'a [f64],
    step_starts: &'a [usize],
    title: &'a str,
}

/// Maximal runs of consecutive finite values as (index, value) polylines, so that gaps stay
/// gaps instead of being bridged.
fn finite_runs(v: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut cur = Vec::new();
    for (i, &y) in v.iter().enumerate() {
        if y.is_finite() {
            cur.push((i as f64, y));
        } else if !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

impl Figure for Along<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 640)
    }

    fn draw<DB: Backend>(&self, root: &DrawingArea<DB, Shift>, text: bool) -> Result<()> {
        root.fill(&WHITE)?;
        let n = self.entropy.len().max(self.influence.len());
        let mut starts: Vec<usize> = self
            .step_starts
            .iter()
            .copied()
            .filter(|&s| s < n)
            .collect();
        starts.sort_unstable();
        starts.dedup();
        let has_data = self
            .entropy
            .iter()
            .chain(self.influence)
            .any(|v| v.is_finite());
        let subtitle = if has_data {
            format!(
                "{n} tokens   ·   {} steps (boundaries dashed, alternate steps shaded)",
                starts.len()
            )
        } else {
            String::new()
        };
        let area = header(root, text, self.title, &subtitle)?;
        if !has_data {
            return no_data(&area, text);
        }
        let xr = -0.5..n as f64 - 0.5;
        let (top, bottom) = area.split_vertically(area.dim_in_pixel().1 / 2 - 10);

        let e_range = min_max(self.entropy.iter().copied()).unwrap_or((0.0, 1.0));
        let e_axis: RangedCoordf64 = padded(e_range.0.min(0.0), e_range.1, 0.06).into();
        self.panel(
            &top,
            text,
            xr.clone(),
            e_axis,
            self.entropy,
            &starts,
            BLUE_T,
            "entropy (nats)",
            "",
            false,
        )?;
        let x_desc = "response token index";
        match wants_log(self.influence.iter().copied()) {
            Some((lo, hi)) => {
                // A log axis cannot show non-positive values: they become gaps.
                let pos: Vec<f64> = self
                    .influence
                    .iter()
                    .map(|&v| if v > 0.0 { v } else { f64::NAN })
                    .collect();
                let y = log_range(lo, hi);
                self.panel(
                    &bottom,
                    text,
                    xr,
                    y,
                    &pos,
                    &starts,
                    ORANGE_T,
                    "influence (log)",
                    x_desc,
                    true,
                )
            }
            None => {
                let r = min_max(self.influence.iter().copied()).unwrap_or((0.0, 1.0));
                let y: RangedCoordf64 = padded(r.0.min(0.0), r.1, 0.06).into();
                self.panel(
                    &bottom,
                    text,
                    xr,
                    y,
                    self.influence,
                    &starts,
                    ORANGE_T,
                    "gradient influence",
                    x_desc,
                    false,
                )
            }
        }
    }
}

impl Along<'_> {
    #[allow(clippy::too_many_arguments)]
    fn panel<DB: Backend, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
        &self,
        area: &DrawingArea<DB, Shift>,
        text: bool,
        xr: Range<f64>,
        yr: Y,
        values: &[f64],
        starts: &[usize],
        colour: RGBColor,
        y_desc: &str,
        x_desc: &str,
        log: bool,
    ) -> Result<()> {
        let (y0, y1) = (yr.range().start, yr.range().end);
        let (x0, x1) = (xr.start, xr.end);
        let y_fmt = tick_fmt(&(y0..y1));
        let mut chart = ChartBuilder::on(area)
            .margin(16)
            .margin_top(4)
            .x_label_area_size(if x_desc.is_empty() { 30 } else { 50 })
            .y_label_area_size(70)
            .build_cartesian_2d(xr, yr)?;
        // Shade every second step, behind everything else.
        let mut bounds: Vec<f64> = starts.iter().map(|&s| s as f64 - 0.5).collect();
        if bounds.first() != Some(&x0) {
            bounds.insert(0, x0);
        }
        bounds.push(x1);
        chart.draw_series(
            bounds
                .windows(2)
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, w)| Rectangle::new([(w[0], y0), (w[1], y1)], BLACK.mix(0.05).filled())),
        )?;
        let mut mesh = chart.configure_mesh();
        mesh.x_label_formatter(&fmt_index_tick);
        if log {
            mesh.y_label_formatter(&fmt_log_tick);
        } else {
            mesh.y_label_formatter(&y_fmt);
        }
        finish_mesh(&mut mesh, text, x_desc, y_desc)?;
        for &s in starts.iter().filter(|&&s| s > 0) {
            let x = s as f64 - 0.5;
            chart.draw_series(DashedLineSeries::new(
                [(x, y0), (x, y1)],
                5,
                4,
                GREY_T.mix(0.8).stroke_width(1),
            ))?;
        }
        for run in finite_runs(values) {
            chart.draw_series(LineSeries::new(run.iter().copied(), colour.stroke_width(2)))?;
            if values.len() <= 400 {
                chart.draw_series(run.iter().map(|&p| Circle::new(p, 2, colour.filled())))?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

struct Forest<'a> {
    rows: &'a [(String, f64, f64, f64)],
    x_label: &'a str,
    title: &'a str,
}

impl Figure for Forest<'_> {
    fn size(&self) -> (u32, u32) {
        (800, (220 + 50 * self.rows.len() as u32).clamp(420, 2400))
    }

    fn draw<DB: Backend>(&self, root: &DrawingArea<DB, Shift>, text: bool) -> Result<()> {
        root.fill(&WHITE)?;
        let area = header(root, text, self.title, "")?;
        let finite = self
            .rows
            .iter()
            .flat_map(|r| [r.1, r.2, r.3])
            .filter(|v| v.is_finite());
        let Some((lo, hi)) = min_max(finite.chain([0.0])).filter(|_| {
            self.rows
                .iter()
                .any(|r| r.1.is_finite() || r.2.is_finite() || r.3.is_finite())
        }) else {
            return no_data(&area, text);
        };
        let n = self.rows.len();
        // Row i (input order) sits at y = n - 1 - i + 0.5, so the first row is on top.
        let row_y = |i: usize| (n - 1 - i) as f64 + 0.5;
        let label_w = self
            .rows
            .iter()
            .map(|r| r.0.chars().count())
            .max()
            .unwrap_or(0);
        let label_area = (label_w as u32 * 7 + 24).clamp(60, 320);
        let keys: Vec<f64> = (0..n).map(row_y).collect();
        let xr = padded(lo, hi, 0.08);
        let x_fmt = tick_fmt(&xr);
        let mut chart = ChartBuilder::on(&area)
            .margin(16)
            .margin_top(4)
            .margin_right(170)
            .x_label_area_size(50)
            .y_label_area_size(label_area)
            .build_cartesian_2d(xr, Keyed::new(0.0..n as f64, keys))?;
        let y_fmt = |y: &f64| {
            let i = n - 1 - (y.floor() as usize).min(n - 1);
            self.rows[i].0.clone()
        };
        let mut mesh = chart.configure_mesh();
        mesh.y_label_formatter(&y_fmt).x_label_formatter(&x_fmt);
        finish_mesh(&mut mesh, text, self.x_label, "")?;

        chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (0.0, n as f64)],
            6,
            4,
            GREY_T.stroke_width(2),
        ))?;
        let cap = 0.15;
        for (i, (_, est, l, h)) in self.rows.iter().enumerate() {
            let y = row_y(i);
            let bar = BLUE_T.stroke_width(3);
            if l.is_finite() && h.is_finite() {
                chart.draw_series(LineSeries::new([(*l, y), (*h, y)], bar))?;
                for x in [*l, *h] {
                    chart.draw_series(LineSeries::new([(x, y - cap), (x, y + cap)], bar))?;
                }
            }
            if est.is_finite() {
                chart.draw_series([Circle::new((*est, y), 6, RED_T.filled())])?;
            }
        }
        if text {
            // The numbers, right of the plotting area, level with each row.
            let right = chart.plotting_area().get_pixel_range().0.end + 12;
            let style = font(14.0).pos(Pos::new(HPos::Left, VPos::Center));
            for (i, (_, est, l, h)) in self.rows.iter().enumerate() {
                let (_, py) = chart.backend_coord(&(0.0, row_y(i)));
                let s = |v: f64| {
                    if v.is_finite() {
                        fmt_num(v)
                    } else {
                        "?".into()
                    }
                };
                let label = if est.is_finite() || l.is_finite() || h.is_finite() {
                    format!("{} [{}, {}]", s(*est), s(*l), s(*h))
                } else {
                    "undefined".into()
                };
                root.draw(&Text::new(label, (right, py), style.clone()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(-0.4213), "-0.421");
        assert_eq!(fmt_num(24.13), "24.1");
        assert_eq!(fmt_num(1.5e-5), "1.5e-5");
        assert_eq!(fmt_log_tick(&1000.0), "1000");
        assert_eq!(fmt_log_tick(&0.01), "0.01");
        assert_eq!(fmt_log_tick(&1e-5), "1e-5");
        assert_eq!(fmt_index_tick(&5.0), "5");
        let f = tick_fmt(&(-1.0..1.0));
        assert_eq!(f(&45.0), "45");
        assert_eq!(f(&-0.30000000000000004), "-0.3");
        assert_eq!(f(&-1.1e-16), "0");
        assert_eq!(tick_fmt(&(0.0..1e-5))(&3.0000000000000004e-6), "3e-6");
        assert_eq!(fmt_index_tick(&2.5), "");
        assert_eq!(rho_text(Some(-0.4213)), "Spearman rho = -0.42");
        assert_eq!(rho_text(None), "rho undefined");
        assert_eq!(rho_text(Some(f64::NAN)), "rho undefined");
        assert_eq!(padded(2.0, 2.0, 0.1), 1.8..2.2);
        assert_eq!(wants_log([0.5, 100.0, -3.0]), Some((0.5, 100.0)));
        assert_eq!(wants_log([1.0, 99.0]), None);
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(
            finite_runs(&[1.0, f64::NAN, 2.0, 3.0]),
            vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 3.0)]]
        );
    }
}
