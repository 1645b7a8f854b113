//! Running the real `tdg` binary, isolated from the host: its own cache, an empty Docker
//! config unless a test gives one, no TDG_MIRROR from the environment, and `CI=1` so no run
//! writes a golden.

use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Tdg {
    pub cache: PathBuf,
    pub docker_config: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Tdg {
    pub fn new() -> anyhow::Result<Self> {
        let tmp = tempfile::tempdir()?;
        let docker_config = tmp.path().join("docker");
        std::fs::create_dir_all(&docker_config)?;
        Ok(Tdg {
            cache: tmp.path().join("cache"),
            docker_config,
            _tmp: tmp,
        })
    }

    /// `tdg verify SPEC --mirror ghcr.io=http://REGISTRY`: a spec's own image, served by a test
    /// registry under its GHCR name.
    pub fn verify_through(&self, spec: &std::path::Path, registry: &str) -> anyhow::Result<Output> {
        let mirror = format!("ghcr.io=http://{registry}");
        self.run([
            "verify".as_ref(),
            spec.as_os_str(),
            "--mirror".as_ref(),
            mirror.as_ref(),
        ])
    }

    pub fn run<I, S>(&self, args: I) -> anyhow::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Ok(self.command(args).output()?)
    }

    /// `run` from the working directory `dir`, as a user in that directory types it.
    pub fn run_in<I, S>(&self, dir: &std::path::Path, args: I) -> anyhow::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Ok(self.command(args).current_dir(dir).output()?)
    }

    /// The isolated command, not yet run.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tdg"));
        c.env("TDG_CACHE", &self.cache)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("TDG_MIRROR")
            // Never write goldens into the repository from a test's CLI run.
            .env("CI", "1")
            .env("NO_COLOR", "1")
            .args(args);
        c
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts the exit code and returns stdout + stderr.
pub fn expect_exit(o: &Output, code: i32) -> anyhow::Result<String> {
    let t = text(o);
    anyhow::ensure!(
        o.status.code() == Some(code),
        "expected exit {code}, got {:?}:\n{t}",
        o.status.code()
    );
    Ok(t)
}
