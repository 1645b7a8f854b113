//! Byte sizes in specs: an integer, or a number with a unit (`512`, `1.5MiB`, `200MB`, `4k`).

use crate::error::Reason;
use std::fmt;

use schemars::JsonSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

pub fn parse(s: &str) -> Result<u64, Reason> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let mult: u64 = match unit {
        "" | "B" => 1,
        "k" | "K" | "kB" | "KB" => 1000,
        "KiB" | "Ki" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "MiB" | "Mi" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "GiB" | "Gi" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size '{s}': unknown unit '{unit}' (use B, KB, KiB, MB, MiB, GB, GiB)"
            )
            .into())
        }
    };
    if num.is_empty() {
        return Err(format!("invalid size '{s}': no number").into());
    }
    let bad = || Reason(format!("invalid size '{s}'"));
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    let v = f * mult as f64;
    if !(0.0..1.8e19).contains(&v) || v.fract() != 0.0 {
        return Err(format!("invalid size '{s}': not a whole number of bytes").into());
    }
    Ok(v as u64)
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size: bytes as an integer, or a string like \"1MiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Bytes as an integer, or a number with a unit: B, KB, KiB, MB, MiB, GB, GiB.",
            "oneOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*(B|k|K|kB|KB|Ki|KiB|M|MB|Mi|MiB|G|GB|Gi|GiB)?\s*$"}
            ]
        })
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        human(self.0, f)
    }
}

fn human(n: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (m, u) in UNITS {
        if n >= m {
            return write!(f, "{n} bytes ({:.1} {u})", n as f64 / m as f64);
        }
    }
    write!(f, "{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn units() {
        assert_eq!(parse("1MiB"), Ok(1 << 20));
        assert_eq!(parse("200MB"), Ok(200_000_000));
        assert_eq!(parse("1.5KiB"), Ok(1536));
        assert_eq!(parse("42"), Ok(42));
        assert!(parse("1.3B").is_err());
        assert!(parse("5 parsecs").is_err());
        assert!(parse("MiB").is_err());
        assert!(parse("99999999999999GiB").is_err());
    }
}
