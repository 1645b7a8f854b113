//! The token exchange (distribution `docs/spec/auth/token.md`): a `WWW-Authenticate`
//! challenge read, a token fetched from its realm, and the rule for where credentials may go.

use std::time::{Duration, Instant};

use reqwest::header::AUTHORIZATION;

use super::fault::{failed, read_capped, status_text, Fault};
use super::Distribution;

/// A token answer larger than this is refused (real ones are a few KiB).
pub const MAX_TOKEN_BODY: u64 = 1 << 20;

/// What a `WWW-Authenticate` challenge asks for.
#[derive(Debug, PartialEq)]
pub(super) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Distribution {
    /// A token for `scope` from the challenge's realm (distribution `token.md`). With credentials at
    /// hand, the realm must be TLS, the registry's own host or loopback: Docker would send them
    /// anywhere, tdg does not send them over plain HTTP to another host.
    pub(super) async fn fetch_token(
        &self,
        realm: &str,
        service: Option<String>,
        scope: String,
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

/// `Basic realm=…` or `Bearer realm="…",service="…",scope="…"`.
pub(super) fn parse_challenge(header: &str) -> Option<Challenge> {
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
        || crate::reference::is_loopback(realm_host);
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
    fn credentials_go_to_realms_over_tls_on_the_same_host_or_loopback() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(realm_refusal("r.example:5000", &url("https://auth.example/token")).is_none());
        assert!(realm_refusal("r.example:5000", &url("http://r.example/token")).is_none());
        assert!(realm_refusal("r.example", &url("http://127.0.0.1:9/token")).is_none());
        assert!(realm_refusal("r.example", &url("http://auth.example/token")).is_some());
    }
}
