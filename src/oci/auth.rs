//! Registry credentials from the Docker config (`DOCKER_CONFIG` or `~/.docker/config.json`),
//! including `credsStore` and `credHelpers`. No config, or no entry for the host, means
//! anonymous access, which is what GHCR's public bearer-token flow needs.
//!
//! The config is read capped (a regular file only), and a helper runs with a timeout and a cap
//! on what it prints; its stderr is never echoed, as it may hold secrets.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::docker_config::{DockerConfig, Lookup};
use crate::error::Reason;
use crate::error::{Error, ErrorKind, Result};

/// How long a credential helper may take (`TDG_CREDENTIAL_HELPER_TIMEOUT`, seconds).
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// What a helper may print: a JSON object of a user name and a secret.
pub const MAX_HELPER_OUTPUT: u64 = 1 << 20;

/// What tdg presents to a registry: nothing, or a user name and secret (sent as Basic, or
/// exchanged for a token at the registry's realm).
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    Anonymous,
    Basic(String, String),
}

/// Never prints the secret.
impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryAuth::Anonymous => f.write_str("Anonymous"),
            RegistryAuth::Basic(u, _) => write!(f, "Basic({u:?}, <secret>)"),
        }
    }
}

pub fn for_host(host: &str) -> Result<RegistryAuth> {
    let refused = |m: String| Err(Error::new(ErrorKind::Auth { host: host.into() }, m));
    // Docker Hub credentials are stored under the legacy index URL.
    let key = if host == crate::reference::DOCKER_HUB || host == "index.docker.io" {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    let Some(path) = config_path() else {
        return Ok(RegistryAuth::Anonymous);
    };
    let text = match crate::located::read_capped(&path, crate::limits::MAX_TEXT_INPUT) {
        Ok(t) => t,
        Err(_) if !path.exists() => return Ok(RegistryAuth::Anonymous),
        Err(e) => return refused(format!("credentials for {host}: {e:#}")),
    };
    let lookup = match DockerConfig::parse(&text).and_then(|c| c.lookup(key)) {
        Ok(l) => l,
        Err(m) => return refused(format!("credentials for {host}: {}: {m}", path.display())),
    };
    match lookup {
        Lookup::Anonymous => Ok(RegistryAuth::Anonymous),
        Lookup::Basic(u, p) => Ok(RegistryAuth::Basic(u, p)),
        Lookup::IdentityToken => refused(identity_token(host)),
        Lookup::Helper(name) => match run_helper(&name, key, helper_timeout()) {
            Ok(Some((u, _))) if u == "<token>" => refused(identity_token(host)),
            Ok(Some((u, p))) => Ok(RegistryAuth::Basic(u, p)),
            Ok(None) => Ok(RegistryAuth::Anonymous),
            Err(m) => refused(format!(
                "credentials for {host}: credential helper docker-credential-{name} {m}"
            )),
        },
    }
}

fn identity_token(host: &str) -> String {
    format!("credentials for {host}: the Docker config holds an identity token, which tdg cannot exchange; log in with a username and password or token")
}

fn config_path() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))
        .map(|d| d.join("config.json"))
}

fn helper_timeout() -> Duration {
    std::env::var("TDG_CREDENTIAL_HELPER_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_HELPER_TIMEOUT)
}

/// `docker-credential-<name> get` with `key` on stdin: `Some((user, secret))`, or `None` when
/// the helper holds nothing for it ("credentials not found", as helpers say).
fn run_helper(
    name: &str,
    key: &str,
    timeout: Duration,
) -> std::result::Result<Option<(String, String)>, Reason> {
    let mut child = Command::new(format!("docker-credential-{name}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Reason(format!("could not be started: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is judged by its answer, not by EPIPE.
        let _ = stdin.write_all(key.as_bytes());
    }
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let r = (&mut stdout)
            .take(MAX_HELPER_OUTPUT + 1)
            .read_to_end(&mut out);
        let _ = tx.send(r.map(|_| out));
    });
    let start = Instant::now();
    let mut out = None;
    let status = loop {
        if out.is_none() {
            out = rx.try_recv().ok();
        }
        let too_much = matches!(&out, Some(Ok(o)) if o.len() as u64 > MAX_HELPER_OUTPUT);
        let over_time = start.elapsed() >= timeout;
        if too_much || over_time {
            let _ = child.kill();
            let _ = child.wait();
            return Err(if too_much {
                format!("printed more than {MAX_HELPER_OUTPUT} bytes (the limit)")
            } else {
                format!(
                    "did not answer within {}s (TDG_CREDENTIAL_HELPER_TIMEOUT)",
                    timeout.as_secs()
                )
            }
            .into());
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("could not be waited for: {e}").into()),
        }
    };
    // The helper has exited; a grandchild holding its stdout open must not hang tdg.
    let out = match out.map_or_else(|| rx.recv_timeout(Duration::from_secs(2)).ok(), Some) {
        Some(Ok(o)) if o.len() as u64 <= MAX_HELPER_OUTPUT => o,
        Some(Ok(_)) => {
            return Err(format!("printed more than {MAX_HELPER_OUTPUT} bytes (the limit)").into())
        }
        _ => return Err("left its output open after exiting".into()),
    };
    let text = String::from_utf8_lossy(&out);
    if !status.success() {
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!("failed ({status})").into());
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let a: Answer = serde_json::from_str(&text).map_err(|_| {
        "answered with something other than {\"Username\", \"Secret\"} JSON".to_string()
    })?;
    Ok(Some((a.username, a.secret)))
}
