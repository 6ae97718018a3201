//! Request-path normalization: step 1 of every authorization decision.
//!
//! Policy rules match on paths, so two spellings of one resource (`/a/%62`, `/a/./b`,
//! `//a/b`) must reach the matcher as one string, and anything an upstream server might
//! interpret differently from us (encoded slashes, backslashes, path parameters, `..`
//! above the root) is refused outright. The path forwarded upstream is exactly the string
//! returned here, so what was decided on is what gets served.

use std::borrow::Cow;

#[cfg(test)]
mod tests;

/// Why a request path was refused (the gateway answers 400 `bad_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (e.g. `*`, `abc`).
    #[error("path must start with '/'")]
    NotAbsolute,
    /// `%2F`: upstreams disagree on whether it separates segments.
    #[error("encoded '/' in path")]
    EncodedSlash,
    /// Raw `\` or `%5C`: some servers treat it as a separator.
    #[error("backslash in path")]
    Backslash,
    /// `%00` or a raw NUL: may truncate the path in C-based upstreams.
    #[error("NUL byte in path")]
    Nul,
    /// Raw `#` or `%23`: a fragment never belongs in a request target.
    #[error("'#' in path")]
    Fragment,
    /// Raw `;` or `%3B` (path parameters), unless explicitly allowed.
    #[error("';' in path")]
    Semicolon,
    /// A `%` not followed by two hex digits (`%`, `%4`, `%zz`).
    #[error("invalid percent-encoding in path")]
    BadPercentEncoding,
    /// The fully decoded bytes are not UTF-8 (e.g. `%C3%28`, `%FF`, overlong `%C0%AF`).
    #[error("path is not valid UTF-8")]
    InvalidUtf8,
    /// A `..` segment (in any spelling) would climb above `/`; we refuse rather than clamp.
    #[error("'..' climbs above the root")]
    AboveRoot,
    /// A raw or encoded byte below 0x20 or 0x7F (other than NUL).
    #[error("control character in path")]
    ControlChar,
    /// With semicolons allowed, `..;x` or `.;x`: a server that strips path parameters
    /// reads it as a dot segment the gateway never resolved.
    #[error("dot segment with path parameters ('..;')")]
    DotSegmentParameter,
}

/// Options that change what is accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct NormalizeOptions {
    /// Let `;` and `%3B` through unchanged (`paths.allow_semicolons`); off by default
    /// because some upstreams strip path parameters before routing.
    pub allow_semicolons: bool,
}

/// Normalizes the path part of a request target (no query: the caller splits it off).
/// Returns `Cow::Borrowed` when the input is already normal (the common case must not allocate).
///
/// Unreserved characters are percent-decoded, other escapes get upper-case hex, repeated
/// slashes are merged, and dot segments are removed as RFC 3986 §5.2.4 does. An empty
/// path is treated as `/` (what `http://host` means). Slashes are merged before dot
/// segments are resolved, so `/a//..` is `/`. When a path breaks several rules, the
/// error reported is the first one met scanning left to right.
pub fn normalize_path(path: &str, opts: NormalizeOptions) -> Result<Cow<'_, str>, PathError> {
    let out = normalize_segments(path, opts)?;
    if opts.allow_semicolons && (out.contains(';') || out.contains("%3B")) {
        let dotted = out.split('/').any(|seg| {
            let before = seg.split(';').next().unwrap_or(seg);
            let before = before.split("%3B").next().unwrap_or(before);
            before != seg && (before == "." || before == "..")
        });
        if dotted {
            return Err(PathError::DotSegmentParameter);
        }
    }
    Ok(out)
}

fn normalize_segments(path: &str, opts: NormalizeOptions) -> Result<Cow<'_, str>, PathError> {
    if path.is_empty() {
        return Ok(Cow::Borrowed("/"));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathError::NotAbsolute);
    };

    let mut out = Output {
        path,
        kept: 0,
        owned: None,
    };
    let mut utf8 = Utf8Check::default();
    let mut trailing_slash = false;
    let mut start = 1; // byte offset of the current segment in `path`
    for seg in rest.split('/') {
        let end = start + seg.len();
        let is_last = end == path.len();
        utf8.raw("/")?; // the separator before this segment
        let rewrite = scan_segment(seg, opts, &mut utf8)?;

        let dots = if rewrite {
            // Decoding may turn `%2E%2e` into `..`, so write first and look at the result.
            let buf = out.materialize();
            let mark = buf.len();
            buf.push('/');
            write_segment(seg, buf);
            let dots = dot_segment(buf.get(mark + 1..).unwrap_or_default());
            if dots.is_some() {
                buf.truncate(mark);
            }
            dots
        } else {
            let dots = dot_segment(seg);
            if dots.is_none() && !seg.is_empty() {
                out.push_segment(seg, end);
            }
            dots
        };

        match dots {
            Some(Dots::One) => {
                out.materialize();
            }
            Some(Dots::Two) => out.pop()?,
            None if seg.is_empty() && !is_last => {
                // Repeated slash: dropping the empty segment changes the string.
                out.materialize();
            }
            None => {}
        }
        trailing_slash = is_last && (seg.is_empty() || dots.is_some());
        start = end + 1;
    }
    utf8.finish()?;

    match out.owned {
        None => Ok(Cow::Borrowed(path)),
        Some(mut buf) => {
            // An empty buffer implies a trailing slash today; checked anyway so the
            // result can never lose its leading '/'.
            if trailing_slash || buf.is_empty() {
                buf.push('/');
            }
            Ok(Cow::Owned(buf))
        }
    }
}

/// Percent-decodes a single (already normalized) path segment, for comparing path parameter
/// values with claim values. Borrowed when it holds no '%'.
///
/// Meant for output of [`normalize_path`]; on other input, malformed escapes are kept
/// verbatim and invalid UTF-8 is replaced with U+FFFD rather than failing.
pub fn decode_segment(segment: &str) -> Cow<'_, str> {
    if !segment.contains('%') {
        return Cow::Borrowed(segment);
    }
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy()
}

/// The output under construction: a prefix of the input for as long as nothing has
/// changed, so the common case never allocates.
struct Output<'a> {
    path: &'a str,
    /// While `owned` is `None`, the output so far is `path[..kept]`.
    kept: usize,
    /// Holds `"/seg"` units only, so the last segment always starts at the last `/`.
    owned: Option<String>,
}

impl Output<'_> {
    /// Switches to an owned buffer (once); the output is never longer than the input.
    fn materialize(&mut self) -> &mut String {
        let (path, kept) = (self.path, self.kept);
        self.owned.get_or_insert_with(|| {
            let mut buf = String::with_capacity(path.len());
            buf.push_str(path.get(..kept).unwrap_or_default());
            buf
        })
    }

    /// Appends an unchanged segment that ends at byte `end` of the input.
    fn push_segment(&mut self, seg: &str, end: usize) {
        match &mut self.owned {
            None => self.kept = end,
            Some(buf) => {
                buf.push('/');
                buf.push_str(seg);
            }
        }
    }

    /// Removes the last segment for a `..`; there being none means climbing above the root.
    fn pop(&mut self) -> Result<(), PathError> {
        let buf = self.materialize();
        let cut = buf.rfind('/').ok_or(PathError::AboveRoot)?;
        buf.truncate(cut);
        Ok(())
    }
}

/// A dot segment, after decoding.
#[derive(Clone, Copy)]
enum Dots {
    One,
    Two,
}

fn dot_segment(seg: &str) -> Option<Dots> {
    match seg {
        "." => Some(Dots::One),
        ".." => Some(Dots::Two),
        _ => None,
    }
}

/// Validates one segment (no `/` in it) and reports whether its spelling must change
/// (an escape of an unreserved character, or lower-case hex).
fn scan_segment(
    seg: &str,
    opts: NormalizeOptions,
    utf8: &mut Utf8Check,
) -> Result<bool, PathError> {
    let mut pieces = seg.split('%');
    let first = pieces.next().unwrap_or_default();
    check_raw(first, opts, utf8)?;
    let mut rewrite = false;
    for piece in pieces {
        let (hex, raw) = piece
            .split_at_checked(2)
            .ok_or(PathError::BadPercentEncoding)?;
        let byte = hex_pair(hex).ok_or(PathError::BadPercentEncoding)?;
        if byte == b'/' {
            return Err(PathError::EncodedSlash);
        }
        check_byte(byte, opts)?;
        utf8.byte(byte)?;
        rewrite |= is_unreserved(byte) || hex.bytes().any(|b| b.is_ascii_lowercase());
        check_raw(raw, opts, utf8)?;
    }
    Ok(rewrite)
}

/// Checks literal (not percent-encoded) text.
fn check_raw(raw: &str, opts: NormalizeOptions, utf8: &mut Utf8Check) -> Result<(), PathError> {
    utf8.raw(raw)?;
    raw.bytes().try_for_each(|b| check_byte(b, opts))
}

/// The rules shared by raw and decoded bytes.
fn check_byte(byte: u8, opts: NormalizeOptions) -> Result<(), PathError> {
    match byte {
        b'\\' => Err(PathError::Backslash),
        0 => Err(PathError::Nul),
        b'#' => Err(PathError::Fragment),
        b';' if !opts.allow_semicolons => Err(PathError::Semicolon),
        0x01..=0x1F | 0x7F => Err(PathError::ControlChar),
        _ => Ok(()),
    }
}

/// Writes a segment already accepted by [`scan_segment`] in normal form.
fn write_segment(seg: &str, buf: &mut String) {
    let mut pieces = seg.split('%');
    buf.push_str(pieces.next().unwrap_or_default());
    for piece in pieces {
        let parsed = piece
            .split_at_checked(2)
            .and_then(|(hex, raw)| Some((hex_pair(hex)?, raw)));
        match parsed {
            Some((byte, raw)) => {
                if is_unreserved(byte) {
                    buf.push(char::from(byte));
                } else {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    buf.push('%');
                    buf.push(char::from(HEX[usize::from(byte >> 4)]));
                    buf.push(char::from(HEX[usize::from(byte & 0x0F)]));
                }
                buf.push_str(raw);
            }
            None => {
                // Unreachable after `scan_segment`; keep the text rather than panic.
                buf.push('%');
                buf.push_str(piece);
            }
        }
    }
}

/// ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3): the only safe bytes to decode.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn hex_pair(hex: &str) -> Option<u8> {
    let &[hi, lo] = hex.as_bytes() else {
        return None;
    };
    Some((hex_digit(hi)? << 4) | hex_digit(lo)?)
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Streaming UTF-8 validation of the fully decoded path, so no decoded copy is kept.
/// Follows the well-formed byte sequence table of Unicode §3.9 (no overlongs,
/// no surrogates, nothing above U+10FFFF).
#[derive(Default)]
struct Utf8Check {
    /// Continuation bytes still expected.
    need: u8,
    /// Allowed range of the next continuation byte.
    lo: u8,
    hi: u8,
}

impl Utf8Check {
    fn byte(&mut self, b: u8) -> Result<(), PathError> {
        if self.need > 0 {
            if !(self.lo..=self.hi).contains(&b) {
                return Err(PathError::InvalidUtf8);
            }
            self.need -= 1;
            (self.lo, self.hi) = (0x80, 0xBF);
            return Ok(());
        }
        (self.need, self.lo, self.hi) = match b {
            0x00..=0x7F => return Ok(()),
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => return Err(PathError::InvalidUtf8),
        };
        Ok(())
    }

    /// Literal text is valid UTF-8 and starts on a character boundary, so it is only
    /// wrong when it interrupts an encoded multi-byte sequence.
    fn raw(&mut self, text: &str) -> Result<(), PathError> {
        if self.need > 0 && !text.is_empty() {
            return Err(PathError::InvalidUtf8);
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), PathError> {
        if self.need > 0 {
            return Err(PathError::InvalidUtf8);
        }
        Ok(())
    }
}
