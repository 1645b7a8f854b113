//! What can go wrong talking to a registry, worded for the user; bodies read under a cap;
//! retries of what is worth retrying.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Response, StatusCode};

use crate::error::ErrorKind;

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
    /// An answer that breaks the protocol (an upload session without a Location).
    Protocol(String),
    /// A local file to send could not be read.
    Local(String),
}

impl Fault {
    /// A fault worth another attempt: a cut or stalled transfer, or a busy server.
    pub(super) fn transient(&self) -> bool {
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

    /// Whether the registry answered and refused the credentials (rather than not answering).
    pub fn is_auth(&self) -> bool {
        matches!(self.kind(""), ErrorKind::Auth { .. })
    }

    pub(super) fn kind(&self, host: &str) -> ErrorKind {
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

    /// The fault as the user reads it; `read` is the idle timeout a stalled transfer ran into.
    pub(super) fn describe(&self, read: Duration) -> String {
        match self {
            Fault::Request(r, deadline) => {
                let mut cause = r.to_string();
                let mut chain = cause.clone();
                let mut src: Option<&dyn std::error::Error> = std::error::Error::source(r);
                while let Some(s) = src {
                    cause = s.to_string();
                    chain = format!("{chain}: {cause}");
                    src = s.source();
                }
                // The network failure first, by layer: a name that does not resolve, a TLS
                // handshake that fails, or a host that does not answer.
                let chain = chain.to_lowercase();
                if r.is_connect()
                    && (chain.contains("dns error") || chain.contains("lookup address"))
                {
                    format!("cannot resolve the host name (DNS: {cause})")
                } else if r.is_connect()
                    && ["tls", "certificate", "handshake"]
                        .iter()
                        .any(|w| chain.contains(w))
                {
                    format!("TLS failed ({cause})")
                } else if r.is_connect() {
                    format!("cannot connect ({cause})")
                } else if let (true, Some(d)) = (r.is_timeout(), deadline) {
                    format!(
                        "timed out: the answer took over {}s in all (TDG_REQUEST_TIMEOUT), {ATTEMPTS} attempts; raise it with --request-timeout",
                        d.as_secs()
                    )
                } else if r.is_timeout() {
                    format!(
                        "timed out: nothing arrived for {}s (TDG_READ_TIMEOUT), {ATTEMPTS} attempts; raise it with --read-timeout",
                        read.as_secs()
                    )
                } else {
                    cause
                }
            }
            Fault::Status(code, body) => status_text(*code, body),
            Fault::TooLarge(m) | Fault::Auth(m) | Fault::Protocol(m) | Fault::Local(m) => m.clone(),
        }
    }
}

/// `401 Unauthorized` and friends, with the distribution error envelope when there is one.
pub(super) fn status_text(code: StatusCode, body: &str) -> String {
    let said = match serde_json::from_str::<Envelope>(body) {
        Ok(envelope) if !envelope.errors.is_empty() => envelope_text(&envelope),
        _ => body.trim().chars().take(200).collect(),
    };
    let head = match code {
        StatusCode::UNAUTHORIZED => {
            "authentication required or credentials rejected (401 Unauthorized; tdg reads credentials from the Docker config, as `docker login` writes it)".to_string()
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

/// A distribution error answer (distribution-spec `spec.md`, "Error Codes").
#[derive(Debug, serde::Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub errors: Vec<EnvelopeError>,
}

#[derive(Debug, serde::Deserialize)]
pub struct EnvelopeError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// `CODE: message (detail)` for each error of a distribution error envelope.
pub fn envelope_text(envelope: &Envelope) -> String {
    envelope
        .errors
        .iter()
        .map(|err| match &err.detail {
            // A string detail names the thing (a blob's digest); objects only repeat the ask.
            serde_json::Value::String(d) => format!("{}: {} ({d})", err.code, err.message),
            _ => format!("{}: {}", err.code, err.message),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A transfer's failure; a timeout at (or past) the deadline was the deadline's.
pub(super) fn failed(e: reqwest::Error, start: Instant, deadline: Duration) -> Fault {
    let overall = e.is_timeout() && start.elapsed() + Duration::from_millis(100) >= deadline;
    Fault::Request(e, overall.then_some(deadline))
}

/// Reads a body of at most `cap` bytes, refusing a larger one as soon as it shows: by its
/// Content-Length, or by the bytes arriving. An empty `what` truncates instead (error bodies,
/// which are only for the message).
pub(super) async fn read_capped(
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
pub(super) async fn retry<T, F, Fut>(mut f: F) -> Result<T, Fault>
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

#[cfg(test)]
mod tests {
    use super::*;

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
            "authentication required or credentials rejected (401 Unauthorized; tdg reads credentials from the Docker config, as `docker login` writes it)"
        );
    }
}
