//! Rendering a [`Figure`] to SVG and PNG and writing both atomically.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

use super::raster::GlyphText;
use super::{font, Figure};
use crate::fs::write_atomic;

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
    // A plot goes into a folder that exists: a mistyped path is an error, not a new tree.
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            anyhow::bail!("{}: no such folder for the plot", dir.display());
        }
    }
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
