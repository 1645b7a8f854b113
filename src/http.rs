//! Plain HTTP(S) downloads (served assets, Image Factory files): streamed, hashed while they
//! arrive, counted against the length the server promised, and never half-kept.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;

use crate::digest::{Digest, Hasher};

pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .user_agent(concat!("tdg/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The host a URL names, for messages.
pub fn host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| u.port().map_or(h.to_string(), |p| format!("{h}:{p}")))
        })
        .unwrap_or_else(|| url.to_string())
}

/// A request that got no answer: "HOST: cannot VERB URL: why".
pub fn request_error(verb: &str, url: &str, e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    format!("{}: cannot {verb} {url}: {what}", host(url))
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Request(String),
    #[error("{host}: {url} answered {status}")]
    Status {
        host: String,
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("{host}: {url} was cut short: {got} of the {promised} bytes promised")]
    Truncated {
        host: String,
        url: String,
        got: u64,
        promised: u64,
    },
    #[error(
        "{host}: {url} broke off after {got} bytes, so its SHA-256 cannot be computed: {error}"
    )]
    Broken {
        host: String,
        url: String,
        got: u64,
        error: String,
    },
    #[error("writing {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

pub struct Fetched {
    pub digest: Digest,
    pub size: u64,
}

/// Streams `url` through SHA-256 into `sink` (`label` names the progress bar).
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    sink: &mut dyn Write,
    sink_name: &str,
    label: &str,
) -> Result<Fetched, FetchError> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| FetchError::Request(request_error("fetch", url, &e)))?;
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            host: host(url),
            url: url.into(),
            status: resp.status(),
        });
    }
    let promised = resp.content_length();
    let bar = crate::progress::bytes(promised.unwrap_or(0), label.to_string());
    let mut h = Hasher::default();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            // A stream that ends before its Content-Length is a truncation, not a mystery.
            match promised {
                Some(p) if h.len() < p => FetchError::Truncated {
                    host: host(url),
                    url: url.into(),
                    got: h.len(),
                    promised: p,
                },
                _ => FetchError::Broken {
                    host: host(url),
                    url: url.into(),
                    got: h.len(),
                    error: e.to_string(),
                },
            }
        })?;
        h.update(&chunk);
        sink.write_all(&chunk).map_err(|error| FetchError::Write {
            path: sink_name.into(),
            error,
        })?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if let Some(p) = promised.filter(|p| h.len() != *p) {
        return Err(FetchError::Truncated {
            host: host(url),
            url: url.into(),
            got: h.len(),
            promised: p,
        });
    }
    let (digest, size) = h.finish();
    Ok(Fetched { digest, size })
}

/// Downloads `url` to `dest` through a temporary file beside it, renamed into place only when
/// every byte arrived: a failed download leaves nothing behind.
pub async fn fetch_to(
    client: &reqwest::Client,
    url: &str,
    dest: &Path,
    label: &str,
) -> Result<Fetched, FetchError> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty());
    let dir: PathBuf = dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let write_err = |error| FetchError::Write {
        path: dest.display().to_string(),
        error,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".tdg-download-")
        .tempfile_in(&dir)
        .map_err(write_err)?;
    let mut w = std::io::BufWriter::new(tmp);
    let fetched = fetch(client, url, &mut w, &dest.display().to_string(), label).await?;
    let tmp = w.into_inner().map_err(|e| write_err(e.into_error()))?;
    tmp.as_file().sync_all().map_err(write_err)?;
    // A temporary file is private (0600); a download is an ordinary file.
    set_mode(tmp.as_file()).map_err(write_err)?;
    tmp.persist(dest).map_err(|e| write_err(e.error))?;
    Ok(fetched)
}

/// 0644, as a file a user writes normally would be.
pub fn set_mode(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))
}
