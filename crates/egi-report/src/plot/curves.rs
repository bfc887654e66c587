//! Training curves: a grid of small-multiple charts, one per metric, one colour per run.

use std::ops::Range;
use std::path::Path;

use anyhow::Result;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    finish_mesh, fmt_index_tick, fmt_log_tick, font, header, log_range, min_max, no_data, output,
    padded, tick_fmt, wants_log, Backend, Figure,
};

/// One run's values of one metric.
#[derive(Clone, Debug, Default)]
pub struct Curve {
    /// Index into the `runs` given to [`curves`]: fixes the colour, the same in every panel.
    pub run: usize,
    /// x (e.g. the training step) of each point, ascending.
    pub x: Vec<f64>,
    /// The values; a non-finite value (a null in the log) is a gap in the line.
    pub y: Vec<f64>,
    /// Optional (lo, hi) interval per point, drawn as an error bar.
    pub ci: Option<Vec<(f64, f64)>>,
}

/// One chart of the grid.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    /// The metric's name, written above the chart.
    pub name: String,
    /// At most one curve per run; runs without the metric are simply absent.
    pub curves: Vec<Curve>,
    /// Markers (with error bars when given) over a thin line, never smoothed: for sparse
    /// measurements such as held-out evaluations.
    pub points: bool,
}

/// Draws `panels` as a grid of line charts sharing the x axis (`x_label`), with one legend
/// entry and colour per name in `runs`. With `smooth` in (0, 1) every line panel shows the
/// raw values faint and their exponential moving average ([`ema`] with that weight) bold.
/// Non-finite values are skipped; a panel without data says "no data".
pub fn curves(
    stem: &Path,
    runs: &[String],
    panels: &[Panel],
    x_label: &str,
    title: &str,
    smooth: f64,
) -> Result<()> {
    output::render(stem, &Curves::new(runs, panels, x_label, title, smooth))
}

/// Debiased exponential moving average (TensorBoard's smoothing; pandas `ewm(alpha = 1 -
/// weight)`) over the finite values, which keeps non-finite values as gaps. `weight` is the
/// share of the history: 0 returns the input, 0.9 smooths strongly.
pub fn ema(y: &[f64], weight: f64) -> Vec<f64> {
    let w = if weight.is_finite() {
        weight.clamp(0.0, 0.999_999)
    } else {
        0.0
    };
    let (mut acc, mut decay) = (0.0, 1.0);
    y.iter()
        .map(|&v| {
            if !v.is_finite() {
                return v;
            }
            acc = w * acc + (1.0 - w) * v;
            decay *= w;
            // Dividing by the weight the average has seen so far removes the pull towards 0.
            acc / (1.0 - decay)
        })
        .collect()
}

/// matplotlib's tab10: distinct, and familiar from Python plots of the same runs.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn colour(run: usize) -> RGBColor {
    PALETTE[run % PALETTE.len()]
}

const PANEL_W: u32 = 460;
const PANEL_H: u32 = 300;
const LEGEND_ROW: u32 = 24;
const LEGEND_FONT: f64 = 15.0;
/// Swatch, gap and a generous per-character width: the layout is decided before any font
/// is consulted (the figure's height depends on it).
const SWATCH: i32 = 30;
const CHAR_W: i32 = 8;

struct Curves<'a> {
    runs: &'a [String],
    panels: &'a [Panel],
    x_label: &'a str,
    title: &'a str,
    smooth: f64,
    cols: u32,
}

impl<'a> Curves<'a> {
    fn new(
        runs: &'a [String],
        panels: &'a [Panel],
        x_label: &'a str,
        title: &'a str,
        smooth: f64,
    ) -> Self {
        // Near-square grids, at most four panels wide.
        let cols = match panels.len() {
            0 | 1 => 1,
            2 | 4 => 2,
            3 | 5 | 6 | 9 => 3,
            _ => 4,
        };
        let smooth = if smooth.is_finite() && smooth > 0.0 && smooth < 1.0 {
            smooth
        } else {
            0.0
        };
        Curves {
            runs,
            panels,
            x_label,
            title,
            smooth,
            cols,
        }
    }

    fn rows(&self) -> u32 {
        (self.panels.len() as u32).div_ceil(self.cols).max(1)
    }

    fn width(&self) -> u32 {
        (self.cols * PANEL_W).max(800)
    }

    /// Legend entries as (run, x, row), wrapped to the figure's width.
    fn legend_layout(&self) -> Vec<(usize, i32, i32)> {
        let limit = self.width() as i32 - 20;
        let (mut x, mut row) = (20, 0);
        let mut out = Vec::with_capacity(self.runs.len());
        for (i, name) in self.runs.iter().enumerate() {
            let w = SWATCH + CHAR_W * name.chars().count() as i32 + 24;
            if x > 20 && x + w > limit {
                x = 20;
                row += 1;
            }
            out.push((i, x, row));
            x += w;
        }
        out
    }

    fn legend_height(&self) -> u32 {
        let rows = self.legend_layout().last().map_or(0, |l| l.2 as u32 + 1);
        rows * LEGEND_ROW + 8
    }

    fn legend<DB: Backend>(&self, area: &DrawingArea<DB, Shift>, text: bool) -> Result<()> {
        let style = font(LEGEND_FONT).pos(Pos::new(HPos::Left, VPos::Center));
        for (run, x, row) in self.legend_layout() {
            let y = row * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
            let line = colour(run).stroke_width(4);
            area.draw(&PathElement::new([(x, y), (x + SWATCH - 6, y)], line))?;
            if text {
                let at = (x + SWATCH, y);
                area.draw(&Text::new(self.runs[run].as_str(), at, style.clone()))?;
            }
        }
        Ok(())
    }

    /// The x range shared by all panels, so that runs line up from panel to panel.
    fn x_range(&self) -> Range<f64> {
        let xs = self.panels.iter().flat_map(|p| {
            p.curves.iter().flat_map(|c| {
                c.x.iter()
                    .zip(&c.y)
                    .filter(|(_, y)| y.is_finite())
                    .map(|(x, _)| *x)
            })
        });
        match min_max(xs) {
            Some((lo, hi)) => padded(lo, hi, 0.04),
            None => 0.0..1.0,
        }
    }

    /// True when every finite x is a whole number (steps): then only integer ticks.
    fn integer_x(&self) -> bool {
        self.panels
            .iter()
            .flat_map(|p| p.curves.iter().flat_map(|c| c.x.iter()))
            .filter(|x| x.is_finite())
            .all(|x| x.fract() == 0.0)
    }
}

impl Figure for Curves<'_> {
    fn size(&self) -> (u32, u32) {
        let h = 68 + self.legend_height() + self.rows() * PANEL_H;
        (self.width(), h.min(6000))
    }

    fn draw<DB: Backend>(&self, root: &DrawingArea<DB, Shift>, text: bool) -> Result<()> {
        root.fill(&WHITE)?;
        let mut subtitle = format!(
            "{} run{}   ·   x: {}",
            self.runs.len(),
            if self.runs.len() == 1 { "" } else { "s" },
            self.x_label
        );
        if self.smooth > 0.0 {
            subtitle += &format!(
                "   ·   EMA smoothing {} (raw values faint)",
                format!("{:.3}", self.smooth).trim_end_matches('0')
            );
        }
        let area = header(root, text, self.title, &subtitle)?;
        if self.panels.is_empty() {
            return no_data(&area, text);
        }
        let (legend, grid) = area.split_vertically(self.legend_height());
        self.legend(&legend, text)?;
        let cells = grid.split_evenly((self.rows() as usize, self.cols as usize));
        let xr = self.x_range();
        let integer_x = self.integer_x();
        let n = self.panels.len();
        for (i, (panel, cell)) in self.panels.iter().zip(&cells).enumerate() {
            // The x description only under the lowest panel of each column.
            let lowest = i + self.cols as usize >= n;
            let x_desc = if lowest { self.x_label } else { "" };
            self.panel(cell, text, panel, xr.clone(), integer_x, x_desc)?;
        }
        Ok(())
    }
}

/// Maximal runs of points with finite x and y, so that gaps stay gaps.
fn segments(x: &[f64], y: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for (&a, &b) in x.iter().zip(y) {
        if a.is_finite() && b.is_finite() {
            cur.push((a, b));
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl Curves<'_> {
    fn panel<DB: Backend>(
        &self,
        cell: &DrawingArea<DB, Shift>,
        text: bool,
        panel: &Panel,
        xr: Range<f64>,
        integer_x: bool,
        x_desc: &str,
    ) -> Result<()> {
        let (top, body) = cell.split_vertically(26);
        if text {
            let mid = top.dim_in_pixel().0 as i32 / 2;
            let style = font(16.0).pos(Pos::new(HPos::Center, VPos::Top));
            top.draw(&Text::new(panel.name.as_str(), (mid, 6), style))?;
        }
        let ys = panel.curves.iter().flat_map(|c| {
            let bars = c.ci.iter().flatten().flat_map(|&(lo, hi)| [lo, hi]);
            c.y.iter().copied().chain(bars)
        });
        let ys: Vec<f64> = ys.filter(|v| v.is_finite()).collect();
        let Some((lo, hi)) = min_max(ys.iter().copied()) else {
            return no_data(&body, text);
        };
        // A log axis only when nothing would be lost on it (losses, gradient norms).
        match wants_log(ys.iter().copied()).filter(|_| lo > 0.0) {
            Some((lo, hi)) => self.chart(
                &body,
                text,
                panel,
                xr,
                log_range(lo, hi),
                integer_x,
                x_desc,
                true,
            ),
            None => {
                let yr: RangedCoordf64 = padded(lo, hi, 0.08).into();
                self.chart(&body, text, panel, xr, yr, integer_x, x_desc, false)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn chart<DB: Backend, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
        &self,
        area: &DrawingArea<DB, Shift>,
        text: bool,
        panel: &Panel,
        xr: Range<f64>,
        yr: Y,
        integer_x: bool,
        x_desc: &str,
        log: bool,
    ) -> Result<()> {
        let x_fmt = tick_fmt(&xr);
        let y_fmt = tick_fmt(&yr.range());
        let xspan = xr.end - xr.start;
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .margin_top(2)
            .margin_right(18)
            .x_label_area_size(if x_desc.is_empty() { 28 } else { 50 })
            .y_label_area_size(66)
            .build_cartesian_2d(xr, yr)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_labels(6).y_labels(6);
        if integer_x {
            mesh.x_label_formatter(&fmt_index_tick);
        } else {
            mesh.x_label_formatter(&x_fmt);
        }
        if log {
            mesh.y_label_formatter(&fmt_log_tick);
        } else {
            mesh.y_label_formatter(&y_fmt);
        }
        finish_mesh(&mut mesh, text, x_desc, "")?;

        let k = panel.curves.len();
        for (j, c) in panel.curves.iter().enumerate() {
            let col = colour(c.run);
            if panel.points {
                // Runs evaluated at the same steps: a small sideways offset keeps the error
                // bars apart.
                let dx = (j as f64 - (k as f64 - 1.0) / 2.0) * 0.006 * xspan;
                let x: Vec<f64> = c.x.iter().map(|v| v + dx).collect();
                for seg in segments(&x, &c.y) {
                    let line = col.mix(0.5).stroke_width(1);
                    chart.draw_series(LineSeries::new(seg.iter().copied(), line))?;
                    chart.draw_series(seg.iter().map(|&p| Circle::new(p, 4, col.filled())))?;
                }
                if let Some(ci) = &c.ci {
                    let bar = col.stroke_width(2);
                    let cap = 0.004 * xspan;
                    for (&x, &(lo, hi)) in x.iter().zip(ci) {
                        if !(x.is_finite() && lo.is_finite() && hi.is_finite()) {
                            continue;
                        }
                        chart.draw_series([
                            PathElement::new(vec![(x, lo), (x, hi)], bar),
                            PathElement::new(vec![(x - cap, lo), (x + cap, lo)], bar),
                            PathElement::new(vec![(x - cap, hi), (x + cap, hi)], bar),
                        ])?;
                    }
                }
                continue;
            }
            let main = if self.smooth > 0.0 {
                for seg in segments(&c.x, &c.y) {
                    let faint = col.mix(0.25);
                    if seg.len() == 1 {
                        chart.draw_series([Circle::new(seg[0], 2, faint.filled())])?;
                    }
                    chart.draw_series(LineSeries::new(seg, faint.stroke_width(1)))?;
                }
                ema(&c.y, self.smooth)
            } else {
                c.y.clone()
            };
            let segs = segments(&c.x, &main);
            let few = segs.iter().map(Vec::len).sum::<usize>() <= 40;
            for seg in segs {
                // Each curve 2 px wider than the next one drawn over it, so that runs with
                // identical values (e.g. one seed twice) show as nested lines, not one.
                let width = if self.smooth > 0.0 { 3 } else { 2 } + 2 * (k - 1 - j) as u32;
                // Markers for short series, and always for isolated points (no line to see).
                if few || seg.len() == 1 {
                    chart.draw_series(seg.iter().map(|&p| Circle::new(p, 3, col.filled())))?;
                }
                chart.draw_series(LineSeries::new(seg, col.stroke_width(width)))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::output::{render_with, with_suffix};

    fn curve(run: usize, y: &[f64]) -> Curve {
        Curve {
            run,
            x: (0..y.len()).map(|i| i as f64).collect(),
            y: y.to_vec(),
            ci: None,
        }
    }

    fn panel(name: &str, curves: Vec<Curve>) -> Panel {
        Panel {
            name: name.into(),
            curves,
            points: false,
        }
    }

    /// Where to write: EGI_REPORT_PLOT_DIR keeps the figures for viewing.
    fn out_dir() -> (std::path::PathBuf, Option<tempfile::TempDir>) {
        match std::env::var_os("EGI_REPORT_PLOT_DIR") {
            Some(d) => {
                let d = std::path::PathBuf::from(d).join("curves");
                std::fs::create_dir_all(&d).unwrap();
                (d, None)
            }
            None => {
                let t = tempfile::tempdir().unwrap();
                (t.path().to_path_buf(), Some(t))
            }
        }
    }

    fn png_pixels(stem: &Path) -> (u32, u32, Vec<u8>) {
        let bytes = std::fs::read(with_suffix(stem, "png")).unwrap();
        let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn count_colour(rgb: &[u8], c: RGBColor) -> usize {
        rgb.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count()
    }

    #[test]
    fn ema_is_debiased_and_keeps_gaps() {
        assert_eq!(ema(&[1.0, 2.0, 3.0], 0.0), vec![1.0, 2.0, 3.0]);
        let s = ema(&[2.0, f64::NAN, 2.0, 2.0], 0.9);
        assert!(s[1].is_nan());
        // A constant series stays constant from the first point on (no pull towards 0).
        for v in [s[0], s[2], s[3]] {
            assert!((v - 2.0).abs() < 1e-12, "{s:?}");
        }
        let s = ema(&[0.0, 1.0], 0.5);
        assert!((s[1] - 2.0 / 3.0).abs() < 1e-12, "{s:?}");
        assert_eq!(ema(&[f64::INFINITY, 1.0], 0.5)[1], 1.0);
    }

    #[test]
    fn grid_layout_and_legend_wrap() {
        let runs: Vec<String> = (0..12)
            .map(|i| format!("a-rather-long-run-name-{i}"))
            .collect();
        let panels: Vec<Panel> = (0..11).map(|i| panel(&format!("m{i}"), vec![])).collect();
        let c = Curves::new(&runs, &panels, "step", "t", 0.0);
        assert_eq!((c.cols, c.rows()), (4, 3));
        let layout = c.legend_layout();
        assert!(layout.last().unwrap().2 >= 1, "12 long names wrap");
        assert!(layout.iter().all(|&(_, x, _)| x < c.width() as i32 - 20));
        assert_eq!(
            Curves::new(&runs, &panels[..1], "step", "t", 0.0).width(),
            800
        );
        assert_eq!(
            segments(&[0.0, 1.0, 2.0, 3.0], &[1.0, f64::NAN, 2.0, 3.0]),
            vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 3.0)]]
        );
    }

    /// Nulls, a constant series, a single point, inf/NaN, a metric one run lacks, a panel
    /// nobody has, eval points with intervals: all drawn, with and without smoothing and text.
    #[test]
    fn awkward_inputs_are_drawn() {
        let (dir, _keep) = out_dir();
        let runs = vec!["grpo-base (grpo)".to_string(), "corr (corr-po)".to_string()];
        let noisy = |run: usize, shift: f64| {
            let y: Vec<f64> = (0..120)
                .map(|i| shift + 0.4 * (i as f64 / 120.0) + 0.15 * ((i * 7919 % 13) as f64 / 13.0))
                .collect();
            curve(run, &y)
        };
        let mut gappy = noisy(1, 0.1);
        for i in 40..50 {
            gappy.y[i] = f64::NAN;
        }
        gappy.y[60] = f64::INFINITY;
        let eval = |run: usize, acc: [f64; 3]| Curve {
            run,
            x: vec![0.0, 60.0, 119.0],
            y: acc.to_vec(),
            ci: Some(acc.iter().map(|a| (a - 0.08, a + 0.08)).collect()),
        };
        let panels = vec![
            panel("reward_mean", vec![noisy(0, 0.2), gappy]),
            // Present in one run only (GRPO logs no rho).
            panel("rho_mean", vec![noisy(1, -0.3)]),
            panel("kl", vec![curve(0, &[0.0; 120]), curve(1, &[0.0; 120])]),
            panel("lr", vec![curve(0, &[1e-6; 120]), curve(1, &[1e-6; 120])]),
            panel("single", vec![curve(0, &[0.5])]),
            panel("nobody", vec![]),
            panel("all_nan", vec![curve(0, &[f64::NAN, f64::INFINITY])]),
            panel(
                "loss",
                vec![curve(
                    0,
                    &(1..120)
                        .map(|i| 5.0 / i as f64 / i as f64)
                        .collect::<Vec<_>>(),
                )],
            ),
            Panel {
                name: "eval_accuracy".into(),
                curves: vec![eval(0, [0.3, 0.4, 0.45]), eval(1, [0.3, 0.42, f64::NAN])],
                points: true,
            },
        ];
        for (name, smooth, text) in [
            ("raw", 0.0, true),
            ("smooth", 0.9, true),
            ("notext", 0.6, false),
        ] {
            let stem = dir.join(format!("curves-{name}"));
            let fig = Curves::new(&runs, &panels, "step", "training curves", smooth);
            render_with(&stem, &fig, text && super::super::font::text_available()).unwrap();
            let svg = std::fs::read_to_string(with_suffix(&stem, "svg")).unwrap();
            assert!(svg.trim_end().ends_with("</svg>"));
            let (w, h, rgb) = png_pixels(&stem);
            assert_eq!((w, h), fig.size());
            // Far more of each run's colour than its legend swatch (about 100 pixels): the
            // lines were drawn.
            for c in &PALETTE[..2] {
                assert!(count_colour(&rgb, *c) > 1000, "{name}: {c:?}");
            }
            if text && super::super::font::text_available() {
                for s in [
                    "training curves",
                    "reward_mean",
                    "eval_accuracy",
                    "corr (corr-po)",
                ] {
                    assert!(svg.contains(s), "{name}: SVG lacks {s:?}");
                }
            }
        }
    }

    #[test]
    fn public_entry_point_and_empty_input() {
        let (dir, _keep) = out_dir();
        let stem = dir.join("curves-empty");
        curves(&stem, &[], &[], "step", "nothing yet", 0.9).unwrap();
        assert!(with_suffix(&stem, "svg").is_file() && with_suffix(&stem, "png").is_file());
        let stem = dir.join("curves-one");
        let runs = vec!["only".to_string()];
        let panels = vec![panel("loss", vec![curve(0, &[2.0, 1.5, f64::NAN, 1.2])])];
        curves(&stem, &runs, &panels, "step", "one run", f64::NAN).unwrap();
        let (_, _, rgb) = png_pixels(&stem);
        assert!(count_colour(&rgb, PALETTE[0]) > 300);
    }
}
