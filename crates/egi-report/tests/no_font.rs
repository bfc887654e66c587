//! Without a font the figures are still written, with no text at all, and one warning is
//! logged. A separate test binary: the font lookup happens once per process.

use std::io::Write;
use std::sync::{Arc, Mutex};

use egi_report::plot;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn plots_without_a_font_are_written_without_text() {
    // The only test in this binary, so no other thread reads the environment meanwhile.
    std::env::set_var(plot::FONT_ENV, "none");
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = [0.1, 0.5, 2.0, f64::NAN, 1.2];
    let i = [30.0, 20.0, 10.0, 5.0, 12.0];
    plot::scatter_entropy_influence(&d.join("a"), &e, &i, Some(-0.5), "title a").unwrap();
    plot::scatter_entropy_influence(&d.join("a0"), &[], &[], None, "title a0").unwrap();
    plot::histogram(
        &d.join("b"),
        &[-0.5, 0.2, -0.9],
        "rho",
        "title b",
        Some(-0.4),
    )
    .unwrap();
    plot::heatmap(
        &d.join("c"),
        &[vec![1.0, 2.0], vec![3.0, 4.0]],
        "layer",
        &["q", "k"],
        "c",
    )
    .unwrap();
    plot::along_response(&d.join("d"), &e, &i, &[0, 2], "title d").unwrap();
    let rows = vec![("x".to_string(), -0.2, -0.4, 0.1)];
    plot::compare_intervals(&d.join("f"), &rows, "rho", "title f").unwrap();

    for stem in ["a", "a0", "b", "c", "d", "f"] {
        let png = std::fs::read(d.join(format!("{stem}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 2_000,
            "{stem}"
        );
        let svg = std::fs::read_to_string(d.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{stem}");
        assert!(!svg.contains("<text"), "{stem}: text drawn without a font");
    }
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        logs.matches("plots are drawn without text").count(),
        1,
        "{logs}"
    );
    assert!(logs.contains("WARN"), "{logs}");
}
