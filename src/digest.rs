//! Content digests (`sha256:<64 hex>`) and readers/writers that hash what passes through them.
//!
//! Only sha256 is accepted: it is what every registry and layout tdg reads uses, and refusing
//! other algorithms keeps "verified" meaning one thing.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A validated `sha256:<hex>` digest. The hex is kept inline (no allocation): a tree index
/// holds one per file, a million of them in a large image.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: [u8; 64],
}

impl Digest {
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        match <[u8; 64]>::try_from(hex.as_bytes()) {
            Ok(bytes)
                if bytes
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) =>
            {
                Ok(Digest { hex: bytes })
            }
            _ => Err(DigestError(format!("sha256:{hex}"))),
        }
    }

    pub fn of(bytes: &[u8]) -> Self {
        Self::from_raw(Sha256::digest(bytes).into())
    }

    /// The digest of these 32 hash bytes.
    pub fn from_raw(raw: [u8; 32]) -> Self {
        let mut hex = [0u8; 64];
        hex::encode_to_slice(raw, &mut hex).expect("64 hex digits for 32 bytes");
        Digest { hex }
    }

    /// The 32 hash bytes.
    pub fn raw(&self) -> [u8; 32] {
        let mut raw = [0u8; 32];
        hex::decode_to_slice(self.hex, &mut raw).expect("a digest holds 64 hex digits");
        raw
    }

    pub fn hex(&self) -> &str {
        std::str::from_utf8(&self.hex).expect("a digest holds ASCII hex digits")
    }

    /// First 12 hex digits, for short messages.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid digest '{0}': expected sha256: followed by 64 lowercase hex digits")]
pub struct DigestError(pub String);

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("sha256:") {
            Some(hex) => Digest::from_hex(hex).map_err(|_| DigestError(s.to_string())),
            None => Err(DigestError(s.to_string())),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Running sha256 and byte count.
#[derive(Default, Clone)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub fn update(&mut self, buf: &[u8]) {
        self.sha.update(buf);
        self.len += buf.len() as u64;
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_raw(self.sha.finalize().into()), self.len)
    }
}

/// A reader that hashes everything read through it and, at end of input, fails unless the
/// bytes match the expected size and digest. Readers that stop early never see the check, so
/// callers drain it with [`VerifyingReader::finish`].
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Hasher,
    expected: Digest,
    expected_size: u64,
    what: String,
    verified: bool,
    trusted: bool,
    counted: u64,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, expected_size: u64, what: impl Into<String>) -> Self {
        VerifyingReader {
            inner,
            hasher: Hasher::default(),
            expected,
            expected_size,
            what: what.into(),
            verified: false,
            trusted: false,
            counted: 0,
        }
    }

    /// Skips hashing, for bytes verified moments ago; the size is still counted and checked.
    pub fn trust(&mut self) {
        self.trusted = true;
    }

    /// Reads the rest of the input and returns an error unless size and digest match: an
    /// `Integrity` one when they do not, an `Io` one when the input could not be read.
    pub fn finish(mut self) -> Result<(), VerifyError> {
        if let Err(e) = io::copy(&mut self, &mut io::sink()) {
            // The payload is ours when this reader judged the bytes (see `integrity_error`).
            return Err(
                match e.get_ref().and_then(|p| p.downcast_ref::<IntegrityError>()) {
                    Some(IntegrityError(m)) => VerifyError::Mismatch(m.clone()),
                    None => VerifyError::Unread(format!("{}: {e}", self.what)),
                },
            );
        }
        if self.verified {
            Ok(())
        } else {
            Err(VerifyError::Unread(format!(
                "{}: verification did not complete",
                self.what
            )))
        }
    }

    fn check(&mut self) -> io::Result<()> {
        if self.trusted {
            if self.counted != self.expected_size {
                return Err(integrity_error(format!(
                    "{}: size mismatch: expected {} bytes, got {}",
                    self.what, self.expected_size, self.counted
                )));
            }
            self.verified = true;
            return Ok(());
        }
        let (digest, len) = std::mem::take(&mut self.hasher).finish();
        if len != self.expected_size {
            return Err(integrity_error(format!(
                "{}: size mismatch: expected {} bytes, got {}",
                self.what, self.expected_size, len
            )));
        }
        if digest != self.expected {
            return Err(integrity_error(format!(
                "{}: digest mismatch: expected {}, got {}",
                self.what, self.expected, digest
            )));
        }
        self.verified = true;
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.verified {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.check()?;
            return Ok(0);
        }
        self.counted += n as u64;
        if !self.trusted {
            self.hasher.update(&buf[..n]);
        }
        if self.counted > self.expected_size {
            return Err(integrity_error(format!(
                "{}: more bytes than the expected {}",
                self.what, self.expected_size
            )));
        }
        Ok(n)
    }
}

/// Why a [`VerifyingReader`] did not verify its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bytes do not match the expected digest or size.
    #[error("{0}")]
    Mismatch(String),
    /// The input could not be read to its end.
    #[error("{0}")]
    Unread(String),
}

/// The payload of the `io::Error`s a [`VerifyingReader`] raises on bytes that miss their
/// digest, so its `finish` can tell them from failures to read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct IntegrityError(String);

fn integrity_error(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, IntegrityError(msg))
}

/// A writer that hashes everything written through it.
pub struct HashingWriter<W> {
    pub inner: W,
    pub hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::default(),
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        assert_eq!(d, Digest::of(b""));
        assert!("sha512:abcd".parse::<Digest>().is_err());
        assert!(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
                .parse::<Digest>()
                .is_err()
        );
        assert!("sha256:abc".parse::<Digest>().is_err());
    }

    #[test]
    fn verifying_reader_rejects_tampered_bytes() {
        let good = Digest::of(b"hello");
        let r = VerifyingReader::new(&b"hellp"[..], good.clone(), 5, "blob");
        let err = r.finish().unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        let r = VerifyingReader::new(&b"hello!"[..], good.clone(), 5, "blob");
        assert!(r.finish().unwrap_err().to_string().contains("more bytes"));
        let r = VerifyingReader::new(&b"hell"[..], good.clone(), 5, "blob");
        assert!(r
            .finish()
            .unwrap_err()
            .to_string()
            .contains("size mismatch"));
        VerifyingReader::new(&b"hello"[..], good, 5, "blob")
            .finish()
            .unwrap();
    }
}
