//! Human units in config files: durations like `30s` and sizes like `16KiB`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// Why a duration or size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("invalid duration `{0}` (use e.g. 500ms, 30s, 5m, 1h)")]
    Duration(String),
    #[error("invalid size `{0}` (use e.g. 8KiB, 16KiB, 1MiB, or a number of bytes)")]
    Size(String),
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `2d`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| UnitError::Duration(text.into()))?;
    let secs = |mult: u64| {
        n.checked_mul(mult)
            .map(Duration::from_secs)
            .ok_or_else(|| UnitError::Duration(text.into()))
    };
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => Err(UnitError::Duration(text.into())),
    }
}

/// Parses `16KiB`, `1MiB`, `8KB` (taken as KiB: nobody means 8000 bytes here) or plain bytes.
pub fn parse_size(text: &str) -> Result<usize, UnitError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| UnitError::Size(text.into()))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "KB" | "K" | "k" => 1024,
        "MiB" | "MB" | "M" => 1024 * 1024,
        _ => return Err(UnitError::Size(text.into())),
    };
    n.checked_mul(mult)
        .ok_or_else(|| UnitError::Size(text.into()))
}

/// `#[serde(deserialize_with = "units::duration")]`: a duration from a string or a number of seconds.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(UnitVisitor(parse_duration, Duration::from_secs))
}

/// `#[serde(deserialize_with = "units::size")]`: a size from a string or a number of bytes.
pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    d.deserialize_any(UnitVisitor(parse_size, |n| {
        usize::try_from(n).unwrap_or(usize::MAX)
    }))
}

struct UnitVisitor<T>(fn(&str) -> Result<T, UnitError>, fn(u64) -> T);

impl<T> Visitor<'_> for UnitVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a string with a unit")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok((self.1)(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        u64::try_from(v)
            .map(self.1)
            .map_err(|_| E::custom("must not be negative"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("8192"), Ok(8192));
        assert!(parse_size("1GiB").is_err());
        assert!(parse_size("lots").is_err());
    }
}
