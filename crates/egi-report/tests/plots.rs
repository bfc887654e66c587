//! Every plot writes a non-empty SVG and PNG, with text, and copes with empty and NaN input.
//! Set EGI_REPORT_PLOT_DIR to keep the figures for viewing.

use std::path::{Path, PathBuf};

use egi_report::plot;
use egi_report::stats::spearman;

struct Out {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

fn out(name: &str) -> Out {
    match std::env::var_os("EGI_REPORT_PLOT_DIR") {
        Some(d) => {
            let dir = PathBuf::from(d).join(name);
            std::fs::create_dir_all(&dir).unwrap();
            Out { dir, _tmp: None }
        }
        None => {
            let tmp = tempfile::tempdir().unwrap();
            Out {
                dir: tmp.path().to_path_buf(),
                _tmp: Some(tmp),
            }
        }
    }
}

fn suffixed(stem: &Path, ext: &str) -> PathBuf {
    PathBuf::from(format!("{}.{ext}", stem.display()))
}

/// Decoded PNG: (width, height, RGB bytes).
fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} lacks the PNG magic",
        path.display()
    );
    assert!(
        bytes.len() > 4_000,
        "{}: {} bytes",
        path.display(),
        bytes.len()
    );
    assert!(
        bytes.len() < 8_000_000,
        "{}: {} bytes",
        path.display(),
        bytes.len()
    );
    let dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Checks both files and returns the SVG text and the decoded PNG.
fn check(stem: &Path, title: &str) -> (String, (u32, u32, Vec<u8>)) {
    check_ink(stem, title, 100)
}

/// As [`check`], demanding that more than 1/`per` of the PNG's pixels are not white.
fn check_ink(stem: &Path, title: &str, per: usize) -> (String, (u32, u32, Vec<u8>)) {
    let svg = std::fs::read_to_string(suffixed(stem, "svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains(title), "SVG lacks the title {title:?}");
    let png = read_png(&suffixed(stem, "png"));
    assert!(png.0 >= 640 && png.1 >= 360, "{}x{}", png.0, png.1);
    // Drawn on, not blank: a fair share of pixels is not white.
    let inked = png.2.chunks(3).filter(|p| p != &[255, 255, 255]).count();
    assert!(inked * per > (png.0 * png.1) as usize, "almost blank PNG");
    (svg, png)
}

/// Pixels differing between two same-size images within rows y0..y1.
fn diff_rows(a: &(u32, u32, Vec<u8>), b: &(u32, u32, Vec<u8>), y0: u32, y1: u32) -> usize {
    assert_eq!((a.0, a.1), (b.0, b.1));
    let row = a.0 as usize * 3;
    let (s, e) = (y0 as usize * row, y1 as usize * row);
    a.2[s..e]
        .chunks(3)
        .zip(b.2[s..e].chunks(3))
        .filter(|(p, q)| p != q)
        .count()
}

fn test_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-data")
}

struct Case {
    entropy: Vec<f64>,
    influence: Vec<f64>,
    /// nuclear[token][layer * 4 + projection]
    nuclear: Vec<Vec<f64>>,
    step_starts: Vec<usize>,
}

fn fixture_case(i: usize) -> Case {
    let path = test_data().join("reference/smollm2_public.json");
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let c = &fx["cases"][i];
    let toks = c["tokens"].as_array().unwrap();
    let f = |t: &serde_json::Value, k: &str| t[k].as_f64().unwrap();
    let mut step_starts = vec![0];
    for s in c["steps"].as_array().unwrap() {
        let last = *step_starts.last().unwrap();
        step_starts.push(last + s["n_tokens"].as_u64().unwrap() as usize);
    }
    step_starts.pop();
    Case {
        entropy: toks.iter().map(|t| f(t, "entropy")).collect(),
        influence: toks.iter().map(|t| f(t, "influence")).collect(),
        nuclear: toks
            .iter()
            .map(|t| {
                t["nuclear"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect(),
        step_starts,
    }
}

/// Mean nuclear norm per (layer, projection) over a case's tokens.
fn layer_means(c: &Case) -> Vec<Vec<f64>> {
    let layers = c.nuclear[0].len() / 4;
    (0..layers)
        .map(|l| {
            (0..4)
                .map(|p| {
                    c.nuclear.iter().map(|n| n[l * 4 + p]).sum::<f64>() / c.nuclear.len() as f64
                })
                .collect()
        })
        .collect()
}

#[test]
fn scatter_on_fixture_and_text_renders_in_png() {
    let o = out("scatter");
    let c = fixture_case(0);
    let rho = spearman(&c.entropy, &c.influence);
    let stem = o.dir.join("scatter");
    let title = "SmolLM2-135M-Instruct: apples";
    plot::scatter_entropy_influence(&stem, &c.entropy, &c.influence, rho, title).unwrap();
    let (svg, png) = check(&stem, title);
    assert!(svg.contains("Spearman rho = -0.14"), "rho caption missing");
    assert!(svg.contains("token entropy (nats)"));

    // Text really reaches the PNG: another title changes the title band only.
    let stem2 = o.dir.join("scatter-other-title");
    plot::scatter_entropy_influence(&stem2, &c.entropy, &c.influence, rho, "Something else")
        .unwrap();
    let (_, png2) = check(&stem2, "Something else");
    assert!(
        diff_rows(&png, &png2, 0, 40) > 200,
        "title not drawn in PNG"
    );
    assert_eq!(diff_rows(&png, &png2, 80, png.1), 0);

    // Undefined rho; values spanning > 2 decades go on a log axis.
    let stem = o.dir.join("scatter-log");
    let e: Vec<f64> = (0..200).map(|i| (i % 37) as f64 * 0.1).collect();
    let inf: Vec<f64> = e.iter().map(|x| 10f64.powf(3.0 - x)).collect();
    plot::scatter_entropy_influence(&stem, &e, &inf, None, "log").unwrap();
    let (svg, _) = check(&stem, "log");
    assert!(svg.contains("rho undefined") && svg.contains("log y"));
}

#[test]
fn histogram_heatmap_along_forest_on_realistic_data() {
    let o = out("figures");
    let cases: Vec<Case> = (0..3).map(fixture_case).collect();

    let rhos = [
        -0.65, -0.61, -0.7, -0.42, -0.55, -0.8, -0.3, 0.05, -0.5, -0.66, -1.0, 1.0,
    ];
    let mean = rhos.iter().sum::<f64>() / rhos.len() as f64;
    let stem = o.dir.join("hist");
    plot::histogram(
        &stem,
        &rhos,
        "per-response Spearman rho",
        "rho histogram",
        Some(mean),
    )
    .unwrap();
    let (svg, _) = check(&stem, "rho histogram");
    assert!(svg.contains("mean = -0.43") && svg.contains("10 below 0"));

    let stem = o.dir.join("heat");
    let values = layer_means(&cases[1]);
    assert_eq!(values.len(), 30);
    plot::heatmap(
        &stem,
        &values,
        "layer",
        &["q", "k", "v", "o"],
        "nuclear norm by layer",
    )
    .unwrap();
    let (svg, png) = check(&stem, "nuclear norm by layer");
    assert!(
        svg.contains(">\nq\n") || svg.contains(">q\n"),
        "projection labels"
    );
    assert!(png.1 >= 600);

    let stem = o.dir.join("heat-small");
    let small = vec![
        vec![1.0, 2.0, 3.0, f64::NAN],
        vec![4.0, 5.0],
        vec![0.5, 9.0, 2.0, 1.0],
    ];
    plot::heatmap(&stem, &small, "layer", &["q", "k", "v", "o"], "small").unwrap();
    check(&stem, "small");

    let c = &cases[0];
    let stem = o.dir.join("along");
    plot::along_response(
        &stem,
        &c.entropy,
        &c.influence,
        &c.step_starts,
        "along apples",
    )
    .unwrap();
    let (svg, _) = check(&stem, "along apples");
    assert!(svg.contains("3 steps"));

    let stem = o.dir.join("forest");
    let rows = vec![
        ("SmolLM2 base".to_string(), 0.04, -0.1, 0.17),
        ("SmolLM2 instruct".to_string(), -0.14, -0.4, 0.12),
        (
            "Qwen2.5-Math-1.5B reasoning".to_string(),
            -0.62,
            -0.7,
            -0.55,
        ),
        ("undefined".to_string(), f64::NAN, f64::NAN, f64::NAN),
    ];
    plot::compare_intervals(
        &stem,
        &rows,
        "token-level Spearman rho",
        "inversion by model",
    )
    .unwrap();
    let (svg, _) = check(&stem, "inversion by model");
    assert!(svg.contains("Qwen2.5-Math-1.5B reasoning"));
    assert!(svg.contains("-0.620 [-0.700, -0.550]"));

    // Only the finished files remain: temporaries were renamed away.
    let mut names: Vec<String> = std::fs::read_dir(&o.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    assert!(names.is_empty(), "leftovers: {names:?}");
}

/// One plot call, writing to the given stem.
type PlotFn<'a> = Box<dyn Fn(&Path) -> anyhow::Result<()> + 'a>;

#[test]
fn empty_and_nan_inputs_write_no_data_figures() {
    let o = out("degenerate");
    let nan = f64::NAN;
    let e = [1.0, nan, 2.0, f64::INFINITY, 3.0, 0.5];
    let i = [5.0, 4.0, nan, 1.0, 2.0, -1.0];

    let cases: Vec<(&str, PlotFn)> = vec![
        (
            "scatter-empty",
            Box::new(|s| plot::scatter_entropy_influence(s, &[], &[], None, "t")),
        ),
        (
            "scatter-allnan",
            Box::new(|s| plot::scatter_entropy_influence(s, &[nan; 3], &[1.0; 3], None, "t")),
        ),
        (
            "hist-empty",
            Box::new(|s| plot::histogram(s, &[], "rho", "t", None)),
        ),
        (
            "hist-nan",
            Box::new(|s| plot::histogram(s, &[nan, f64::NEG_INFINITY], "rho", "t", Some(nan))),
        ),
        (
            "heat-empty",
            Box::new(|s| plot::heatmap(s, &[], "layer", &[], "t")),
        ),
        (
            "heat-emptyrows",
            Box::new(|s| plot::heatmap(s, &[vec![], vec![nan]], "layer", &["q"], "t")),
        ),
        (
            "along-empty",
            Box::new(|s| plot::along_response(s, &[], &[], &[0, 5], "t")),
        ),
        (
            "forest-empty",
            Box::new(|s| plot::compare_intervals(s, &[], "x", "t")),
        ),
        (
            "forest-nan",
            Box::new(|s| plot::compare_intervals(s, &[("a".into(), nan, nan, nan)], "x", "t")),
        ),
    ];
    for (name, f) in &cases {
        let stem = o.dir.join(name);
        f(&stem).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        // A frame and two lines of text: little ink, but some.
        let (svg, _) = check_ink(&stem, "t", 1000);
        assert!(svg.contains("no data"), "{name}: no 'no data'");
    }

    // Partly NaN input: drawn from the finite values, no "no data".
    let partial: Vec<(&str, PlotFn)> = vec![
        (
            "scatter-nan",
            Box::new(|s| plot::scatter_entropy_influence(s, &e, &i, Some(nan), "t")),
        ),
        (
            "scatter-unequal",
            Box::new(|s| plot::scatter_entropy_influence(s, &e, &i[..4], Some(0.1), "t")),
        ),
        (
            "hist-nan",
            Box::new(|s| plot::histogram(s, &[0.2, nan, -0.4, 1.7], "v", "t", Some(0.5))),
        ),
        (
            "heat-nan",
            Box::new(|s| plot::heatmap(s, &[vec![nan, 1.0], vec![1.0, 1.0]], "l", &[], "t")),
        ),
        (
            "along-nan",
            Box::new(|s| plot::along_response(s, &e, &i, &[0, 2, 99, 2], "t")),
        ),
        (
            "forest-partial",
            Box::new(|s| plot::compare_intervals(s, &[("a".into(), 0.3, nan, 0.5)], "x", "t")),
        ),
    ];
    for (name, f) in &partial {
        let stem = o.dir.join(name);
        f(&stem).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let (svg, _) = check(&stem, "t");
        assert!(!svg.contains("no data"), "{name}");
    }
}

#[test]
fn stem_keeps_dots_and_bad_directory_is_an_error() {
    let o = out("stems");
    let stem = o.dir.join("rho.v2");
    plot::histogram(&stem, &[0.1], "rho", "dots", None).unwrap();
    assert!(o.dir.join("rho.v2.svg").is_file() && o.dir.join("rho.v2.png").is_file());

    let missing = o.dir.join("no/such/dir/plot");
    assert!(plot::histogram(&missing, &[0.1], "rho", "t", None).is_err());
}
