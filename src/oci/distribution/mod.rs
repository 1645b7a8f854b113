//! The distribution API over reqwest (distribution-spec `spec.md`): manifests, blobs and
//! referrers read, blobs and manifests pushed, and the token exchange. tdg does this itself
//! rather than through oci-client because every body must be capped while it is read (a
//! registry can send an endless manifest, token or error body), every request needs a
//! deadline, and credentials go to a token realm only where tdg allows.

mod fault;
mod token;
mod upload;

pub use fault::{envelope_text, Envelope, Fault};
pub use token::{realm_refusal, MAX_TOKEN_BODY};

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, LINK, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};

use super::auth::RegistryAuth;
use crate::error::{Error, Result};
use fault::{failed, read_capped, retry};
use token::{parse_challenge, Challenge};
/// Of an error answer's body, only this much is read, for the message.
pub const MAX_ERROR_BODY: u64 = 64 << 10;
/// A blob's deadline grows by its size at this rate, on top of the request timeout.
pub const MIN_BLOB_RATE: u64 = 256 << 10;

/// How long a registry may send nothing (`TDG_READ_TIMEOUT`, `--read-timeout`).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one request for a document or a token may take in all (`TDG_REQUEST_TIMEOUT`,
/// `--request-timeout`); a blob gets this plus its size at [`MIN_BLOB_RATE`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a registry may take: set by the CLI from `--read-timeout`/`--request-timeout`
/// (or their environment variables) and stamped on each registry endpoint by the mirrors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a registry may send nothing.
    pub read: Duration,
    /// How long one request for a document or token may take in all; a blob gets this plus
    /// its size at [`MIN_BLOB_RATE`].
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            read: DEFAULT_READ_TIMEOUT,
            request: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// The deadline of a blob of `size` bytes.
    pub fn blob(&self, size: u64) -> Duration {
        self.request + Duration::from_secs(size / MIN_BLOB_RATE)
    }
}

/// One repository of one registry, read over HTTP(S).
pub struct Distribution {
    http: reqwest::Client,
    base: String,
    pub host: String,
    repository: String,
    auth: RegistryAuth,
    timeouts: Timeouts,
    /// The `Authorization` the registry last asked for (a token, or Basic), sent first.
    authorization: tokio::sync::Mutex<Option<String>>,
}

/// A request built afresh for each try: a streamed body cannot be sent twice.
type Build<'a> = &'a (dyn Fn(&reqwest::Client) -> Result<reqwest::RequestBuilder, Fault> + Sync);

/// What a request needs of a token it has to fetch.
#[derive(Clone, Copy)]
enum Access {
    Pull,
    Push,
}

impl Distribution {
    pub fn new(
        host: &str,
        repository: &str,
        plain_http: bool,
        auth: RegistryAuth,
        timeouts: Timeouts,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(timeouts.read)
            .user_agent(concat!("tdg/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::usage(format!("cannot set up HTTP: {e}")))?;
        // Docker Hub's API lives on another name than its references use.
        let api_host = match host {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            h => h,
        };
        let scheme = if plain_http { "http" } else { "https" };
        Ok(Distribution {
            http,
            base: format!("{scheme}://{api_host}/v2/{repository}"),
            host: host.to_string(),
            repository: repository.to_string(),
            auth,
            timeouts,
            authorization: tokio::sync::Mutex::new(None),
        })
    }

    /// The user's error for a fault met while `doing` something.
    pub fn error(&self, doing: &str, f: &Fault) -> Error {
        Error::new(
            f.kind(&self.host),
            format!(
                "registry {}: {doing}: {}",
                self.host,
                f.describe(self.timeouts.read)
            ),
        )
    }

    /// A manifest, index or referrers list: at most `cap` bytes, within the request timeout.
    pub async fn document(
        &self,
        path: &str,
        accept: &[&str],
        cap: u64,
        what: &str,
    ) -> Result<Vec<u8>, Fault> {
        let deadline = self.timeouts.request;
        let accept = accept.join(", ");
        retry(|| async {
            let start = Instant::now();
            let resp = self.get(path, Some(&accept), (start, deadline)).await?;
            read_capped(resp, cap, what, (start, deadline)).await
        })
        .await
    }

    /// A blob's body as a stream, its faults worded as the user reads them; the deadline
    /// allows for its size.
    pub async fn blob(
        &self,
        digest: &str,
        size: u64,
    ) -> Result<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>>, Fault> {
        let deadline = self.timeouts.blob(size);
        let read = self.timeouts.read;
        let path = format!("blobs/{digest}");
        let start = Instant::now();
        let resp = retry(|| self.get(&path, None, (Instant::now(), deadline))).await?;
        Ok(resp.bytes_stream().map(move |chunk| {
            chunk.map_err(|e| std::io::Error::other(failed(e, start, deadline).describe(read)))
        }))
    }

    /// One page of the repository's tags (distribution-spec "Listing Tags":
    /// `GET /v2/<name>/tags/list?n=…[&last=…]`), at most `cap` bytes, and the path of the next
    /// page when the registry's `Link: <…>; rel="next"` names one on this repository.
    pub async fn tags_page(
        &self,
        path: &str,
        cap: u64,
    ) -> Result<(Vec<u8>, Option<String>), Fault> {
        let deadline = self.timeouts.request;
        retry(|| async {
            let start = Instant::now();
            let resp = self
                .get(path, Some("application/json"), (start, deadline))
                .await?;
            let next = match resp.headers().get(LINK).and_then(|v| v.to_str().ok()) {
                Some(link) => Some(self.next_page(link)?),
                None => None,
            };
            let body = read_capped(resp, cap, "tag list", (start, deadline)).await?;
            Ok((body, next))
        })
        .await
    }

    /// The path (relative to this repository's `/v2/<name>/`) a `Link` header's `rel="next"`
    /// names. A link to another host or repository is a protocol fault: tdg does not carry
    /// credentials there.
    fn next_page(&self, link: &str) -> Result<String, Fault> {
        let target = link
            .split(',')
            .find(|l| l.contains("rel=\"next\"") || l.contains("rel=next"))
            .and_then(|l| l.trim().strip_prefix('<'))
            .and_then(|l| l.split_once('>'))
            .map(|(u, _)| u)
            .ok_or_else(|| Fault::Protocol(format!("a Link header without a next page: {link}")))?;
        let origin = self.base.split("/v2/").next().unwrap_or("");
        let local = target.strip_prefix(origin).unwrap_or(target);
        local
            .strip_prefix(&format!("/v2/{}/", self.repository))
            .filter(|rest| rest.starts_with("tags/list"))
            .map(str::to_string)
            .ok_or_else(|| {
                Fault::Protocol(format!(
                    "the next page of tags is elsewhere ({target}), not on {}/{}",
                    self.host, self.repository
                ))
            })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// A GET of `<base>/<path>` that answered success.
    async fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        clock: (Instant, Duration),
    ) -> Result<Response, Fault> {
        let url = self.url(path);
        let build = |c: &reqwest::Client| {
            let r = c.get(&url);
            Ok(match accept {
                Some(a) => r.header(ACCEPT, a),
                None => r,
            })
        };
        self.send(&build, Access::Pull, clock).await
    }

    /// Sends a request until it answers success, authenticating as the registry's challenge
    /// asks (Basic, or a bearer token for `access`); anything else is a [`Fault`] with what
    /// the body said, read to [`MAX_ERROR_BODY`].
    async fn send(
        &self,
        build: Build<'_>,
        access: Access,
        (start, deadline): (Instant, Duration),
    ) -> Result<Response, Fault> {
        let go = |auth: Option<String>| async move {
            let mut r = build(&self.http)?.timeout(deadline);
            if let Some(a) = auth {
                r = r.header(AUTHORIZATION, a);
            }
            r.send().await.map_err(|e| failed(e, start, deadline))
        };
        let held = self.authorization.lock().await.clone();
        let mut resp = go(held.clone()).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge);
            let auth = match challenge {
                Some(Challenge::Basic) => self.basic(),
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope,
                }) => {
                    let actions = match access {
                        Access::Pull => "pull",
                        Access::Push => "pull,push",
                    };
                    let scope = scope
                        .unwrap_or_else(|| format!("repository:{}:{actions}", self.repository));
                    let token = self
                        .fetch_token(&realm, service, scope, (start, deadline))
                        .await?;
                    Some(format!("Bearer {token}"))
                }
                None => None,
            };
            if let Some(auth) = auth.filter(|a| Some(a) != held.as_ref()) {
                *self.authorization.lock().await = Some(auth.clone());
                resp = go(Some(auth)).await?;
            }
        }
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = read_capped(resp, MAX_ERROR_BODY, "", (start, deadline))
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Err(Fault::Status(status, body))
    }

    fn basic(&self) -> Option<String> {
        match &self.auth {
            RegistryAuth::Basic(u, p) => {
                use base64::Engine as _;
                let pair = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                Some(format!("Basic {pair}"))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Distribution, Timeouts, DEFAULT_READ_TIMEOUT};
    use crate::oci::auth::RegistryAuth;

    #[test]
    fn a_next_page_of_tags_is_followed_only_on_the_same_repository() {
        let d = Distribution::new(
            "r.example:5000",
            "a/b",
            false,
            RegistryAuth::Anonymous,
            Timeouts::default(),
        )
        .unwrap();
        let next = |l: &str| d.next_page(l).map_err(|f| f.describe(DEFAULT_READ_TIMEOUT));
        // distribution's own form: a path on the same registry.
        assert_eq!(
            next("</v2/a/b/tags/list?last=x&n=1000>; rel=\"next\"").unwrap(),
            "tags/list?last=x&n=1000"
        );
        assert_eq!(
            next("<https://r.example:5000/v2/a/b/tags/list?n=2&last=y>; rel=\"next\"").unwrap(),
            "tags/list?n=2&last=y"
        );
        for elsewhere in [
            "<https://evil.example/v2/a/b/tags/list?n=2>; rel=\"next\"",
            "</v2/a/c/tags/list?n=2>; rel=\"next\"",
            "</v2/a/b/blobs/sha256:00>; rel=\"next\"",
            "</v2/a/b/tags/list?n=2>; rel=\"prev\"",
        ] {
            assert!(next(elsewhere).is_err(), "{elsewhere}");
        }
    }
}
