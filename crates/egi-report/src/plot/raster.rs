//! PNG text rendering. plotters 0.3.7's ab_glyph renderer drops each glyph's left side
//! bearing and rounds the pen position per glyph, so small text comes out as "rh o un de fined".
//! This wrapper lays glyphs out properly (kerning, bearings, sub-pixel pen) and passes every
//! other drawing call straight through to the wrapped backend.

use ab_glyph::{point, Font, FontRef, OutlinedGlyph, PxScale, ScaleFont};
use plotters::style::FontStyle;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use super::font;

pub(super) struct GlyphText<B> {
    inner: B,
}

impl<B> GlyphText<B> {
    pub(super) fn new(inner: B) -> Self {
        GlyphText { inner }
    }
}

/// Glyphs positioned relative to the text box's top-left corner (box = advance width by
/// ascent - descent).
struct Laid {
    glyphs: Vec<OutlinedGlyph>,
    width: f32,
    height: f32,
}

fn lay_out(face: &FontRef<'static>, size: f64, text: &str) -> Laid {
    // plotters' size convention: the SVG backend writes font-size = size / 1.24 (the em), so
    // the PNG uses the same em and both files show text of the same size.
    let em = size as f32 / 1.24;
    let units = face.units_per_em().unwrap_or(2048.0);
    let scale = PxScale::from(em * face.height_unscaled() / units);
    let sf = face.as_scaled(scale);
    let mut glyphs = Vec::with_capacity(text.len());
    let mut caret = 0.0f32;
    let mut prev = None;
    for c in text.chars().filter(|c| !c.is_control()) {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            caret += sf.kern(p, id);
        }
        let g = id.with_scale_and_position(scale, point(caret, sf.ascent()));
        caret += sf.h_advance(id);
        prev = Some(id);
        if let Some(o) = face.outline_glyph(g) {
            glyphs.push(o);
        }
    }
    Laid {
        glyphs,
        width: caret,
        height: sf.ascent() - sf.descent(),
    }
}

fn face_for<S: BackendTextStyle>(style: &S) -> Option<&'static FontRef<'static>> {
    let faces = font::faces()?;
    Some(match style.style() {
        FontStyle::Bold => faces.bold.as_ref().unwrap_or(&faces.regular),
        _ => &faces.regular,
    })
}

impl<B: DrawingBackend> DrawingBackend for GlyphText<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let Some(face) = face_for(style) else {
            return self.inner.estimate_text_size(text, style);
        };
        let laid = lay_out(face, style.size(), text);
        Ok((laid.width.ceil() as u32, laid.height.ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let Some(face) = face_for(style) else {
            return self.inner.draw_text(text, style, pos);
        };
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let laid = lay_out(face, style.size(), text);
        let (w, h) = (laid.width.round() as i32, laid.height.round() as i32);
        // Anchor offsets in the unrotated frame, then rotate about `pos`, as plotters does.
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Center => -w / 2,
            HPos::Right => -w,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let trans = style.transform();
        let (bw, bh) = self.inner.get_size();
        let mut result = Ok(());
        for g in &laid.glyphs {
            let b = g.px_bounds();
            let (gx, gy) = (b.min.x as i32 + dx, b.min.y as i32 + dy);
            g.draw(|x, y, coverage| {
                if result.is_err() || coverage <= 0.0 {
                    return;
                }
                let (tx, ty) = trans.transform(gx + x as i32, gy + y as i32);
                let (px, py) = (pos.0 + tx, pos.1 + ty);
                if px < 0 || py < 0 || px >= bw as i32 || py >= bh as i32 {
                    return;
                }
                let c = BackendColor {
                    alpha: color.alpha * f64::from(coverage.min(1.0)),
                    rgb: color.rgb,
                };
                result = self.inner.draw_pixel((px, py), c);
            });
        }
        result
    }
}
