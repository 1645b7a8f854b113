//! What a plain scalar means to go-yaml v4 (its `resolve`): null, bool, int, float, timestamp or
//! string. The decoder uses it to read values, the emitter to decide whether a string must be
//! quoted to read back as a string. Go's number syntax applies: `0x1F`, `0o17`, `017` (octal),
//! `0b101`, underscores anywhere, and a float fallback that makes `08` the float 8.

use crate::error::Reason;

/// A scalar's resolved value. Strings carry no text: the text is the scalar's own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Timestamp,
    Str,
    /// A scalar with a local tag (`!x`): its text, and nothing else.
    Local,
}

impl Resolved {
    pub fn tag(&self) -> &'static str {
        match self {
            Resolved::Null => "!!null",
            Resolved::Bool(_) => "!!bool",
            Resolved::Int(_) | Resolved::Uint(_) => "!!int",
            Resolved::Float(_) => "!!float",
            Resolved::Timestamp => "!!timestamp",
            Resolved::Str => "!!str",
            Resolved::Local => "local tag",
        }
    }
}

/// Resolves `s` as a plain scalar (`tag` None) or under an explicit core-schema tag.
/// Errors are go-yaml v4's "cannot decode !!str `x` as a !!int".
pub fn resolve(tag: Option<&str>, s: &str) -> Result<Resolved, Reason> {
    let r = if tag == Some("!!str") {
        Resolved::Str
    } else {
        resolve_plain(s, tag.is_none() || tag == Some("!!timestamp"))
    };
    match tag {
        None | Some("!!str") => Ok(r),
        Some(t) if t == r.tag() => Ok(r),
        Some("!!float") => match r {
            Resolved::Int(i) => Ok(Resolved::Float(i as f64)),
            _ => Err(format!("cannot decode {} `{s}` as a !!float", r.tag()).into()),
        },
        Some(t) => Err(format!("cannot decode {} `{s}` as a {t}", r.tag()).into()),
    }
}

fn resolve_plain(s: &str, timestamps: bool) -> Resolved {
    let hint = match s.bytes().next() {
        None => b'N',
        Some(b'+' | b'-') => b'S',
        Some(b'0'..=b'9') => b'D',
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => b'M',
        Some(b'.') => b'.',
        Some(_) => return Resolved::Str,
    };
    match s {
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        // go-yaml v4's `resolveMap` (`internal/libyaml/resolver.go`): negative zero is a float.
        "-0" | "-0.0" => return Resolved::Float(-0.0),
        _ => {}
    }
    match hint {
        b'.' => {
            if let Some(f) = go_parse_float(s) {
                return Resolved::Float(f);
            }
        }
        b'D' | b'S' => {
            if timestamps && is_timestamp(s) {
                return Resolved::Timestamp;
            }
            let plain = s.replace('_', "");
            if let Some(v) = go_parse_int(&plain) {
                if let Ok(i) = i64::try_from(v) {
                    return Resolved::Int(i);
                }
                if let Ok(u) = u64::try_from(v) {
                    return Resolved::Uint(u);
                }
            }
            if is_yaml_float(&plain) {
                if let Some(f) = go_parse_float(&plain) {
                    return Resolved::Float(f);
                }
            }
        }
        _ => {}
    }
    Resolved::Str
}

/// `strconv.ParseInt(s, 0, 64)` widened: sign, then `0x`/`0o`/`0b` or a leading `0` for
/// octal; the caller checks the range (ParseInt, then ParseUint for what only fits unsigned).
fn go_parse_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &body[2..]),
        Some("0o") => (8, &body[2..]),
        Some("0b") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = u128::from_str_radix(digits, radix).ok()?;
    if v > u64::MAX as u128 {
        return None;
    }
    // ParseUint takes no sign, so a signed value must fit an i64.
    let v = v as i128;
    match (neg, s.starts_with('+')) {
        (true, _) if v <= (i64::MAX as i128) + 1 => Some(-v),
        (false, true) if v <= i64::MAX as i128 => Some(v),
        (false, false) => Some(v),
        _ => None,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// `strconv.ParseFloat` on the decimal forms that reach it: an overflow to infinity is an
/// error in Go, so such text stays a string.
fn go_parse_float(s: &str) -> Option<f64> {
    let decimal = s
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    let f: f64 = s.parse().ok().filter(|_| decimal)?;
    f.is_finite().then_some(f)
}

fn is_timestamp(s: &str) -> bool {
    timestamp(s).is_some()
}

/// A timestamp as Go's `time.Time` marshals it (`RFC3339Nano`): the wall clock as written,
/// fraction without trailing zeros, `Z` for a zero offset (and no offset at all).
pub fn rfc3339_nano(s: &str) -> Option<String> {
    let t = timestamp(s)?;
    let frac = t.frac.trim_end_matches('0');
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    // Go keeps the offset in seconds: "+05:60" is written "+06:00", a zero offset "Z".
    let zone = match t.offset.map(|(sign, h, m)| (sign, h * 60 + m)) {
        None | Some((_, 0)) => "Z".to_string(),
        Some((sign, min)) => format!("{}{:02}:{:02}", sign as char, min / 60, min % 60),
    };
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}{zone}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    ))
}

struct Timestamp<'a> {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// Up to nine digits; Go reads further digits and ignores them.
    frac: &'a str,
    offset: Option<(u8, u32, u32)>,
}

/// go-yaml v4's `parseTimestamp`: four digits and a dash, then one of `2006-1-2`,
/// `2006-1-2 15:4:5[.frac]` or `2006-1-2T15:4:5[.frac]` with `Z` or `±hh:mm` (also `t`).
fn timestamp(s: &str) -> Option<Timestamp<'_>> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let year: u32 = s[..4].parse().ok()?;
    let mut p = Cursor { b, i: 5 };
    let month = p.num()?;
    if !(1..=12).contains(&month) || !p.lit(b'-') {
        return None;
    }
    let day = p.num()?;
    if day < 1 || day > days_in(month, year) {
        return None;
    }
    let mut t = Timestamp {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        frac: "",
        offset: None,
    };
    if p.done() {
        return Some(t);
    }
    let zoned = match p.next() {
        Some(b'T' | b't') => true,
        Some(b' ') => false,
        _ => return None,
    };
    t.hour = p.num().filter(|h| *h <= 23)?;
    p.lit(b':').then_some(())?;
    t.minute = p.num().filter(|m| *m <= 59)?;
    p.lit(b':').then_some(())?;
    t.second = p.num().filter(|s| *s <= 59)?;
    if p.peek() == Some(b'.') && p.b.get(p.i + 1).is_some_and(u8::is_ascii_digit) {
        let start = p.i + 1;
        p.i += 1;
        while p.peek().is_some_and(|c| c.is_ascii_digit()) {
            p.i += 1;
        }
        t.frac = &s[start..p.i.min(start + 9)];
    }
    if !zoned {
        return p.done().then_some(t);
    }
    if p.lit(b'Z') {
        return p.done().then_some(t);
    }
    let rest = &b[p.i..];
    let two = |x: &[u8]| u32::from(x[0] - b'0') * 10 + u32::from(x[1] - b'0');
    let ok = rest.len() == 6
        && matches!(rest[0], b'+' | b'-')
        && rest[1..3].iter().all(u8::is_ascii_digit)
        && rest[3] == b':'
        && rest[4..6].iter().all(u8::is_ascii_digit)
        && two(&rest[1..3]) <= 24
        && two(&rest[4..6]) <= 60;
    ok.then(|| {
        t.offset = Some((rest[0], two(&rest[1..3]), two(&rest[4..6])));
        t
    })
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.i += 1;
        c
    }
    fn lit(&mut self, c: u8) -> bool {
        let ok = self.peek() == Some(c);
        self.i += usize::from(ok);
        ok
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
    /// Go's `getnum(s, false)`: one digit, or two when there are two.
    fn num(&mut self) -> Option<u32> {
        let d = |c: Option<&u8>| {
            c.filter(|c| c.is_ascii_digit())
                .map(|c| u32::from(c - b'0'))
        };
        let first = d(self.b.get(self.i))?;
        self.i += 1;
        match d(self.b.get(self.i)) {
            Some(second) => {
                self.i += 1;
                Some(first * 10 + second)
            }
            None => Some(first),
        }
    }
}
