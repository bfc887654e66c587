//! LaTeX → plain-syntax normalisation.
//!
//! The converter is a recursive-descent pass over characters with a depth
//! bound; everything after it is linear string processing.

/// Answers longer than this (in bytes) are refused for parsing.
pub const MAX_ANSWER_BYTES: usize = 10_000;
const MAX_LATEX_DEPTH: usize = 50;

#[derive(Clone, Copy, PartialEq)]
enum End {
    Eof,
    Brace,
    Bracket,
}

struct Conv<'a> {
    c: &'a [char],
    i: usize,
    depth: usize,
    in_matrix: bool,
}

type R = Result<String, ()>;

fn is_plain_int(s: &str) -> bool {
    !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn greek(name: &str) -> Option<char> {
    Some(match name {
        "alpha" => 'α',
        "beta" => 'β',
        "gamma" => 'γ',
        "delta" => 'δ',
        "epsilon" | "varepsilon" => 'ε',
        "zeta" => 'ζ',
        "eta" => 'η',
        "theta" | "vartheta" => 'θ',
        "kappa" => 'κ',
        "lambda" => 'λ',
        "mu" => 'μ',
        "nu" => 'ν',
        "xi" => 'ξ',
        "rho" => 'ρ',
        "sigma" => 'σ',
        "tau" => 'τ',
        "phi" | "varphi" => 'φ',
        "chi" => 'χ',
        "psi" => 'ψ',
        "omega" => 'ω',
        "Delta" => 'Δ',
        "Gamma" => 'Γ',
        "Omega" => 'Ω',
        "Theta" => 'Θ',
        "Phi" => 'Φ',
        _ => return None,
    })
}

impl<'a> Conv<'a> {
    fn skip_ws(&mut self) {
        while self.i < self.c.len() && self.c[self.i].is_whitespace() {
            self.i += 1;
        }
    }
    /// Is the next non-space character `ch`?
    fn next_is(&self, ch: char) -> bool {
        self.c[self.i..].iter().find(|c| !c.is_whitespace()) == Some(&ch)
    }
    /// Does the text after any spaces start with `s`?
    fn next_starts(&self, s: &str) -> bool {
        let rest = &self.c[self.i..];
        let k = rest.iter().take_while(|c| c.is_whitespace()).count();
        rest[k..]
            .iter()
            .copied()
            .take(s.chars().count())
            .eq(s.chars())
    }
    fn starts_with(&self, s: &str) -> bool {
        let n = s.chars().count();
        self.i + n <= self.c.len() && self.c[self.i..self.i + n].iter().copied().eq(s.chars())
    }

    /// One macro argument: a `{group}`, a `\command`, or a single character.
    fn arg(&mut self) -> R {
        self.skip_ws();
        if self.i >= self.c.len() {
            return Err(());
        }
        match self.c[self.i] {
            '{' => {
                self.i += 1;
                self.run(End::Brace)
            }
            '\\' => {
                let mut out = String::new();
                self.command(&mut out)?;
                Ok(out)
            }
            '}' => Err(()),
            ch => {
                self.i += 1;
                Ok(ch.to_string())
            }
        }
    }

    fn read_name(&mut self) -> String {
        // self.c[self.i] == '\\'
        self.i += 1;
        let st = self.i;
        while self.i < self.c.len() && self.c[self.i].is_ascii_alphabetic() {
            self.i += 1;
        }
        if self.i == st && self.i < self.c.len() {
            self.i += 1;
        }
        self.c[st..self.i].iter().collect()
    }

    fn command(&mut self, out: &mut String) -> Result<(), ()> {
        let name = self.read_name();
        match name.as_str() {
            "\\" => out.push(if self.in_matrix { ';' } else { ' ' }),
            "," | ";" | ":" | "!" | " " | "quad" | "qquad" | "enspace" | "thinspace"
            | "negthinspace" | "displaystyle" | "textstyle" | "limits" | "nonumber" | "" => {}
            "{" | "lbrace" => out.push('{'),
            "}" | "rbrace" => out.push('}'),
            "circ" => out.push('°'),
            "%" | "$" | "degree" | "not" | "mathstrut" | "strut" => {}
            "&" => out.push('&'),
            "#" | "_" => {}
            "frac" | "dfrac" | "tfrac" | "cfrac" => {
                let a = self.arg()?;
                let b = self.arg()?;
                let (a, b) = (a.trim().to_string(), b.trim().to_string());
                // mixed number: "1\frac{4}{5}" = 1 + 4/5
                let t = out.trim_end();
                let digits = t.len() - t.trim_end_matches(|c: char| c.is_ascii_digit()).len();
                let before = t[..t.len() - digits].chars().last();
                if digits > 0
                    && is_plain_int(&a)
                    && is_plain_int(&b)
                    && !matches!(before, Some(c) if c.is_alphanumeric() || c == '.' || c == ')' || c == '^' || c == '_')
                {
                    let int = t[t.len() - digits..].to_string();
                    let keep = t.len() - digits;
                    out.truncate(keep);
                    out.push_str(&format!("({int}+{a}/{b})"));
                } else if self.next_is('^') {
                    // "\frac12^2" is (1/2)^2
                    out.push_str(&format!("(({a})/({b}))"));
                } else {
                    out.push_str(&format!("({a})/({b})"));
                }
            }
            "binom" | "dbinom" | "tbinom" => {
                let a = self.arg()?;
                let b = self.arg()?;
                out.push_str(&format!("(({a})!/(({b})!(({a})-({b}))!))"));
            }
            "sqrt" => {
                self.skip_ws();
                let idx = if self.i < self.c.len() && self.c[self.i] == '[' {
                    self.i += 1;
                    Some(self.run(End::Bracket)?)
                } else {
                    None
                };
                let a = self.arg()?;
                match idx {
                    // "\sqrt[3]{x}^2" is (x^(1/3))^2, not x^((1/3)^2)
                    Some(n) if self.next_is('^') => out.push_str(&format!("(({a})^(1/({n})))")),
                    Some(n) => out.push_str(&format!("({a})^(1/({n}))")),
                    None => out.push_str(&format!("sqrt({a})")),
                }
            }
            "mathbb" if self.next_is('R') || self.next_starts("{R}") => {
                // the real line
                self.arg()?;
                out.push_str("(-∞,∞)");
            }
            "text" | "textbf" | "textit" | "textrm" | "textsf" | "texttt" | "mbox" | "hbox"
            | "mathrm" | "mathbf" | "mathit" | "mathsf" | "mathtt" | "mathcal" | "mathbb"
            | "operatorname" | "textnormal" | "emph" => {
                let a = self.arg()?;
                out.push(' ');
                out.push_str(&a);
                out.push(' ');
            }
            "boxed" | "fbox" | "overline" | "underline" | "hat" | "bar" | "vec" | "tilde"
            | "widehat" | "overrightarrow" | "mathring" | "phantom" => {
                let a = self.arg()?;
                if matches!(name.as_str(), "overline" | "bar") {
                    if let Some(q) = repeating_decimal(out, a.trim()) {
                        return Ok(q);
                    }
                }
                if name != "phantom" {
                    out.push_str(&a);
                }
            }
            "hspace" | "vspace" | "label" => {
                self.arg()?;
            }
            "left" | "right" | "bigl" | "bigr" | "Bigl" | "Bigr" | "big" | "Big" | "bigg"
            | "Bigg" | "biggl" | "biggr" | "Biggl" | "Biggr" | "middle" => {
                self.skip_ws();
                if self.i < self.c.len() && self.c[self.i] == '.' {
                    self.i += 1;
                }
            }
            "cdot" | "times" | "ast" | "cdotp" => out.push('*'),
            "div" => out.push('/'),
            "pi" => out.push('π'),
            "infty" | "infinity" => out.push('∞'),
            "pm" | "mp" => out.push('±'),
            "cup" => out.push('∪'),
            "cap" => out.push('∩'),
            "in" => out.push('∈'),
            "le" | "leq" | "leqslant" => out.push('≤'),
            "ge" | "geq" | "geqslant" => out.push('≥'),
            "ne" | "neq" => out.push('≠'),
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "approx" | "simeq" | "equiv" => out.push('≈'),
            "to" | "rightarrow" | "Rightarrow" | "implies" => out.push('→'),
            "dots" | "ldots" | "cdots" => out.push('…'),
            "mid" | "vert" | "lvert" | "rvert" | "|" => out.push('|'),
            "langle" => out.push('('),
            "rangle" => out.push(')'),
            "lfloor" | "rfloor" | "lceil" | "rceil" => {}
            "emptyset" | "varnothing" => out.push_str("{}"),
            "log" if self.next_is('_') => {
                // "\log_b x" = ln x / ln b
                self.skip_ws();
                self.i += 1;
                let b = self.arg()?;
                out.push_str(&format!(" (1/ln({}))*ln ", b.trim()));
            }
            "sin" | "cos" | "tan" | "cot" | "sec" | "csc" | "ln" | "log" | "exp" | "arcsin"
            | "arccos" | "arctan" | "sinh" | "cosh" | "tanh" => {
                out.push(' ');
                out.push_str(&name);
                out.push(' ');
            }
            "begin" => {
                let env = self.arg()?;
                let env = env.trim().to_string();
                if env == "array" {
                    self.arg()?; // column spec
                }
                let close: Vec<char> = format!("\\end{{{env}}}").chars().collect();
                let st = self.i;
                let mut k = st;
                let mut found = None;
                while k + close.len() <= self.c.len() {
                    if self.c[k..k + close.len()] == close[..] {
                        found = Some(k);
                        break;
                    }
                    k += 1;
                }
                let end = found.ok_or(())?;
                let is_mat = env.ends_with("matrix") || env == "array";
                let mut sub = Conv {
                    c: &self.c[st..end],
                    i: 0,
                    depth: self.depth + 1,
                    in_matrix: is_mat,
                };
                if sub.depth > MAX_LATEX_DEPTH {
                    return Err(());
                }
                let inner = sub.run(End::Eof)?;
                self.i = end + close.len();
                if is_mat {
                    let inner = inner.trim().trim_end_matches(';').to_string();
                    out.push_str(&format!("mat({inner})"));
                } else {
                    out.push_str(&inner);
                }
            }
            "end" => {
                self.arg()?;
            }
            other => {
                if let Some(g) = greek(other) {
                    out.push(g);
                } else {
                    out.push(' ');
                    out.push_str(other);
                    out.push(' ');
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, end: End) -> R {
        self.depth += 1;
        if self.depth > MAX_LATEX_DEPTH {
            return Err(());
        }
        let mut out = String::new();
        loop {
            if self.i >= self.c.len() {
                if end == End::Eof {
                    break;
                }
                return Err(());
            }
            let ch = self.c[self.i];
            match ch {
                '}' => {
                    if end == End::Brace {
                        self.i += 1;
                        break;
                    }
                    return Err(());
                }
                ']' if end == End::Bracket => {
                    self.i += 1;
                    break;
                }
                '{' => {
                    self.i += 1;
                    let inner = self.run(End::Brace)?;
                    if inner.trim() == "," {
                        // 1{,}000, "14 {, }916"
                        let t = out.trim_end().len();
                        if out[..t].ends_with(|c: char| c.is_ascii_digit()) {
                            out.truncate(t);
                        } else {
                            out.push(',');
                        }
                    } else {
                        out.push_str(&inner);
                    }
                }
                '\\' => self.command(&mut out)?,
                '$' => self.i += 1,
                '^' => {
                    self.i += 1;
                    let a = self.arg()?;
                    let t = a.trim();
                    if t.is_empty() {
                        return Err(());
                    } else if t == "°" || t == "∘" || t.ends_with("circ") {
                        // degrees
                    } else if t.chars().count() == 1 {
                        out.push('^');
                        out.push_str(t);
                    } else {
                        out.push_str(&format!("^({t})"));
                    }
                }
                '_' => {
                    self.i += 1;
                    let a = self.arg()?;
                    let t = out.trim_end();
                    let digits = t.len() - t.trim_end_matches(|c: char| c.is_ascii_digit()).len();
                    let before = t[..t.len() - digits].chars().last();
                    let base_subscript = digits > 0
                        && !matches!(before, Some(c) if c.is_alphabetic() || c == '_')
                        && a.trim().chars().all(|c| c.is_ascii_alphanumeric());
                    if !base_subscript {
                        out.push('_');
                        out.extend(a.chars().filter(|c| c.is_alphanumeric()));
                    }
                }
                ',' => {
                    self.i += 1;
                    // thousands separator written as ",\!"
                    let save = self.i;
                    self.skip_ws();
                    if self.starts_with("\\!") && out.ends_with(|c: char| c.is_ascii_digit()) {
                        self.i += 2;
                    } else {
                        self.i = save;
                        out.push(',');
                    }
                }
                '&' => {
                    self.i += 1;
                    if self.in_matrix {
                        out.push(',');
                    }
                }
                '~' => {
                    self.i += 1;
                    out.push(' ');
                }
                '°' | '%' => self.i += 1,
                '∅' => {
                    self.i += 1;
                    out.push_str("{}");
                }
                _ => {
                    self.i += 1;
                    out.push(ch);
                }
            }
        }
        self.depth -= 1;
        Ok(out)
    }
}

const UNIT_WORDS: &[&str] = &[
    "cm", "mm", "km", "m", "meter", "meters", "metre", "metres", "inch", "inches", "foot", "feet",
    "ft", "yard", "yards", "mile", "miles", "mph", "hour", "hours", "hr", "hrs", "minute",
    "minutes", "min", "mins", "second", "seconds", "day", "days", "week", "weeks", "month",
    "months", "year", "years", "dollar", "dollars", "cent", "cents", "unit", "units", "degree",
    "degrees", "deg", "square", "sq", "cubic", "percent", "pound", "pounds", "lb", "lbs", "kg",
    "gram", "grams", "liter", "liters", "litre", "litres", "ml", "gallon", "gallons", "ounce",
    "ounces", "oz", "point", "points", "radians", "rad", "per", "cups",
];

const NUMBER_WORDS: &[(&str, u32)] = &[
    ("zero", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
    ("hundred", 100),
    ("thousand", 1000),
];

fn number_word(s: &str) -> Option<u32> {
    let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let lookup = |w: &str| NUMBER_WORDS.iter().find(|(n, _)| *n == w).map(|x| x.1);
    if let Some(v) = lookup(&s) {
        return Some(v);
    }
    let (a, b) = s.split_once('-')?;
    let (x, y) = (lookup(a)?, lookup(b)?);
    ((20..=90).contains(&x) && x % 10 == 0 && (1..=9).contains(&y)).then_some(x + y)
}

/// `0.1\overline{6}`: `out` ends with the decimal written so far ("0.1") and
/// `rep` repeats; replace it with the exact fraction, (16 - 1) / 90. None when
/// it is no repeating decimal.
fn repeating_decimal(out: &mut String, rep: &str) -> Option<()> {
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if rep.is_empty() || rep.len() > 9 || !digits(rep) {
        return None;
    }
    let t = out.trim_end();
    let int_len = t.len() - t.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let head = &t[..t.len() - int_len];
    let (int, frac) = match head.strip_suffix('.') {
        // "0.1" + rep: the fraction digits are the trailing run, the integer before the point
        Some(h) => {
            let il = h.len() - h.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            (&h[h.len() - il..], &t[t.len() - int_len..])
        }
        // "0." + rep
        None => match t.strip_suffix('.') {
            Some(h) => {
                let il = h.len() - h.trim_end_matches(|c: char| c.is_ascii_digit()).len();
                (&h[h.len() - il..], "")
            }
            None => return None,
        },
    };
    if int.is_empty() || int.len() + frac.len() > 9 {
        return None;
    }
    let start = t.len() - frac.len() - 1 - int.len();
    let ab: u64 = format!("{int}{frac}").parse().ok()?;
    let abc: u64 = format!("{int}{frac}{rep}").parse().ok()?;
    let den = 10u64.pow(frac.len() as u32) * (10u64.pow(rep.len() as u32) - 1);
    out.truncate(start);
    out.push_str(&format!("({}/{den})", abc - ab));
    Some(())
}

/// Strip a trailing "^2", "^(2)", "^3" from a unit token.
fn unit_core(tok: &str) -> &str {
    for suf in ["^(2)", "^(3)", "^2", "^3", "²", "³"] {
        if let Some(t) = tok.strip_suffix(suf) {
            return t;
        }
    }
    tok
}

fn strip_trailing_words(s: &str) -> String {
    let mut s = s
        .trim()
        .trim_end_matches(['.', ',', ';'])
        .trim()
        .to_string();
    if s.contains(" ^") {
        // drop whitespace before '^' in one pass: "cm ^2" -> "cm^2"
        let mut rev: Vec<char> = Vec::with_capacity(s.len());
        let mut next_non_ws = None;
        for ch in s.chars().rev() {
            if ch.is_whitespace() {
                if next_non_ws == Some('^') {
                    continue;
                }
            } else {
                next_non_ws = Some(ch);
            }
            rev.push(ch);
        }
        s = rev.into_iter().rev().collect();
    }
    let is_word = |tok: &str| {
        let known = UNIT_WORDS.contains(&tok.to_ascii_lowercase().as_str());
        let alpha = (tok.len() >= 2 || known)
            && tok.starts_with(|c: char| c.is_ascii_alphabetic())
            && tok.chars().all(|c| c.is_ascii_alphabetic() || c == '.');
        (alpha && !crate_fn_name(tok), known)
    };
    // maximal suffix of words: "65 children tickets" -> "65"
    let mut cut = s.len();
    let mut all_known = true;
    for _ in 0..8 {
        let head = s[..cut].trim_end();
        let Some(pos) = head.rfind(char::is_whitespace) else {
            break;
        };
        let (word, known) = is_word(unit_core(head[pos..].trim()));
        if !word {
            break;
        }
        all_known &= known;
        cut = pos;
    }
    if cut < s.len() {
        let rest = s[..cut].trim_end();
        let rest_has_digit = rest.chars().any(|c| c.is_ascii_digit());
        let rest_numeric =
            rest.ends_with(|c: char| c.is_ascii_digit() || c == ')' || c == 'π' || c == '%');
        if rest_has_digit && (rest_numeric || all_known) {
            s = rest.to_string();
        }
    }
    s
}

fn crate_fn_name(t: &str) -> bool {
    matches!(
        t,
        "sin"
            | "cos"
            | "tan"
            | "cot"
            | "sec"
            | "csc"
            | "ln"
            | "log"
            | "exp"
            | "sqrt"
            | "pi"
            | "inf"
            | "arcsin"
            | "arccos"
            | "arctan"
            | "mat"
    )
}

/// Is `s` (no whitespace) a number with thousands separators, e.g. "-1,234,567.5"?
fn is_thousands(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let groups: Vec<&str> = int.split(',').collect();
    groups.len() >= 2
        && !groups[0].is_empty()
        && !groups[0].starts_with('0')
        && groups[0].len() <= 3
        && groups[0].bytes().all(|b| b.is_ascii_digit())
        && groups[1..]
            .iter()
            .all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

/// Canonicalise number tokens: strip trailing zeros after the point, ".5" -> "0.5".
fn canon_numbers(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        let prev_alpha = i > 0 && (c[i - 1].is_alphabetic() || c[i - 1] == '_');
        if !prev_alpha
            && (c[i].is_ascii_digit()
                || (c[i] == '.' && i + 1 < c.len() && c[i + 1].is_ascii_digit()))
        {
            let st = i;
            while i < c.len() && c[i].is_ascii_digit() {
                i += 1;
            }
            let mut frac = String::new();
            if i < c.len() && c[i] == '.' && i + 1 < c.len() && c[i + 1].is_ascii_digit() {
                i += 1;
                while i < c.len() && c[i].is_ascii_digit() {
                    frac.push(c[i]);
                    i += 1;
                }
            } else if i < c.len() && c[i] == '.' && (i + 1 == c.len() || !c[i + 1].is_ascii_digit())
            {
                // "5." -> "5"
                i += 1;
            }
            let int: String = c[st..].iter().take_while(|d| d.is_ascii_digit()).collect();
            let int = int.trim_start_matches('0');
            out.push_str(if int.is_empty() { "0" } else { int });
            let frac = frac.trim_end_matches('0');
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
            continue;
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// Remove parentheses around a bare atom ("(1)/(2)" -> "1/2") where that
/// cannot change the meaning.
fn simplify_parens(s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds < 4 {
        changed = false;
        rounds += 1;
        let mut out: Vec<char> = Vec::with_capacity(c.len());
        let mut i = 0;
        while i < c.len() {
            if c[i] == '(' {
                let mut j = i + 1;
                while j < c.len() && (c[j].is_ascii_digit() || c[j] == '.') {
                    j += 1;
                }
                let atom_len = j - i - 1;
                let single_letter =
                    atom_len == 0 && i + 2 < c.len() && c[i + 1].is_alphabetic() && c[i + 2] == ')';
                let end = if single_letter { i + 2 } else { j };
                if (atom_len > 0 || single_letter) && end < c.len() && c[end] == ')' {
                    let prev = out.last().copied();
                    let next = c.get(end + 1).copied();
                    let prev_ok = !matches!(prev, Some(p) if p.is_alphanumeric() || p == ')' || p == '^' || p == '_' || p == '.' || p == 'π' || p == '∞');
                    let next_ok = !matches!(next, Some(n) if n.is_alphanumeric() || n == '(' || n == '^' || n == '.' || n == '!' || n == 'π' || n == '∞');
                    if prev_ok && next_ok {
                        out.extend_from_slice(&c[i + 1..end]);
                        i = end + 1;
                        changed = true;
                        continue;
                    }
                }
            }
            out.push(c[i]);
            i += 1;
        }
        c = out;
    }
    c.into_iter().collect()
}

/// `\\frac` -> `\frac`: text escaped twice (JSON inside JSON, a Python string
/// printed with its escapes) has every command's backslash doubled. A doubled
/// backslash before a letter is otherwise a matrix row break followed by a
/// letter, so only known command names are undone.
fn undouble_backslashes(s: &str) -> String {
    const COMMANDS: &[&str] = &[
        "frac", "dfrac", "tfrac", "sqrt", "left", "right", "le", "ge", "leq", "geq", "lt", "gt",
        "neq", "ne", "pi", "infty", "cdot", "times", "text", "boxed", "begin", "end", "in", "cup",
        "pm", "mathbf", "mathrm", "circ", "sin", "cos", "tan", "log", "ln",
    ];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("\\\\") {
        out.push_str(&rest[..p]);
        let after = &rest[p + 2..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        if name_len > 0 && COMMANDS.contains(&&after[..name_len]) {
            out.push('\\');
        } else {
            out.push_str("\\\\");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Spaces that carry meaning between numbers, before spaces go: "1 1/2" is
/// 1 + 1/2 (not 11/2) and "2^6 3^5" is 2^6 * 3^5 (not 2^63^5).
fn join_spaced_numbers(p: &str) -> String {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let pieces: Vec<&str> = p.split_whitespace().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut k = 0;
    while k < pieces.len() {
        let a = pieces[k];
        if let Some(b) = pieces.get(k + 1) {
            let fraction = b
                .split_once('/')
                .is_some_and(|(n, d)| digits(n) && digits(d));
            if digits(a) && fraction {
                out.push_str(&format!("({a}+{b}) "));
                k += 2;
                continue;
            }
            let power = a.rsplit_once('^').is_some_and(|(_, e)| digits(e));
            if power && b.starts_with(|c: char| c.is_ascii_digit()) {
                out.push_str(a);
                out.push('*');
                k += 1;
                continue;
            }
        }
        out.push_str(a);
        out.push(' ');
        k += 1;
    }
    out
}

/// Normalise an answer string to the plain syntax. Err if too long, too deep
/// or not well formed.
pub(crate) fn normalize(raw: &str) -> Result<String, ()> {
    if raw.len() > MAX_ANSWER_BYTES {
        return Err(());
    }
    let mut s = raw.trim();
    for (a, b) in [
        ("\\(", "\\)"),
        ("\\[", "\\]"),
        ("$$", "$"),
        ("$", "$"),
        ("**", "**"),
    ] {
        if let Some(t) = s.strip_prefix(a).and_then(|t| t.strip_suffix(b)) {
            s = t.trim();
        }
    }
    let undoubled;
    if s.contains("\\\\") {
        undoubled = undouble_backslashes(s);
        s = &undoubled;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut conv = Conv {
        c: &chars,
        i: 0,
        depth: 0,
        in_matrix: false,
    };
    let plain = conv.run(End::Eof)?;
    let mut p = plain.replace(['’', '`'], "'").replace('°', "");
    p = p.replace("\\", " ");
    if p.contains(['<', '>', '!']) {
        p = p.replace(">=", "≥").replace("<=", "≤").replace("!=", "≠");
    }
    if let Some(t) = p.trim_start().strip_prefix('≈') {
        p = t.to_string();
    }
    // words: "five", "(B)" choices, unit words
    if let Some(v) = number_word(&p) {
        return Ok(v.to_string());
    }
    let trimmed = p.trim().trim_end_matches('.').trim();
    let letters: Vec<char> = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    if letters.len() == 3
        && letters[0] == '('
        && letters[2] == ')'
        && letters[1].is_ascii_uppercase()
    {
        return Ok(letters[1].to_string());
    }
    // "(11,7)or(7,11)": "or" between brackets separates items
    if p.contains(")or(") {
        p = p.replace(")or(", "),(");
    }
    // "x < -2 or x > 3" is a union, "x ≥ 2 and x ≤ 5" an intersection
    if p.contains(['<', '>', '≤', '≥', '≠']) && (p.contains(" or ") || p.contains(" and ")) {
        p = p.replace(" or ", "∪").replace(" and ", "∩");
    }
    // "19 and 43", "7, -2, and -5", "x = 1 or x = 2": "and" / "or" separate list items
    if (p.contains(" and ") || p.contains(" or ")) && p.chars().any(|c| c.is_ascii_digit()) {
        let items: Vec<String> = p
            .replace(" and ", ",")
            .replace(" or ", ",")
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        p = items.join(",");
    }
    p = strip_trailing_words(&p);
    let t = p.trim();
    if is_thousands(t) {
        p = t.replace(',', "");
    }
    if p.contains(['/', '^']) {
        p = join_spaced_numbers(&p);
    }
    let mut out: String = p.chars().filter(|c| !c.is_whitespace()).collect();
    while out.ends_with(['.', ',', ';']) && !out.ends_with("…") {
        out.pop();
    }
    if out.is_empty() {
        return Err(());
    }
    let out = canon_numbers(&out);
    Ok(simplify_parens(&out))
}
