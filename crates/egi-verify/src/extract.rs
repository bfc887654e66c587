//! Taking the final answer out of a response: boxes, `####`, answer phrases,
//! inline math, the bare response, the last number. Every rule is one linear
//! scan (or a bounded few), so extraction is linear in the response length.

use crate::{norm, value, ExtractMethod, Extracted, Options};

/// Largest extracted text we keep from a phrase / hash line.
const MAX_LINE: usize = 2_000;

/// One well-formed `\boxed{...}` / `\fbox{...}` (or `\boxed N`): its content and
/// the byte range it spans.
struct Boxed {
    start: usize,
    end: usize,
    inner: String,
}

/// The box starting at `pos` (the backslash), if well formed.
fn boxed_at(text: &str, pos: usize, len: usize) -> Option<Boxed> {
    let b = text.as_bytes();
    let mut i = pos + len;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    if i < b.len() && b[i] == b'{' {
        let st = i + 1;
        let mut depth = 0usize;
        let mut j = i;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 1,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        let inner = text[st..j].trim();
                        return (!inner.is_empty()).then(|| Boxed {
                            start: pos,
                            end: j + 1,
                            inner: inner.to_string(),
                        });
                    }
                }
                _ => {}
            }
            j += 1;
        }
        None
    } else if i > pos + len && i < b.len() {
        // "\boxed 5"
        let rest = &text[i..];
        let stop = rest
            .find(|c: char| c.is_whitespace() || c == '$')
            .unwrap_or(rest.len());
        let t = rest[..stop].trim_end_matches(['.', ',']);
        (!t.is_empty()).then(|| Boxed {
            start: pos,
            end: i + t.len(),
            inner: t.to_string(),
        })
    } else {
        None
    }
}

/// The last well-formed box before byte `end`, trying at most a few from the end
/// (linear work overall).
fn last_box_before(text: &str, mut end: usize) -> Option<Boxed> {
    for _ in 0..4 {
        let hay = &text[..end];
        let p1 = hay.rfind("\\boxed");
        let p2 = hay.rfind("\\fbox");
        let (pos, len) = match (p1, p2) {
            (Some(a), Some(c)) if c > a => (c, 5),
            (Some(a), _) => (a, 6),
            (None, Some(c)) => (c, 5),
            (None, None) => return None,
        };
        if let Some(bx) = boxed_at(text, pos, len) {
            return Some(bx);
        }
        end = pos;
    }
    None
}

/// Boxes on one line form one answer when only symbols or a connective lie
/// between them ("$\boxed{2}$ and $\boxed{5}$", "\boxed{-3}, \boxed{4}",
/// "\boxed{(3,3)} for part (a) and \boxed{(1,1)}"), not "\boxed{1} no no
/// \boxed{2}"; a line break (also an escaped `\n`) ends the list.
fn joins_boxes(gap: &str) -> bool {
    let b = gap.as_bytes();
    let escaped_break = b
        .windows(3)
        .any(|w| w[0] == b'\\' && w[1] == b'n' && !w[2].is_ascii_alphabetic())
        || gap.ends_with("\\n");
    if gap.len() > 160 || gap.contains('\n') || escaped_break {
        return false;
    }
    // words outside commands: "\text{ and }" keeps "and", "\quad" goes
    let mut words = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let st = i;
        if b[i] == b'\\' {
            i += 1;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            i = i.max(st + 2).min(b.len());
            continue;
        }
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        if i > st {
            words.push(gap[st..i].to_ascii_lowercase());
        } else {
            i += 1;
        }
    }
    // only symbols and connectives between, or an "and" / "or" among words
    words.is_empty() || words.iter().any(|w| w == "and" || w == "or")
}

/// The boxed answer: the boxes on the last box's line joined with ", " (at
/// most 16), the last box alone when there were several, and where the last
/// box ends.
struct BoxedAnswer {
    joined: String,
    last_alone: Option<String>,
    end: usize,
}

fn boxed_answer(text: &str) -> Option<BoxedAnswer> {
    let last = last_box_before(text, text.len())?;
    let end = last.end;
    let mut items = vec![last.inner];
    let mut start = last.start;
    while items.len() < 16 {
        match last_box_before(text, start) {
            Some(prev) if prev.end <= start && joins_boxes(&text[prev.end..start]) => {
                items.push(prev.inner);
                start = prev.start;
            }
            _ => break,
        }
    }
    let last_alone = (items.len() > 1).then(|| items[0].clone());
    items.reverse();
    Some(BoxedAnswer {
        joined: items.join(", "),
        last_alone,
        end,
    })
}

pub(crate) fn last_boxed(text: &str) -> Option<String> {
    boxed_answer(text).map(|b| b.joined)
}

pub(crate) fn hash_answer(text: &str) -> Option<String> {
    let p = text.rfind("####")?;
    let rest = &text[p + 4..];
    let line = rest.lines().next().unwrap_or("");
    let t = line.trim().trim_end_matches('.').trim();
    (!t.is_empty() && t.len() <= MAX_LINE).then(|| t.to_string())
}

/// "The answer is ..." / "Final answer: ...": where the phrase starts and the
/// rest of its line.
fn phrase_answer(text: &str) -> Option<(usize, String)> {
    let lower = text.to_ascii_lowercase();
    const PHRASES: &[&str] = &[
        "final answer is",
        "the answer is",
        "final answer:",
        "answer is:",
        "answer:",
    ];
    let (pos, len) = PHRASES
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, p.len())))
        .max_by_key(|x| (x.0 + x.1, x.1))?;
    let rest = text[pos + len..].trim_start_matches([' ', ':', '*', '\t']);
    let mut line = rest.lines().next().unwrap_or("").trim();
    if let Some(k) = line.find(". ") {
        // "D. 3/4" is a choice and its value, not a sentence end
        let choice = k == 1 && line.starts_with(|c: char| ('A'..='E').contains(&c));
        if !choice {
            line = &line[..k];
        }
    }
    let mut t = line.trim().trim_end_matches(['.', '*']).trim();
    // 'The final answer is "$12$ and $13$".'
    for q in ["\\\"", "\"", "\u{201c}", "\u{201d}"] {
        t = t.trim_start_matches(q).trim_end_matches(q).trim();
    }
    for (a, b) in [("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(x) = t.strip_prefix(a).and_then(|x| x.strip_suffix(b)) {
            t = x.trim();
        }
    }
    let t = t.trim_end_matches(['.', ',']).trim();
    (!t.is_empty() && t.len() <= MAX_LINE).then(|| (pos, t.to_string()))
}

/// The math segments of a text (`$...$`, `$$...$$`, `\(...\)`, `\[...\]`),
/// found in one left-to-right scan; `\$` is a dollar sign.
struct MathSpans {
    /// The last well-formed segment: content start, content end, segment end.
    last: Option<(usize, usize, usize)>,
    /// `$...$` / `\(...\)` that run over a line break: not math (inline math
    /// ends with its line), so no number inside is an answer.
    broken: Vec<(usize, usize)>,
}

fn math_spans(text: &str) -> MathSpans {
    let b = text.as_bytes();
    let mut spans = MathSpans {
        last: None,
        broken: Vec::new(),
    };
    let mut i = 0;
    while i < b.len() {
        let (close, open_len, inline): (&str, usize, bool) = match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'(') => ("\\)", 2, true),
            b'\\' if b.get(i + 1) == Some(&b'[') => ("\\]", 2, false),
            b'\\' => {
                i += 2;
                continue;
            }
            b'$' if b.get(i + 1) == Some(&b'$') => ("$$", 2, false),
            b'$' => ("$", 1, true),
            _ => {
                i += 1;
                continue;
            }
        };
        let st = i + open_len;
        // the closing delimiter, skipping escaped characters
        let mut j = st;
        let mut found = None;
        while j < b.len() {
            if b[j..].starts_with(close.as_bytes()) {
                found = Some(j);
                break;
            }
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        let Some(en) = found else { break };
        let en = en.min(b.len());
        if inline && b[st..en].contains(&b'\n') {
            if spans.broken.len() < 64 {
                spans.broken.push((st, en));
            }
        } else {
            spans.last = Some((st, en, en + close.len()));
        }
        i = en + close.len();
    }
    spans
}

/// The last inline math segment of the text, when nothing numeric follows it
/// ("... is $\frac34$." but not "The largest $n$ is 34.").
fn inline_answer(text: &str, spans: &MathSpans) -> Option<String> {
    let (st, en, after) = spans.last?;
    if text[after.min(text.len())..]
        .bytes()
        .any(|c| c.is_ascii_digit())
    {
        return None;
    }
    let t = text.get(st..en)?.trim().trim_end_matches(['.', ',']).trim();
    let lone_var = t.chars().count() == 1 && t.chars().all(char::is_alphabetic);
    (!t.is_empty() && !lone_var && t.len() <= MAX_LINE).then(|| t.to_string())
}

/// Chat-template tokens that end a response: text after them is a new turn.
const END_MARKERS: &[&str] = &[
    "<|",
    "<\u{ff5c}",
    "</s>",
    "<end_of_turn>",
    "<eos>",
    "[INST]",
];

/// The response up to the first end marker that follows some content (a
/// leading role marker such as `<|im_start|>assistant` is skipped).
fn cut_at_end_marker(text: &str) -> &str {
    let lead = text.len() - text.trim_start().len();
    let mut from = END_MARKERS
        .iter()
        .find(|m| text[lead..].starts_with(*m))
        .map_or(lead, |m| lead + m.len());
    while let Some(p) = text[from..].find(['<', '[']) {
        let i = from + p;
        if END_MARKERS.iter().any(|m| text[i..].starts_with(m)) {
            return &text[..i];
        }
        from = i + 1;
    }
    text
}

fn mathy(v: &value::Value) -> bool {
    use value::Value::*;
    match v {
        Expr(_) | Eq(..) => true,
        Seq(_, _, xs) | Set(xs, _) | Union(xs) => xs.iter().all(mathy),
        Matrix(rows) => rows.iter().flatten().all(mathy),
        Ineq(_) => true,
        Text(_) | Rel(_) => false,
    }
}

/// The whole response, when it is itself a short bare answer.
fn whole_answer(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() || t.len() > 200 || t.contains('\n') {
        return None;
    }
    let words = t.split_whitespace().count();
    let prose = t
        .split_whitespace()
        .filter(|w| w.len() >= 2 && w.chars().all(|c| c.is_alphabetic()))
        .count();
    let n = norm::normalize(t).ok()?;
    let v = value::parse_value(&n).ok()?;
    let ok = match &v {
        value::Value::Text(_) => words <= 3 && !t.bytes().any(|c| c.is_ascii_digit()),
        value::Value::Rel(_) | value::Value::Ineq(_) => prose == 0,
        v => mathy(v) && prose <= 1,
    };
    ok.then(|| t.to_string())
}

/// The last number of the text that is not part of a word ("AZYUK2A" holds
/// none) nor inside a `skip` range. Thousands separators go; another comma stays ("2,74", read later as
/// a list and as a decimal comma).
fn last_number(text: &str, skip: &[(usize, usize)]) -> Option<String> {
    let b = text.as_bytes();
    let mut hay = b.len();
    loop {
        let mut j = b[..hay].iter().rposition(|c| c.is_ascii_digit())?;
        if let Some(&(st, _)) = skip.iter().find(|(st, en)| (*st..*en).contains(&j)) {
            hay = st;
            continue;
        }
        let end = j + 1;
        while j > 0 {
            let c = b[j - 1];
            let ok = c.is_ascii_digit()
                || ((c == b'.' || c == b',' || c == b'/')
                    && j >= 2
                    && b[j - 2].is_ascii_digit()
                    && b[j].is_ascii_digit());
            if !ok {
                break;
            }
            j -= 1;
        }
        if j > 0 && b[j - 1].is_ascii_alphabetic() {
            hay = j;
            continue;
        }
        if j > 0 && b[j - 1] == b'-' {
            j -= 1;
        }
        let raw = &text[j..end];
        let int_part = raw.split('.').next().unwrap_or(raw);
        let thousands = int_part.split(',').skip(1).all(|g| g.len() == 3);
        return Some(if thousands {
            raw.replace(',', "")
        } else {
            raw.to_string()
        });
    }
}

/// Extract the final answer from a model response: last `\boxed{...}`/`\fbox{...}`
/// (brace matching; the boxes of its line joined), GSM8K `#### N`, "The answer
/// is ..."/"final answer is ..." (also when it follows the last box), the last
/// inline math when nothing numeric follows it, the whole response when it is a
/// short bare answer, else the last number. The response ends at the first chat
/// end marker (`<|im_end|>`, `</s>`, ...); the text after the last `</think>`
/// is searched first.
pub fn extract_answer(response: &str, opts: &Options) -> Option<Extracted> {
    extract_with_alt(response, opts).map(|x| x.0)
}

/// The extracted answer and, for several boxes on a line, the last box alone.
pub(crate) fn extract_with_alt(
    response: &str,
    opts: &Options,
) -> Option<(Extracted, Option<String>)> {
    let think = response.rfind("</think>");
    if opts.require_think_close {
        let p = think?;
        return extract_from(cut_at_end_marker(&response[p + "</think>".len()..]));
    }
    if let Some(p) = think {
        if let Some(e) = extract_from(cut_at_end_marker(&response[p + "</think>".len()..])) {
            return Some(e);
        }
    }
    extract_from(cut_at_end_marker(response))
}

fn extract_from(text: &str) -> Option<(Extracted, Option<String>)> {
    let found = |t: String, m| Some((Extracted { text: t, method: m }, None));
    if let Some(b) = boxed_answer(text) {
        // a stated final answer after the last box is a correction of it
        if let Some((_, t)) = phrase_answer(&text[b.end..]) {
            if t.contains(|c: char| c.is_ascii_digit() || c == '$' || c == '\\') {
                return found(t, ExtractMethod::AnswerPhrase);
            }
        }
        let ex = Extracted {
            text: b.joined,
            method: ExtractMethod::Boxed,
        };
        return Some((ex, b.last_alone));
    }
    if let Some(t) = hash_answer(text) {
        return found(t, ExtractMethod::Gsm8kHash);
    }
    if let Some((_, t)) = phrase_answer(text) {
        return found(t, ExtractMethod::AnswerPhrase);
    }
    let spans = math_spans(text);
    if let Some(t) = inline_answer(text, &spans) {
        return found(t, ExtractMethod::InlineMath);
    }
    if let Some(t) = whole_answer(text) {
        return found(t, ExtractMethod::Whole);
    }
    last_number(text, &spans.broken).and_then(|t| found(t, ExtractMethod::LastNumber))
}
