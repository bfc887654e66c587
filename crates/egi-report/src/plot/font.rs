//! Run-time font discovery for plot text. plotters' ab_glyph backend is pure Rust (no
//! fontconfig/freetype build dependencies) but has no system font lookup, so we find a font
//! file ourselves and register it as "sans-serif" once per process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ab_glyph::FontRef;
use plotters::style::{register_font, FontStyle};

/// Environment variable naming a TTF/OTF file to use for plot text; "none" disables text.
pub const FONT_ENV: &str = "EGI_PLOT_FONT";

/// Regular/bold pairs tried in order (Debian/Ubuntu, Fedora, Arch, then Liberation, macOS and
/// Windows fallbacks).
const CANDIDATES: &[(&str, &str)] = &[
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
        "/usr/share/fonts/liberation-sans/LiberationSans-Bold.ttf",
    ),
    (
        "/System/Library/Fonts/Supplemental/Arial.ttf",
        "/System/Library/Fonts/Supplemental/Arial Bold.ttf",
    ),
    (
        "C:\\Windows\\Fonts\\arial.ttf",
        "C:\\Windows\\Fonts\\arialbd.ttf",
    ),
];

/// The family name every plot uses (plotters' default for axis labels).
pub const FAMILY: &str = "sans-serif";

/// The loaded faces: registered with plotters (SVG text measurement) and used directly by
/// `GlyphText` (raster.rs) for PNG text.
pub struct Faces {
    pub regular: FontRef<'static>,
    pub bold: Option<FontRef<'static>>,
}

/// The faces, or `None` when no font could be loaded (reported once with `tracing::warn!`).
pub fn faces() -> Option<&'static Faces> {
    static FACES: OnceLock<Option<Faces>> = OnceLock::new();
    FACES
        .get_or_init(|| match setup() {
            Ok((path, faces)) => {
                tracing::debug!(font = %path.display(), "plot font registered");
                Some(faces)
            }
            Err(why) => {
                tracing::warn!(
                    "plots are drawn without text: {why} (set {FONT_ENV} to a .ttf/.otf file, \
                     or install fonts-dejavu-core)"
                );
                None
            }
        })
        .as_ref()
}

/// True when text can be drawn.
pub fn text_available() -> bool {
    faces().is_some()
}

fn setup() -> Result<(PathBuf, Faces), String> {
    if let Some(v) = std::env::var_os(FONT_ENV) {
        if v.is_empty() || v == "none" {
            return Err(format!("{FONT_ENV}={}", v.to_string_lossy()));
        }
        let p = PathBuf::from(v);
        let regular = load(&p, FontStyle::Normal)?;
        return Ok((
            p,
            Faces {
                regular,
                bold: None,
            },
        ));
    }
    for (regular, bold) in CANDIDATES {
        let regular = Path::new(regular);
        if !regular.is_file() {
            continue;
        }
        if let Ok(face) = load(regular, FontStyle::Normal) {
            // Bold is optional: plotters falls back to the regular face, and so do we.
            let bold = load(Path::new(bold), FontStyle::Bold).ok();
            let faces = Faces {
                regular: face,
                bold,
            };
            return Ok((regular.to_path_buf(), faces));
        }
    }
    // Last resort: ask fontconfig, when its command-line tool is installed.
    if let Some(p) = fc_match("sans-serif") {
        if let Ok(face) = load(&p, FontStyle::Normal) {
            let bold = fc_match("sans-serif:bold").and_then(|b| load(&b, FontStyle::Bold).ok());
            let faces = Faces {
                regular: face,
                bold,
            };
            return Ok((p, faces));
        }
    }
    Err("no usable sans-serif font found".into())
}

fn fc_match(pattern: &str) -> Option<PathBuf> {
    let out = Command::new("fc-match")
        .args(["-f", "%{file}", pattern])
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !s.trim().is_empty()).then(|| PathBuf::from(s.trim()))
}

/// Reads, parses and registers one face.
fn load(path: &Path, style: FontStyle) -> Result<FontRef<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = || format!("{}: not a TrueType/OpenType font", path.display());
    // Parse before leaking, so a bad file costs nothing.
    FontRef::try_from_slice(&bytes).map_err(|_| bad())?;
    // plotters keeps &'static font data; at most two files per process are leaked.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font(FAMILY, style, bytes).map_err(|_| bad())?;
    FontRef::try_from_slice(bytes).map_err(|_| bad())
}
