//! The readings of an answer: its normal form and value, and the other forms
//! it also stands for (a percentage as a fraction, a choice letter and its
//! value, a decimal comma, a sentence's only number).

use crate::{norm, value};

/// One reading of an answer: its normal form and parsed value.
pub(crate) struct Form {
    pub(crate) norm: String,
    pub(crate) value: Option<value::Value>,
}

pub(crate) fn form(norm: String) -> Form {
    let value = value::parse_value(&norm).ok();
    Form { norm, value }
}

/// An answer's readings: the main one first, then the others it also stands
/// for ("25%" is also 0.25; "(B) 12" is also "B" and "12"; the sentence "Mia has
/// 12 marbles" is also 12).
pub(crate) struct Prepared {
    pub(crate) forms: Vec<Form>,
}

pub(crate) fn prepare(text: &str) -> Option<Prepared> {
    let Ok(n) = norm::normalize(text) else {
        let t = sole_number(text)?;
        let forms = vec![form(norm::normalize(&t).ok()?)];
        return Some(Prepared { forms });
    };
    let main = form(n);
    let mut alts = Vec::new();
    let lower = text.to_ascii_lowercase();
    if main.value.as_ref().is_some_and(value::is_number)
        && (text.contains('%') || lower.contains("percent"))
    {
        alts.push(form(format!("({})/100", main.norm)));
    }
    if let Some((letter, rest)) = choice_and_value(&main.norm) {
        alts.push(form(letter));
        alts.push(form(rest));
    }
    if decimal_comma(&main.norm) {
        alts.push(form(main.norm.replace(',', ".")));
    }
    if matches!(main.value, None | Some(value::Value::Text(_))) {
        alts.extend(
            sole_number(text)
                .and_then(|t| norm::normalize(&t).ok())
                .map(form),
        );
    }
    let mut forms = vec![main];
    forms.extend(alts);
    Some(Prepared { forms })
}

/// "1000,99", "2,74", "0,111": one comma between digits that is no thousands
/// separator (those are gone by now) may be a decimal comma.
fn decimal_comma(norm: &str) -> bool {
    let d = norm.strip_prefix('-').unwrap_or(norm);
    matches!(d.split_once(','), Some((a, b)) if !a.is_empty() && !b.is_empty()
        && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
}

/// "(B)12", "C.x=42", "D)7" -> the choice letter and its value.
fn choice_and_value(norm: &str) -> Option<(String, String)> {
    let b = norm.as_bytes();
    let choice = |c: u8| (b'A'..=b'E').contains(&c);
    if b.len() > 3 && b[0] == b'(' && choice(b[1]) && b[2] == b')' {
        return Some(((b[1] as char).to_string(), norm[3..].to_string()));
    }
    let ok = b.len() > 2 && choice(b[0]) && matches!(b[1], b'.' | b')') && b[2] != b'.';
    ok.then(|| ((b[0] as char).to_string(), norm[2..].to_string()))
}

/// The only number of a prose sentence ("Tom runs 15 miles each week" -> "15"),
/// None when it holds none, several, or any formula sign.
fn sole_number(text: &str) -> Option<String> {
    if text.contains(['=', '<', '>', '^', '\\', '+', '*', '/']) || text.len() > 300 {
        return None;
    }
    let b = text.as_bytes();
    let mut found: Option<String> = None;
    let mut words = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() {
            let st = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            words += usize::from(i - st >= 2);
            continue;
        }
        if b[i].is_ascii_digit() {
            if found.is_some() || (i > 0 && b[i - 1].is_ascii_alphabetic()) {
                return None;
            }
            let neg = i > 0 && b[i - 1] == b'-' && (i < 2 || !b[i - 2].is_ascii_alphanumeric());
            let st = if neg { i - 1 } else { i };
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || (matches!(b[i], b'.' | b',')
                        && b.get(i + 1).is_some_and(|c| c.is_ascii_digit())))
            {
                i += 1;
            }
            found = Some(text[st..i].replace(',', ""));
            continue;
        }
        i += 1;
    }
    found.filter(|_| words >= 2)
}

/// Several words of prose (a worked solution rather than an answer).
pub(crate) fn is_prose(text: &str) -> bool {
    text.split_whitespace()
        .filter(|w| w.len() >= 3 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .take(5)
        .count()
        >= 5
}
