//! The Go side of the factory tests (`harness/factory/main.go`): built once per run with
//! Debian's Go and go.yaml.in/yaml/v4 (offline, GOPATH mode), used as the reference for schematic IDs
//! (`batch`) and as a stand-in Image Factory on loopback (`serve`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};

use crate::registry::spawn_tied;

/// The built program, or why it could not be built (reported by every trial that needs it).
pub fn binary() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn build() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("factory");
    std::fs::create_dir_all(&dir)?;
    let bin = dir.join("factory");
    // Built beside and renamed into place: under nextest every trial is its own process, and
    // one may be running the program while another replaces it.
    let fresh = dir.join(format!("factory.{}.tmp", std::process::id()));
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&fresh)
        .arg(".")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/factory"))
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath())
        .env("GOCACHE", dir.join("cache"))
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .output()
        .context("running go (apt-get install golang-go golang-github-blang-semver-dev; bash .ci/fetch-newer)")?;
    if !out.status.success() {
        bail!(
            "go build harness/factory failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::rename(&fresh, &bin)?;
    Ok(bin)
}

/// sid's go.yaml.in/yaml/v4, unpacked by `.ci/fetch-newer`, then Debian's own Go sources.
fn gopath() -> String {
    let v4 =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian/go-yaml-v4/usr/share/gocode");
    format!("{}:/usr/share/gocode", v4.display())
}

/// yaml v4's canonical bytes for each document, or its error.
pub fn canonical_batch(docs: &[String]) -> Result<Vec<Result<String, String>>> {
    let lines = docs
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    answers("batch", &lines)?
        .into_iter()
        .map(|v| match (v["ok"].as_str(), v["err"].as_str()) {
            (Some(ok), _) => Ok(Ok(ok.to_string())),
            (_, Some(e)) => Ok(Err(e.to_string())),
            _ => bail!("factory batch: unexpected answer {v}"),
        })
        .collect()
}

/// Each manifest as Talos's `loadManifest` decodes it with go-yaml v4: name, version, author,
/// description, compatibility and extraInfo, or the decoder's error.
pub fn manifests_batch(texts: &[String]) -> Result<Vec<Result<Vec<String>, String>>> {
    let lines = texts
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    answers("manifests", &lines)?
        .into_iter()
        .map(|v| match (v["ok"].as_array(), v["err"].as_str()) {
            (Some(ok), _) => Ok(Ok(ok
                .iter()
                .map(|f| f.as_str().unwrap_or_default().to_string())
                .collect())),
            (_, Some(e)) => Ok(Err(e.to_string())),
            _ => bail!("factory manifests: unexpected answer {v}"),
        })
        .collect()
}

/// Whether blang/semver, as Talos calls it, admits each Talos version in each range (`Err`:
/// the range or version does not parse).
pub fn ranges_batch(queries: &[(String, String)]) -> Result<Vec<Result<bool, String>>> {
    let lines = queries
        .iter()
        .map(|(r, t)| serde_json::to_string(&serde_json::json!({"Range": r, "Talos": t})))
        .collect::<Result<Vec<_>, _>>()?;
    answers("ranges", &lines)?
        .into_iter()
        .map(|v| match (v["ok"].as_bool(), v["err"].as_str()) {
            (Some(ok), _) => Ok(Ok(ok)),
            (_, Some(e)) => Ok(Err(e.to_string())),
            _ => bail!("factory ranges: unexpected answer {v}"),
        })
        .collect()
}

/// Feeds JSON lines to `factory MODE` and reads one JSON answer per line.
fn answers(mode: &str, lines: &[String]) -> Result<Vec<serde_json::Value>> {
    let mut child = Command::new(binary()?)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = String::new();
    for l in lines {
        input += l;
        input.push('\n');
    }
    let mut stdin = child.stdin.take().context("batch stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow!("writer panicked"))?
        .context("feeding the batch")?;
    if !out.status.success() {
        bail!("factory {mode}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let answers = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<serde_json::Value>, _>>()?;
    if answers.len() != lines.len() {
        bail!(
            "factory {mode} answered {} of {}",
            answers.len(),
            lines.len()
        );
    }
    Ok(answers)
}

/// A stand-in Image Factory on 127.0.0.1, serving the files of `root`.
pub struct FakeFactory {
    pub url: String,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

/// How the fake misbehaves: `post` ok|no-id|wrong-id|fail, `download` ok|truncate|abort|missing.
pub struct Behaviour<'a> {
    pub post: &'a str,
    pub download: &'a str,
}

pub const WELL: Behaviour<'static> = Behaviour {
    post: "ok",
    download: "ok",
};

impl FakeFactory {
    pub fn start(root: &Path, b: Behaviour<'_>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("requests.log");
        let mut cmd = Command::new(binary()?);
        cmd.arg("serve")
            .arg("-root")
            .arg(root)
            .args(["-post", b.post, "-download", b.download])
            .arg("-log")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        let mut child = spawn_tied(cmd)?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("factory stdout")?).read_line(&mut line)?;
        let url = line.trim().to_string();
        if !url.starts_with("http://127.0.0.1:") {
            let _ = child.kill();
            bail!("the fake factory did not start: {line:?}");
        }
        Ok(FakeFactory {
            url,
            log,
            child,
            _dir: dir,
        })
    }

    /// `host:port`, which is also the registry its installer references name.
    pub fn host(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// The requests served so far, `METHOD PATH` a line.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for FakeFactory {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
