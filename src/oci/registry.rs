//! Reading from and writing to a registry over the distribution API. Reads go through tdg's
//! own requests (`distribution`), which cap every body and give every request a deadline;
//! pushes through oci-client's upload protocol. tdg checks every byte it reads itself.

use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::cache::BlobCache;
use super::distribution::{read_timeout, Distribution, Fault};
use super::manifest::{self, Descriptor, ACCEPTED, MAX_DOCUMENT};
use crate::digest::Digest;

pub struct RegistrySource {
    /// Reads: tdg's own requests, every body capped, every request with a deadline.
    reads: Distribution,
    /// Pushes: oci-client's upload protocol.
    client: Client,
    auth: RegistryAuth,
    pub host: String,
    pub repository: String,
    plain_http: bool,
    /// Why the credentials must not go to this registry's token realm, once looked at.
    realm: tokio::sync::OnceCell<Option<String>>,
}

impl RegistrySource {
    pub fn new(host: &str, repository: &str, plain_http: bool) -> Result<Self> {
        let auth = super::auth::for_host(host)?;
        let protocol = if plain_http {
            ClientProtocol::HttpsExcept(vec![host.to_string()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(std::time::Duration::from_secs(30)),
            // A registry that stalls mid-answer ends in an error, not a hang.
            read_timeout: Some(read_timeout()),
            ..Default::default()
        };
        Ok(RegistrySource {
            reads: Distribution::new(host, repository, plain_http, auth.clone())?,
            client: Client::new(config),
            auth,
            host: host.to_string(),
            repository: repository.to_string(),
            plain_http,
            realm: tokio::sync::OnceCell::new(),
        })
    }

    /// With credentials at hand, refuses a token realm on another host over plain HTTP before
    /// oci-client sends them there on a push (reads check the realm they are sent).
    async fn guard(&self) -> Result<()> {
        if !matches!(self.auth, RegistryAuth::Basic(..)) {
            return Ok(());
        }
        let refusal = self
            .realm
            .get_or_init(|| probe_realm(&self.host, self.plain_http))
            .await;
        match refusal {
            None => Ok(()),
            Some(m) => Err(Error::new(
                ErrorKind::Auth {
                    host: self.host.clone(),
                },
                format!("registry {}: {m}", self.host),
            )),
        }
    }

    fn reference(&self, tag_or_digest: &str) -> Reference {
        if tag_or_digest.starts_with("sha256:") {
            Reference::with_digest(
                self.host.clone(),
                self.repository.clone(),
                tag_or_digest.to_string(),
            )
        } else {
            Reference::with_tag(
                self.host.clone(),
                self.repository.clone(),
                tag_or_digest.to_string(),
            )
        }
    }

    async fn get_manifest(&self, tag_or_digest: &str) -> Result<Vec<u8>, Fault> {
        let path = format!("manifests/{tag_or_digest}");
        self.reads
            .document(&path, ACCEPTED, MAX_DOCUMENT, "manifest")
            .await
    }

    /// Fetches a manifest or index by tag or digest, at most [`MAX_DOCUMENT`] bytes. Returns
    /// its bytes; the caller hashes them.
    pub async fn manifest(&self, tag_or_digest: &str) -> Result<Vec<u8>> {
        self.get_manifest(tag_or_digest).await.map_err(|f| {
            let doing = format!("fetching manifest {}:{tag_or_digest}", self.repository);
            self.reads.error(&doing, &f)
        })
    }

    /// A manifest by tag or digest, or `None` when the registry says it is unknown (a tag not
    /// pushed yet, a repository not there: distribution answers 404 for both).
    pub async fn manifest_if_any(&self, tag_or_digest: &str) -> Result<Option<Vec<u8>>> {
        match self.get_manifest(tag_or_digest).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => {
                let doing = format!("looking up {}:{tag_or_digest}", self.repository);
                Err(self.reads.error(&doing, &f))
            }
        }
    }

    /// Downloads a blob into the cache unless it is already there. Returns its path and
    /// whether this call fetched (and so verified) it.
    pub async fn blob(&self, desc: &Descriptor, cache: &BlobCache) -> Result<(PathBuf, bool)> {
        if cache.has(&desc.digest, desc.size) {
            return Ok((cache.path(&desc.digest), false));
        }
        let what = format!("blob {} of {}/{}", desc.digest, self.host, self.repository);
        let digest = desc.digest.to_string();
        let mut attempt = 1;
        loop {
            let stream = self
                .reads
                .blob(&digest, desc.size)
                .await
                .map_err(|f| self.reads.error(&format!("fetching {what}"), &f))?;
            match cache.ingest(&desc.digest, desc.size, stream, &what).await {
                Ok(path) => return Ok((path, true)),
                // A connection cut mid-blob is fetched again; bad bytes never are.
                Err(e) if attempt < ATTEMPTS && !e.is_integrity() => {
                    attempt += 1;
                    tokio::time::sleep(BACKOFF * attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Proves the credentials may push to this repository, before anything is built: the
    /// empty blob (content-addressed, so harmless) is uploaded, which needs push access.
    pub async fn preflight_push(&self) -> Result<()> {
        self.guard().await?;
        let r = self.reference("latest");
        let empty = Digest::of(b"").to_string();
        let answer = async {
            self.client
                .auth(&r, &self.auth, oci_client::RegistryOperation::Push)
                .await?;
            self.client
                .push_blob(&r, Vec::new(), &empty)
                .await
                .map(|_| ())
        }
        .await;
        answer.map_err(|e| {
            let hint = if self.host == "ghcr.io" {
                " (a GitHub token needs packages:write)"
            } else {
                ""
            };
            let err = self.error(&format!("may not push to {}{hint}", self.repository), e);
            err.context("push preflight, before any input is pulled")
        })
    }

    /// Uploads a blob from a file unless the registry has it already.
    pub async fn push_blob(&self, digest: &Digest, path: &std::path::Path) -> Result<()> {
        self.guard().await?;
        let r = self.reference("latest");
        let d = digest.to_string();
        self.client
            .auth(&r, &self.auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| self.error("authenticating for push", e))?;
        if retry(|| self.client.blob_exists(&r, &d))
            .await
            .map_err(|e| self.error(&format!("checking blob {d}"), e))?
        {
            return Ok(());
        }
        // An upload starts over from the file on a transient fault: blobs are content-addressed,
        // so a repeated upload cannot store anything else.
        retry(|| async {
            let file = tokio::fs::File::open(path).await?;
            let size = file.metadata().await?.len();
            self.client
                .push_blob_stream(&r, tokio_util_stream(file), &d, Some(size))
                .await
        })
        .await
        .map_err(|e| self.error(&format!("uploading blob {d}"), e))?;
        Ok(())
    }

    pub async fn push_manifest(
        &self,
        tag_or_digest: &str,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<()> {
        self.guard().await?;
        let r = self.reference(tag_or_digest);
        let ct: reqwest::header::HeaderValue = media_type
            .parse()
            .map_err(|_| Error::usage(format!("invalid media type {media_type}")))?;
        let bytes = bytes::Bytes::from(bytes);
        retry(|| self.client.push_manifest_raw(&r, bytes.clone(), ct.clone()))
            .await
            .map_err(|e| {
                self.error(
                    &format!("pushing manifest {}:{tag_or_digest}", self.repository),
                    e,
                )
            })?;
        Ok(())
    }

    /// The manifests that name `subject` as their subject (signatures, SBOMs, attestations):
    /// the referrers API, or the referrers tag schema (`sha256-<hex>`) where the registry has
    /// no API (a 404), as the distribution spec says a client must fall back. No index under
    /// that tag is no referrers.
    pub async fn referrers(
        &self,
        subject: &Digest,
    ) -> Result<Vec<oci_client::manifest::ImageIndexEntry>> {
        let doing = format!("listing referrers of {subject}");
        let api = self
            .reads
            .document(
                &format!("referrers/{subject}"),
                &[manifest::OCI_INDEX],
                MAX_DOCUMENT,
                "referrers index",
            )
            .await;
        let bytes = match api {
            Ok(b) => b,
            Err(f) if f.is_not_found() => {
                let tag = format!("sha256-{}", subject.hex());
                match self.manifest_if_any(&tag).await? {
                    Some(b) => b,
                    None => return Ok(Vec::new()),
                }
            }
            Err(f) => return Err(self.reads.error(&doing, &f)),
        };
        let index: oci_client::manifest::OciImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(
                    ErrorKind::Registry {
                        host: self.host.clone(),
                    },
                    format!("registry {}: {doing}: not an image index: {e}", self.host),
                )
            })?;
        Ok(index.manifests)
    }

    /// A registry's fault, of the kind its answer says: credentials refused or asked for are
    /// `Auth`, bytes that missed their digest `Integrity`, anything else `Registry`.
    fn error(&self, doing: &str, e: OciDistributionError) -> Error {
        use OciDistributionError as O;
        let host = self.host.clone();
        let kind = match &e {
            O::UnauthorizedError { .. } | O::AuthenticationFailure(_) => ErrorKind::Auth { host },
            O::DigestError(_) => ErrorKind::Integrity,
            _ => ErrorKind::Registry { host },
        };
        Error::new(
            kind,
            format!("registry {}: {doing}: {}", self.host, describe(&e)),
        )
    }
}

/// Why credentials must not go to the registry's token realm, from its challenge to an
/// anonymous `GET /v2/`. Anything that stops the probe is left for the real request to report.
async fn probe_realm(host: &str, plain_http: bool) -> Option<String> {
    let scheme = if plain_http { "http" } else { "https" };
    let resp = crate::http::client()
        .ok()?
        .get(format!("{scheme}://{host}/v2/"))
        .timeout(super::distribution::request_timeout())
        .send()
        .await
        .ok()?;
    if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
        return None;
    }
    let challenge = resp.headers().get("www-authenticate")?.to_str().ok()?;
    let realm = regex::Regex::new(r#"realm="([^"]+)""#)
        .ok()?
        .captures(challenge)?
        .get(1)?
        .as_str()
        .to_string();
    super::distribution::realm_refusal(host, &reqwest::Url::parse(&realm).ok()?)
}

const ATTEMPTS: u32 = 3;
const BACKOFF: std::time::Duration = std::time::Duration::from_millis(150);

/// Runs an idempotent registry request, again on a transient fault: a connection the server
/// closed under a reused keep-alive, a timeout, or a 502/503/504/429. Anything else (a refused
/// connection, an auth or not-found answer) is final at once.
async fn retry<T, F, Fut>(mut f: F) -> Result<T, OciDistributionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                attempt += 1;
                tokio::time::sleep(BACKOFF * attempt).await;
            }
            other => return other,
        }
    }
}

fn transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(r) => {
            !r.is_connect() && (r.is_timeout() || r.is_request() || r.is_body() || r.is_decode())
        }
        OciDistributionError::ServerError { code, .. } => matches!(code, 429 | 502 | 503 | 504),
        _ => false,
    }
}

/// Reads a file as a stream of chunks, for uploads that must not hold the blob in memory.
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = oci_client::errors::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::try_unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 4 << 20];
        let n = f
            .read(&mut buf)
            .await
            .map_err(OciDistributionError::IoError)?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), f)))
    })
}

/// A short, actionable description of a registry failure.
fn describe(e: &OciDistributionError) -> String {
    use OciDistributionError as O;
    match e {
        O::RequestError(r) => {
            let mut cause = String::new();
            let mut src: Option<&dyn std::error::Error> = Some(r);
            while let Some(s) = src {
                cause = s.to_string();
                src = s.source();
            }
            if r.is_connect() {
                format!("cannot connect ({cause})")
            } else if r.is_timeout() {
                format!(
                    "timed out: nothing arrived for {}s (TDG_READ_TIMEOUT), {ATTEMPTS} attempts",
                    read_timeout().as_secs()
                )
            } else {
                cause
            }
        }
        O::UnauthorizedError { .. } => {
            "authentication required or credentials rejected (401 Unauthorized)".into()
        }
        O::AuthenticationFailure(m) => format!("authentication failed: {}", m.trim()),
        O::ImageManifestNotFoundError(_) => "manifest unknown".into(),
        O::RegistryError { envelope, .. } => envelope_text(envelope),
        O::ServerError { code, message, .. } => {
            let m = message.trim();
            // Some answers carry a distribution error envelope that oci-client left unparsed.
            if let Ok(envelope) = serde_json::from_str::<oci_client::errors::OciEnvelope>(m) {
                return format!("HTTP {code}: {}", envelope_text(&envelope));
            }
            format!(
                "HTTP {code}{}",
                if m.is_empty() {
                    String::new()
                } else {
                    format!(": {}", m.chars().take(200).collect::<String>())
                }
            )
        }
        O::DigestError(d) => format!("integrity: {d}"),
        other => other.to_string(),
    }
}

/// `CODE: message (detail)` for each error of a distribution error envelope.
fn envelope_text(envelope: &oci_client::errors::OciEnvelope) -> String {
    envelope
        .errors
        .iter()
        .map(|err| {
            let code = serde_json::to_value(&err.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            // A string detail names the thing (a blob's digest); objects only repeat the ask.
            match &err.detail {
                serde_json::Value::String(d) => format!("{code}: {} ({d})", err.message),
                _ => format!("{code}: {}", err.message),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_envelope_in_a_server_error_is_read() {
        let e = OciDistributionError::ServerError {
            code: 400,
            url: "http://r/v2/x/manifests/t".into(),
            message: r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:04bb"}]}"#.into(),
        };
        assert_eq!(
            describe(&e),
            "HTTP 400: MANIFEST_BLOB_UNKNOWN: blob unknown to registry (sha256:04bb)"
        );
    }
}
