//! Platforms (`os/arch[/variant]`) and how an index entry is matched against one.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            arch: arch.to_string(),
            variant: variant.map(str::to_string),
        }
        .normalized()
    }

    /// `arm64/v8` is the same platform as `arm64` (containerd's normalisation), and an empty
    /// variant is no variant.
    fn normalized(mut self) -> Self {
        if self.variant.as_deref() == Some("")
            || (self.arch == "arm64" && self.variant.as_deref() == Some("v8"))
        {
            self.variant = None;
        }
        self
    }

    /// Whether an image of platform `self` satisfies a request for `wanted`: os and arch must be
    /// equal; a variant is compared only when the request names one.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.arch == wanted.arch
            && (wanted.variant.is_none() || self.variant == wanted.variant)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid platform '{0}': expected os/arch or os/arch/variant, e.g. linux/arm64")]
pub struct PlatformError(pub String);

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform::new(os, arch, Some(v))),
            _ => Err(PlatformError(s.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        let arm7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(arm7.satisfies(&"linux/arm".parse().unwrap()));
        assert!(!arm7.satisfies(&"linux/arm/v6".parse().unwrap()));
        assert!(!p.satisfies(&"linux/amd64".parse().unwrap()));
        for bad in ["linux", "linux/", "/arm64", "a/b/c/d", "linux/arm 64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
}
