//! A real registry on loopback: Debian's `docker-registry` (CNCF distribution) on a free port
//! with a throw-away storage directory, stopped when dropped. `TDG_TEST_REGISTRY=host:port`
//! points the shared registry at one already running instead.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

pub struct Auth<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

impl Registry {
    pub fn start(auth: Option<Auth<'_>>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut last = None;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let addr = format!("127.0.0.1:{port}");
            let mut config = format!(
                "version: 0.1\nlog: {{level: info, accesslog: {{disabled: false}}}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: '{addr}', secret: tdg-test}}\n",
                dir.path().join("data").display()
            );
            if let Some(a) = &auth {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", a.user, a.password])
                    .output()
                    .context("running htpasswd (apt-get install apache2-utils)")?;
                if !out.status.success() {
                    bail!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
                }
                std::fs::write(dir.path().join("htpasswd"), &out.stdout)?;
                config += &format!(
                    "auth: {{htpasswd: {{realm: tdg-test, path: {}}}}}\n",
                    dir.path().join("htpasswd").display()
                );
            }
            std::fs::write(dir.path().join("config.yml"), config)?;
            let log = std::fs::File::create(dir.path().join("registry.log"))?;
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve")
                .arg(dir.path().join("config.yml"))
                .stdout(log.try_clone()?)
                .stderr(log)
                .stdin(Stdio::null());
            let child = spawn_tied(cmd)
                .context("starting docker-registry (apt-get install docker-registry)")?;
            let mut reg = Registry {
                addr,
                child: Some(child),
                dir: None,
            };
            match reg.wait_ready() {
                Ok(()) => {
                    reg.dir = Some(dir);
                    return Ok(reg);
                }
                Err(e) => last = Some(e), // the port was taken between probe and bind: try another
            }
        }
        Err(last.unwrap()).context(format!(
            "docker-registry did not start; log: {}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        ))
    }

    /// A registry someone else runs.
    pub fn external(addr: &str) -> Self {
        Registry {
            addr: addr.to_string(),
            child: None,
            dir: None,
        }
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("docker-registry exited: {status}");
            }
            if let Ok(code) = http_status(&self.addr, "/v2/") {
                if code == 200 || code == 401 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("docker-registry at {} not ready after 10s", self.addr)
    }

    /// The registry's storage root (only for registries this harness started).
    pub fn storage(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("data"))
    }

    /// The file holding a blob's bytes in the registry's storage.
    pub fn blob_file(&self, hex: &str) -> Option<PathBuf> {
        self.storage().map(|s| {
            s.join(format!(
                "docker/registry/v2/blobs/sha256/{}/{hex}/data",
                &hex[..2]
            ))
        })
    }

    /// How many blob GETs the registry has served, from its access log: an account of
    /// network fetches that does not rely on tdg's own counters.
    pub fn blob_gets(&self) -> usize {
        let Some(d) = &self.dir else { return 0 };
        let log = std::fs::read_to_string(d.path().join("registry.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Spawns a server that ends with the test process, however that ends.
pub fn spawn_tied(mut cmd: Command) -> std::io::Result<Child> {
    // SAFETY: prctl in the child before exec; it only asks the kernel to end the child if
    // the test process dies, so no server outlives a killed run.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    spawn(cmd)
}

/// Spawns from one thread that lives as long as the process. PR_SET_PDEATHSIG fires when the
/// *thread* that forked the child exits, and trials run on short-lived worker threads: a
/// registry spawned from one would be killed when its trial ended, under the others.
fn spawn(cmd: Command) -> std::io::Result<Child> {
    use std::sync::mpsc::{channel, Sender};
    use std::sync::{Mutex, OnceLock};
    type Request = (Command, Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (tx, rx) = channel();
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, tx))
        .map_err(std::io::Error::other)?;
    rx.recv().map_err(std::io::Error::other)?
}

/// A minimal HTTP/1.0 GET, to probe readiness without a client library.
fn http_status(addr: &str, path: &str) -> Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr.parse()?, Duration::from_millis(200))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf)?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status")
}

pub fn write_docker_config(dir: &Path, registry: &str, user: &str, password: &str) -> Result<()> {
    use base64::Engine as _;
    use std::fmt::Write as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut s = String::new();
    write!(s, r#"{{"auths":{{"{registry}":{{"auth":"{token}"}}}}}}"#)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), s)?;
    Ok(())
}
