//! The Docker config file (`config.json`), read as the Docker CLI reads it
//! (`docker/cli` `cli/config/configfile/file.go`, `cli/config/credentials/`): a host's
//! `credHelpers` entry first, then `credsStore`, then the inline `auths` entry. Keys match by
//! host, with or without a scheme and path (`https://ghcr.io/v1/` is `ghcr.io`).

use crate::error::Reason;
use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Where a host's credentials come from.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Anonymous,
    Basic(String, String),
    IdentityToken,
    /// Run `docker-credential-<name> get`.
    Helper(String),
}

impl DockerConfig {
    pub fn parse(text: &str) -> Result<Self, Reason> {
        serde_json::from_str(text).map_err(|e| Reason(format!("malformed Docker config: {e}")))
    }

    /// What the config says for `key` (a host, or Docker Hub's legacy index URL).
    pub fn lookup(&self, key: &str) -> Result<Lookup, Reason> {
        let host = hostname(key);
        let matching = |m: &BTreeMap<String, String>| {
            m.get(key)
                .or_else(|| m.iter().find(|(k, _)| hostname(k) == host).map(|(_, v)| v))
                .cloned()
        };
        if let Some(h) = matching(&self.cred_helpers).filter(|h| !h.is_empty()) {
            return helper(h);
        }
        if let Some(h) = self.creds_store.clone().filter(|h| !h.is_empty()) {
            return helper(h);
        }
        let entry = self.auths.get(key).or_else(|| {
            self.auths
                .iter()
                .find(|(k, _)| hostname(k) == host)
                .map(|(_, v)| v)
        });
        let Some(e) = entry else {
            return Ok(Lookup::Anonymous);
        };
        if e.identitytoken.as_deref().is_some_and(|t| !t.is_empty()) {
            return Ok(Lookup::IdentityToken);
        }
        if let Some(auth) = e.auth.as_deref().filter(|a| !a.is_empty()) {
            return decode_auth(auth);
        }
        match (&e.username, &e.password) {
            (Some(u), Some(p)) => Ok(Lookup::Basic(u.clone(), p.clone())),
            _ => Ok(Lookup::Anonymous),
        }
    }
}

/// A helper name becomes part of a program name; it must not be a path.
fn helper(name: String) -> Result<Lookup, Reason> {
    if name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "credential helper name {:?} is not a plain name",
            name.chars().take(64).collect::<String>()
        )
        .into());
    }
    Ok(Lookup::Helper(name))
}

/// `auth` is base64 of `user:password` (`configfile.decodeAuth`).
fn decode_auth(auth: &str) -> Result<Lookup, Reason> {
    use base64::Engine as _;
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let raw = engine
        .decode(auth.trim())
        .map_err(|_| Reason::from("the Docker config's auth field is not base64"))?;
    let text = String::from_utf8(raw)
        .map_err(|_| Reason::from("the Docker config's auth field is not UTF-8"))?;
    match text.split_once(':') {
        Some((u, p)) => Ok(Lookup::Basic(u.to_string(), p.to_string())),
        None => Err("the Docker config's auth field is not user:password".into()),
    }
}

/// `credentials.ConvertToHostname`: the host part of a key, without scheme or path.
fn hostname(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_then_store_then_auths_as_the_docker_cli_does() {
        let c = DockerConfig::parse(
            r#"{"auths":{"https://ghcr.io/v1/":{"auth":"dTpw"},"a.io":{"username":"x","password":"y"},
                "t.io":{"identitytoken":"tok"}},
                "credHelpers":{"gcr.io":"gcloud"}}"#,
        )
        .unwrap();
        assert_eq!(
            c.lookup("ghcr.io"),
            Ok(Lookup::Basic("u".into(), "p".into()))
        );
        assert_eq!(c.lookup("a.io"), Ok(Lookup::Basic("x".into(), "y".into())));
        assert_eq!(c.lookup("t.io"), Ok(Lookup::IdentityToken));
        assert_eq!(c.lookup("gcr.io"), Ok(Lookup::Helper("gcloud".into())));
        assert_eq!(c.lookup("other.io"), Ok(Lookup::Anonymous));
        let s = DockerConfig::parse(r#"{"auths":{"ghcr.io":{"auth":"dTpw"}},"credsStore":"pass"}"#)
            .unwrap();
        assert_eq!(s.lookup("ghcr.io"), Ok(Lookup::Helper("pass".into())));
    }

    #[test]
    fn hostile_entries_are_errors() {
        let c = DockerConfig::parse(r#"{"credsStore":"../../bin/sh"}"#).unwrap();
        assert!(c.lookup("x.io").unwrap_err().contains("not a plain name"));
        let c = DockerConfig::parse(r#"{"auths":{"x.io":{"auth":"!!"}}}"#).unwrap();
        assert!(c.lookup("x.io").unwrap_err().contains("not base64"));
        assert!(DockerConfig::parse("[").is_err());
    }
}
