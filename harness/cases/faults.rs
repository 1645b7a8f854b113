//! A registry that misbehaves on purpose (`harness/faults/registry.py`, on loopback): endless
//! and oversized bodies end in a short error in little memory, stalls and drips end at their
//! timeouts, and credentials never go to a plain-HTTP realm elsewhere. Each case asserts the
//! exit code, the message, the peak RSS of a fresh process and that the cache keeps no junk.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use super::cli::expect_exit;
use super::hostile::with_peak_rss;

/// The fault-injecting registry, killed when dropped.
pub(crate) struct Faulty {
    child: Child,
    pub(crate) host: String,
}

impl Faulty {
    fn start() -> Result<Self> {
        Self::serving(None)
    }

    /// With `layout`, its `layout` fault serves that OCI layout as a registry with the OCI 1.1
    /// referrers API.
    pub(crate) fn serving(layout: Option<&Path>) -> Result<Self> {
        Self::spawn(layout, None)
    }

    /// Its `readback-fails` fault passes requests on to the registry at `upstream`.
    pub(crate) fn in_front_of(upstream: &str) -> Result<Self> {
        Self::spawn(None, Some(upstream))
    }

    fn spawn(layout: Option<&Path>, upstream: Option<&str>) -> Result<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/faults/registry.py");
        let mut cmd = Command::new("python3");
        if let Some(l) = layout {
            cmd.env("TDG_FAULT_LAYOUT", l);
        }
        if let Some(u) = upstream {
            cmd.env("TDG_FAULT_UPSTREAM", u);
        }
        let mut child = cmd
            .arg(&script)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting python3 harness/faults/registry.py")?;
        let mut port = String::new();
        BufReader::new(child.stdout.take().context("piped")?).read_line(&mut port)?;
        ensure!(
            !port.trim().is_empty(),
            "the faulty registry printed no port"
        );
        Ok(Faulty {
            child,
            host: format!("127.0.0.1:{}", port.trim()),
        })
    }

    fn image(&self, fault: &str) -> String {
        format!("{}/{fault}/img:t", self.host)
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tdg tree IMAGE` with a fresh cache and `env`; asserts exit 2, every `want` in the message,
/// a short message, a bounded peak RSS and time, and nothing left in the cache's `tmp/`.
fn refused(image: &str, env: &[(&str, &str)], want: &[&str], within: Duration) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cache = tmp.path().join("cache");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tdg"));
    cmd.env("TDG_CACHE", &cache)
        .env("DOCKER_CONFIG", tmp.path())
        .env_remove("TDG_MIRROR")
        .env_remove("TDG_READ_TIMEOUT")
        .env_remove("TDG_REQUEST_TIMEOUT");
    for (k, v) in env {
        match *k {
            // Not a variable: the Docker config this run gets.
            "CONFIG_JSON" => std::fs::write(tmp.path().join("config.json"), v)?,
            _ => drop(cmd.env(k, v)),
        }
    }
    cmd.args(["tree", image]);
    let start = Instant::now();
    let (out, text, mib) = with_peak_rss(&cmd)?;
    let took = start.elapsed();
    let text = expect_exit(
        &std::process::Output {
            stderr: text.into_bytes(),
            ..out
        },
        2,
    )?;
    for w in want {
        ensure!(text.contains(w), "{image}: missing {w:?} in:\n{text}");
    }
    ensure!(
        text.len() < 1500 && text.lines().count() < 6,
        "{image}: the message is not short:\n{text}"
    );
    ensure!(mib < 100.0, "{image}: peak RSS {mib:.1} MiB");
    ensure!(took < within, "{image}: took {took:?}");
    let left: Vec<_> = std::fs::read_dir(cache.join("tmp"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
        .unwrap_or_default();
    ensure!(left.is_empty(), "{image}: left in the cache: {left:?}");
    Ok(())
}

/// An endless manifest, a 100 MiB one, an endless error body, an endless token answer and a
/// login page for a token: each read only up to its cap (they took 6 GB, 216 MB and 114 MB).
pub fn a_faulty_registry_s_bodies_are_capped_while_read() -> Result<()> {
    let f = Faulty::start()?;
    let quick = Duration::from_secs(30);
    refused(
        &f.image("endless-manifest"),
        &[],
        &["the manifest runs past the 4194304-byte limit", &f.host],
        quick,
    )?;
    refused(
        &f.image("huge-manifest"),
        &[],
        &["the manifest is 104857600 bytes, over the 4194304-byte limit"],
        quick,
    )?;
    refused(&f.image("endless-error"), &[], &["HTTP 500"], quick)?;
    refused(
        &f.image("endless-token"),
        &[],
        &["token answer runs past the 1048576-byte limit"],
        quick,
    )?;
    // Said as what it is, not as "401 Unauthorized".
    refused(
        &f.image("html-token"),
        &[],
        &["answered 200 with no token", "not JSON (text/html)"],
        quick,
    )?;
    Ok(())
}

/// A registry that accepts and says nothing, one that drips a byte at a time, and a blob that
/// stops half-way: each ends at its timeout naming the host, and the half blob is not kept.
pub fn a_stalling_or_dripping_registry_times_out() -> Result<()> {
    let f = Faulty::start()?;
    refused(
        &f.image("stall"),
        &[("TDG_READ_TIMEOUT", "1")],
        &[&f.host, "nothing arrived for 1s (TDG_READ_TIMEOUT)"],
        Duration::from_secs(30),
    )?;
    refused(
        &f.image("drip"),
        &[("TDG_READ_TIMEOUT", "5"), ("TDG_REQUEST_TIMEOUT", "2")],
        &[&f.host, "took over 2s in all (TDG_REQUEST_TIMEOUT)"],
        Duration::from_secs(30),
    )?;
    refused(
        &f.image("stalled-blob"),
        &[("TDG_READ_TIMEOUT", "1")],
        &[&f.host, "blob sha256:1111", "nothing arrived for 1s"],
        Duration::from_secs(30),
    )?;
    Ok(())
}

/// A bearer realm on another host over plain HTTP does not get the Basic credentials (Docker
/// sends them); the refusal says why.
pub fn credentials_never_go_to_a_plain_http_realm_elsewhere() -> Result<()> {
    let f = Faulty::start()?;
    let config = format!(
        r#"{{"auths":{{"{}":{{"username":"u","password":"secret"}}}}}}"#,
        f.host
    );
    refused(
        &f.image("realm-elsewhere"),
        &[("CONFIG_JSON", &config)],
        &[
            "refusing to send its credentials",
            "http://realm.example.invalid/token",
        ],
        Duration::from_secs(30),
    )
}

/// `tdg ls` against a registry that pages forever (empty pages, each naming a next one) ends in
/// an error at once; a next page on another host is never followed (credentials stay home).
pub fn a_tag_list_that_pages_forever_or_elsewhere_is_refused() -> Result<()> {
    let f = Faulty::start()?;
    let tmp = tempfile::tempdir()?;
    let ls = |repo: &str| -> Result<String> {
        let o = Command::new(env!("CARGO_BIN_EXE_tdg"))
            .env("TDG_CACHE", tmp.path().join("cache"))
            .args(["ls", &format!("{}/{repo}/img", f.host)])
            .args(["--mirror", &format!("{0}=http://{0}", f.host)])
            .output()?;
        expect_exit(&o, 2)
    };
    let start = Instant::now();
    let out = ls("endless-tags")?;
    ensure!(
        out.contains("an empty page names a next one") && out.contains(&f.host),
        "{out}"
    );
    ensure!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let out = ls("tags-elsewhere")?;
    ensure!(
        out.contains("the next page of tags is elsewhere")
            && out.contains("elsewhere.example.invalid"),
        "{out}"
    );
    Ok(())
}
