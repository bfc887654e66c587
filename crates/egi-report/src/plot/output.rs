//! Rendering a [`Figure`] to SVG and PNG and writing both atomically.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

use super::raster::GlyphText;
use super::{font, Figure};

/// Renders `fig` into `<stem>.svg` and `<stem>.png`.
pub(super) fn render(stem: &Path, fig: &impl Figure) -> Result<()> {
    render_with(stem, fig, font::text_available())
}

/// As [`render`], with text switched explicitly (tests exercise the no-font path with it).
pub(super) fn render_with(stem: &Path, fig: &impl Figure, text: bool) -> Result<()> {
    let (w, h) = fig.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        fig.draw(&root, text).context("drawing SVG")?;
        root.present()?;
    }
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let backend = GlyphText::new(BitMapBackend::with_buffer(&mut rgb, (w, h)));
        let root = backend.into_drawing_area();
        fig.draw(&root, text).context("drawing PNG")?;
        root.present()?;
    }
    let png = encode_png(&rgb, w, h)?;
    write_atomic(&with_suffix(stem, "svg"), svg.as_bytes())?;
    write_atomic(&with_suffix(stem, "png"), &png)?;
    Ok(())
}

/// `stem` + "." + `ext`; appending (not `with_extension`) keeps dots inside the stem.
pub(super) fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut s: OsString = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Temp file in the destination directory, then rename: readers never see a partial file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".egi-plot-").suffix(".tmp");
    // tempfile defaults to 0600; plots are meant to be shared like any other output.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.flush()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
