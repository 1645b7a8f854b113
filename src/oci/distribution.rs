//! The distribution API's reads, over reqwest: manifests, blobs, referrers and the token
//! exchange (distribution `docs/spec/auth/token.md`). tdg does these itself rather than
//! through oci-client because every body must be capped while it is read (a registry can
//! send an endless manifest, token or error body), every request needs a deadline, and
//! credentials go to a token realm only where tdg allows.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use oci_client::secrets::RegistryAuth;
use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};

use crate::error::{Error, ErrorKind, Result};

/// A token answer larger than this is refused (real ones are a few KiB).
pub const MAX_TOKEN_BODY: u64 = 1 << 20;
/// Of an error answer's body, only this much is read, for the message.
pub const MAX_ERROR_BODY: u64 = 64 << 10;
/// A blob's deadline grows by its size at this rate, on top of the request timeout.
pub const MIN_BLOB_RATE: u64 = 256 << 10;

/// How long a registry may send nothing (`TDG_READ_TIMEOUT`, `--read-timeout`).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one request for a document or a token may take in all (`TDG_REQUEST_TIMEOUT`,
/// `--request-timeout`); a blob gets this plus its size at [`MIN_BLOB_RATE`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Timeouts the CLI set from its flags; unset, the environment and the defaults apply.
static SET: std::sync::OnceLock<(Option<Duration>, Option<Duration>)> = std::sync::OnceLock::new();

/// Sets the idle-read and overall request timeouts for this process (once).
pub fn set_timeouts(read: Option<Duration>, request: Option<Duration>) {
    let _ = SET.set((read, request));
}

fn seconds(var: &str, default: Duration) -> Duration {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(default)
}

pub fn read_timeout() -> Duration {
    SET.get()
        .and_then(|s| s.0)
        .unwrap_or_else(|| seconds("TDG_READ_TIMEOUT", DEFAULT_READ_TIMEOUT))
}

pub fn request_timeout() -> Duration {
    SET.get()
        .and_then(|s| s.1)
        .unwrap_or_else(|| seconds("TDG_REQUEST_TIMEOUT", DEFAULT_REQUEST_TIMEOUT))
}

const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(150);

/// Why a request failed, before it is worded for the user.
#[derive(Debug)]
pub enum Fault {
    /// No answer: the connection or the transfer failed; with the overall deadline when it
    /// was that deadline that ran out (rather than an idle read).
    Request(reqwest::Error, Option<Duration>),
    /// An answer other than success, with what its body said.
    Status(StatusCode, String),
    /// A body over its cap.
    TooLarge(String),
    /// Credentials refused, or withheld by tdg.
    Auth(String),
}

impl Fault {
    /// A fault worth another attempt: a cut or stalled transfer, or a busy server.
    fn transient(&self) -> bool {
        match self {
            Fault::Request(r, _) => {
                !r.is_connect() && (r.is_timeout() || r.is_request() || r.is_body())
            }
            Fault::Status(code, _) => matches!(code.as_u16(), 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Fault::Status(StatusCode::NOT_FOUND, _))
    }

    fn kind(&self, host: &str) -> ErrorKind {
        let host = host.to_string();
        match self {
            Fault::Auth(_) => ErrorKind::Auth { host },
            Fault::Status(c, _)
                if *c == StatusCode::UNAUTHORIZED || *c == StatusCode::FORBIDDEN =>
            {
                ErrorKind::Auth { host }
            }
            _ => ErrorKind::Registry { host },
        }
    }

    fn describe(&self) -> String {
        match self {
            Fault::Request(r, deadline) => {
                let mut cause = r.to_string();
                let mut src: Option<&dyn std::error::Error> = std::error::Error::source(r);
                while let Some(s) = src {
                    cause = s.to_string();
                    src = s.source();
                }
                if r.is_connect() {
                    format!("cannot connect ({cause})")
                } else if let (true, Some(d)) = (r.is_timeout(), deadline) {
                    format!(
                        "timed out: the answer took over {}s in all (TDG_REQUEST_TIMEOUT), {ATTEMPTS} attempts",
                        d.as_secs()
                    )
                } else if r.is_timeout() {
                    format!(
                        "timed out: nothing arrived for {}s (TDG_READ_TIMEOUT), {ATTEMPTS} attempts",
                        read_timeout().as_secs()
                    )
                } else {
                    cause
                }
            }
            Fault::Status(code, body) => status_text(*code, body),
            Fault::TooLarge(m) | Fault::Auth(m) => m.clone(),
        }
    }
}

/// `401 Unauthorized` and friends, with the distribution error envelope when there is one.
fn status_text(code: StatusCode, body: &str) -> String {
    let said = match serde_json::from_str::<oci_client::errors::OciEnvelope>(body) {
        Ok(envelope) if !envelope.errors.is_empty() => envelope_text(&envelope),
        _ => body.trim().chars().take(200).collect(),
    };
    let head = match code {
        StatusCode::UNAUTHORIZED => {
            "authentication required or credentials rejected (401 Unauthorized)".to_string()
        }
        StatusCode::FORBIDDEN => "access denied (403 Forbidden)".to_string(),
        _ => format!("HTTP {}", code.as_u16()),
    };
    if said.is_empty() {
        head
    } else {
        format!("{head}: {said}")
    }
}

/// `CODE: message (detail)` for each error of a distribution error envelope.
pub fn envelope_text(envelope: &oci_client::errors::OciEnvelope) -> String {
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

/// One repository of one registry, read over HTTP(S).
pub struct Distribution {
    http: reqwest::Client,
    base: String,
    pub host: String,
    repository: String,
    auth: RegistryAuth,
    /// The pull token, once the registry asked for one.
    token: tokio::sync::Mutex<Option<String>>,
}

/// What a `WWW-Authenticate` challenge asks for.
#[derive(Debug, PartialEq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Distribution {
    pub fn new(host: &str, repository: &str, plain_http: bool, auth: RegistryAuth) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(read_timeout())
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
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The user's error for a fault met while `doing` something.
    pub fn error(&self, doing: &str, f: &Fault) -> Error {
        Error::new(
            f.kind(&self.host),
            format!("registry {}: {doing}: {}", self.host, f.describe()),
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
        let deadline = request_timeout();
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
        let deadline = request_timeout() + Duration::from_secs(size / MIN_BLOB_RATE);
        let path = format!("blobs/{digest}");
        let start = Instant::now();
        let resp = retry(|| self.get(&path, None, (Instant::now(), deadline))).await?;
        Ok(resp.bytes_stream().map(move |chunk| {
            chunk.map_err(|e| std::io::Error::other(failed(e, start, deadline).describe()))
        }))
    }

    /// A GET of `<base>/<path>` that answered success, authenticating as the registry asks.
    async fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        (start, deadline): (Instant, Duration),
    ) -> Result<Response, Fault> {
        let url = format!("{}/{path}", self.base);
        let send = |auth: Option<String>| {
            let mut r = self.http.get(&url).timeout(deadline);
            if let Some(a) = accept {
                r = r.header(ACCEPT, a);
            }
            if let Some(a) = auth {
                r = r.header(AUTHORIZATION, a);
            }
            async move { r.send().await.map_err(|e| failed(e, start, deadline)) }
        };
        let held = self
            .token
            .lock()
            .await
            .clone()
            .map(|t| format!("Bearer {t}"));
        let mut resp = send(held.clone()).await?;
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
                    let token = self
                        .fetch_token(&realm, service, scope, (start, deadline))
                        .await?;
                    *self.token.lock().await = Some(token.clone());
                    Some(format!("Bearer {token}"))
                }
                None => None,
            };
            if auth.is_some() && auth != held {
                resp = send(auth).await?;
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

    /// A pull token from the challenge's realm (distribution `token.md`). With credentials at
    /// hand, the realm must be TLS, the registry's own host or loopback: Docker would send them
    /// anywhere, tdg does not send them over plain HTTP to another host.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<String>,
        scope: Option<String>,
        (start, deadline): (Instant, Duration),
    ) -> Result<String, Fault> {
        let mut url = reqwest::Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Fault::Auth(format!("the token realm {realm:?} is not an HTTP URL")))?;
        let basic = self.basic();
        if basic.is_some() {
            if let Some(why) = realm_refusal(&self.host, &url) {
                return Err(Fault::Auth(why));
            }
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = &service {
                q.append_pair("service", s);
            }
            let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.repository));
            q.append_pair("scope", &scope);
        }
        let mut req = self.http.get(url).timeout(deadline);
        if let Some(basic) = basic {
            req = req.header(AUTHORIZATION, basic);
        }
        let resp = req.send().await.map_err(|e| failed(e, start, deadline))?;
        let status = resp.status();
        let kind = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
            .to_string();
        let body = read_capped(resp, MAX_TOKEN_BODY, "token answer", (start, deadline)).await?;
        if !status.is_success() {
            let said = status_text(status, &String::from_utf8_lossy(&body));
            return Err(Fault::Auth(format!(
                "the token realm {realm} answered {said}"
            )));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
        }
        match serde_json::from_slice::<Answer>(&body) {
            Ok(a) => a
                .token
                .or(a.access_token)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Fault::Auth(format!("the token realm {realm} answered JSON without a token"))
                }),
            Err(_) => Err(Fault::Auth(format!(
                "the token realm {realm} answered {} with no token: a body of {} bytes that is not JSON ({kind})",
                status.as_u16(),
                body.len()
            ))),
        }
    }
}

/// A transfer's failure; a timeout at (or past) the deadline was the deadline's.
fn failed(e: reqwest::Error, start: Instant, deadline: Duration) -> Fault {
    let overall = e.is_timeout() && start.elapsed() + Duration::from_millis(100) >= deadline;
    Fault::Request(e, overall.then_some(deadline))
}

/// Reads a body of at most `cap` bytes, refusing a larger one as soon as it shows: by its
/// Content-Length, or by the bytes arriving. An empty `what` truncates instead (error bodies,
/// which are only for the message).
async fn read_capped(
    resp: Response,
    cap: u64,
    what: &str,
    (start, deadline): (Instant, Duration),
) -> Result<Vec<u8>, Fault> {
    let too_large = |n: String| {
        Fault::TooLarge(format!(
            "the {what} is {n} bytes, over the {cap}-byte limit"
        ))
    };
    if let Some(n) = resp.content_length().filter(|n| *n > cap) {
        if !what.is_empty() {
            return Err(too_large(n.to_string()));
        }
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| failed(e, start, deadline))?;
        let room = (cap as usize).saturating_sub(body.len());
        if chunk.len() > room {
            if what.is_empty() {
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            return Err(Fault::TooLarge(format!(
                "the {what} runs past the {cap}-byte limit; tdg stopped reading"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Runs a request again on a transient fault, a little later each time.
async fn retry<T, F, Fut>(mut f: F) -> Result<T, Fault>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Fault>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if attempt < ATTEMPTS && e.transient() => {
                attempt += 1;
                tokio::time::sleep(BACKOFF * attempt).await;
            }
            other => return other,
        }
    }
}

/// `Basic realm=…` or `Bearer realm="…",service="…",scope="…"`.
fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = regex::Regex::new(r#"([A-Za-z]+)\s*=\s*"([^"]*)""#).ok()?;
    let mut realm = None;
    let (mut service, mut scope) = (None, None);
    for c in params.captures_iter(rest) {
        let v = c[2].to_string();
        match c[1].to_ascii_lowercase().as_str() {
            "realm" => realm = Some(v),
            "service" => service = Some(v),
            "scope" => scope = Some(v),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

/// `Some(why)` when credentials must not go to `realm`: plain HTTP to another, non-loopback
/// host than the registry's.
pub fn realm_refusal(registry: &str, realm: &reqwest::Url) -> Option<String> {
    let realm_host = realm.host_str().unwrap_or_default();
    let registry_host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    let safe = realm.scheme() == "https"
        || realm_host == registry_host
        || super::mirror::is_loopback(realm_host);
    (!safe).then(|| {
        format!(
            "refusing to send its credentials to the token realm {realm}, another host over plain HTTP; tdg sends credentials to a realm only over TLS, on the registry's own host or on loopback"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_distribution_sends_them() {
        assert_eq!(
            parse_challenge("Basic realm=\"tdg-test\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                "Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\",scope=\"repository:a/b:pull\""
            ),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                scope: Some("repository:a/b:pull".into()),
            })
        );
        assert_eq!(parse_challenge("Bearer service=\"x\""), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn an_error_envelope_is_worded_with_its_status() {
        assert_eq!(
            status_text(
                StatusCode::BAD_REQUEST,
                r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:04bb"}]}"#
            ),
            "HTTP 400: MANIFEST_BLOB_UNKNOWN: blob unknown to registry (sha256:04bb)"
        );
        assert_eq!(
            status_text(StatusCode::UNAUTHORIZED, ""),
            "authentication required or credentials rejected (401 Unauthorized)"
        );
    }

    #[test]
    fn credentials_go_to_realms_over_tls_on_the_same_host_or_loopback() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(realm_refusal("r.example:5000", &url("https://auth.example/token")).is_none());
        assert!(realm_refusal("r.example:5000", &url("http://r.example/token")).is_none());
        assert!(realm_refusal("r.example", &url("http://127.0.0.1:9/token")).is_none());
        assert!(realm_refusal("r.example", &url("http://auth.example/token")).is_some());
    }
}
