//! The boot pipeline: a kernel and initramfs (from files, or from an image's boot assets)
//! booted under QEMU, its serial console read until Talos's line that ends the boot, a panic,
//! QEMU's own exit or the timeout. The Linux kernel's own initramfs unpacker and squashfs
//! driver judge the build; the console becomes the outcome.

pub mod console;
pub mod qemu;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::limits::MAX_CONSOLE_BYTES;
use crate::spec::Arch;
pub use qemu::{Machine, Payload};

/// An ESP holding `uki` at the firmware's removable-media path, in a directory that goes when
/// the returned guard does.
pub fn esp_for(uki: &Path, arch: Arch) -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("tdg-esp-")
        .tempdir()
        .map_err(|e| Error::io(Path::new("(temporary ESP)"), e))?;
    let dest = dir.path().join(qemu::removable_path(arch));
    let parent = dest.parent().expect("a parent");
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    // A hard link where it can be, a copy otherwise: the UKI is not changed either way.
    if std::fs::hard_link(uki, &dest).is_err() {
        std::fs::copy(uki, &dest).map_err(|e| Error::io(uki, e))?;
    }
    let esp = dir.path().to_path_buf();
    Ok((dir, esp))
}

pub use crate::spec::{DEFAULT_TIMEOUT, DEFAULT_UNTIL};
pub const DEFAULT_MEMORY_MIB: u64 = 2048;

/// Whether a kernel boots through UEFI firmware or is loaded by QEMU itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Firmware {
    /// UEFI for an EFI zboot kernel (QEMU's own loader cannot start a zstd zboot image: it
    /// runs silently until the timeout), QEMU's loader for anything else.
    #[default]
    Auto,
    /// UEFI for any EFI-stub kernel.
    Uefi,
    /// QEMU loads the kernel itself.
    None,
}

impl Firmware {
    /// Whether `kernel` boots through UEFI: for `Auto`, when its bytes are an EFI zboot image
    /// (`MZ`, `zimg` at 4).
    pub fn uefi_for(self, kernel: &Path) -> Result<bool> {
        Ok(match self {
            Firmware::Uefi => true,
            Firmware::None => false,
            Firmware::Auto => {
                let mut head = [0u8; 8];
                let mut f = std::fs::File::open(kernel).map_err(|e| Error::io(kernel, e))?;
                let n = std::io::Read::read(&mut f, &mut head).map_err(|e| Error::io(kernel, e))?;
                n == 8 && &head[..2] == b"MZ" && &head[4..] == crate::talos::kernel::ZBOOT_MAGIC
            }
        })
    }
}

/// Talos's metal kernel arguments, with the arch's serial console.
pub fn default_append(arch: Arch) -> String {
    format!(
        "talos.platform=metal console={} init_on_alloc=1 slab_nomerge pti=on printk.devkmsg=on",
        qemu::console(arch)
    )
}

pub struct Options {
    pub machine: Machine,
    pub timeout: Duration,
    /// The console line that ends a successful boot.
    pub until: Regex,
    /// Also write the console log here; `-` streams it to stderr as it comes.
    pub console: Option<PathBuf>,
}

/// How long a console may say nothing before the boot's status says so, and what usually
/// causes it.
pub const SILENCE: Duration = Duration::from_secs(30);

/// Why a console stays silent, most often: said when a boot ends silent, and on the live line.
pub fn silence_hint(arch: Arch) -> String {
    format!(
        "the console said nothing: usually a kernel for another arch or machine, an EFI zboot kernel loaded without UEFI firmware (--firmware uefi), missing firmware, or console= naming another UART ({} here)",
        qemu::console(arch)
    )
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Extension {
    pub name: String,
    pub version: String,
}

/// What a boot showed.
#[derive(Debug, Clone, Serialize)]
pub struct Booted {
    /// The extensions Talos's init enabled, in the order it said so.
    pub extensions: Vec<Extension>,
    /// The end condition was seen.
    pub reached: bool,
    /// The first panic or oops line, when there was one.
    pub panic: Option<String>,
    pub duration_ms: u64,
    /// Where the console log was written, when it was asked for.
    pub console: Option<String>,
    /// Why the boot ended: `reached`, `panic`, `qemu exited (N)`, `timeout after …`.
    pub ended: String,
    /// Talos's services (`[talos] service[NAME](STATE)`), each with the last state it reported.
    pub services: Vec<console::Service>,
    /// What usually causes what was seen, when the boot failed silent.
    pub hint: Option<String>,
    /// The console, at most [`MAX_CONSOLE_BYTES`].
    #[serde(skip)]
    pub log: String,
}

impl Booted {
    /// Passed: reached with no panic.
    pub fn exit(&self) -> Exit {
        if self.reached && self.panic.is_none() {
            Exit::Passed
        } else {
            Exit::Failed
        }
    }

    pub fn human(&self) -> String {
        let mut s = String::new();
        for e in &self.extensions {
            s += &format!("  extension {} {}\n", e.name, e.version);
        }
        for svc in &self.services {
            s += &format!("  service {} {}\n", svc.name, svc.state);
        }
        if let Some(p) = &self.panic {
            s += &format!("  panic: {p}\n");
        }
        if let Some(h) = &self.hint {
            s += &format!("  hint: {h}\n");
        }
        s += &format!(
            "boot {} in {:.1}s ({})\n",
            if self.exit() == Exit::Passed {
                "reached its end"
            } else {
                "failed"
            },
            self.duration_ms as f64 / 1e3,
            self.ended
        );
        s
    }
}

/// Boots and reads the console until it ends. QEMU is stopped on every path. KVM is used
/// when `/dev/kvm` opens for the host's arch; a KVM that QEMU cannot use (nested
/// virtualisation often refuses MSRs) falls back to TCG.
///
/// A KVM that starts but runs nothing (nested virtualisation on some hosts: the boot stub
/// prints, then silence) would spend the whole timeout; when no kernel line has shown within
/// [`KVM_GRACE`], the boot starts again under TCG, and the log says so.
pub fn boot(opts: &Options) -> Result<Booted> {
    let use_kvm = qemu::kvm(opts.machine.arch);
    match boot_with(opts, use_kvm) {
        Err(e) if use_kvm && e.to_string().to_ascii_lowercase().contains("kvm") => {
            boot_with(opts, false)
        }
        Ok(b) if b.ended == KVM_SILENT => {
            let mut b = boot_with(opts, false)?;
            b.log = format!(
                "[tdg: no kernel line under KVM in {}s; booted again under TCG]\n{}",
                KVM_GRACE.as_secs(),
                b.log
            );
            Ok(b)
        }
        other => other,
    }
}

/// How long KVM may show no kernel line before the boot is retried under TCG: a working KVM
/// prints `Linux version` within a second or two.
pub const KVM_GRACE: Duration = Duration::from_secs(15);
const KVM_SILENT: &str = "kvm silent";

fn boot_with(opts: &Options, use_kvm: bool) -> Result<Booted> {
    let mut w = Watch::new(opts.until.clone());
    let mut running = qemu::Running::start(&opts.machine, use_kvm)?;
    let deadline = w.start + opts.timeout;
    let stream = opts.console.as_deref() == Some(Path::new("-"));
    let arch = opts.machine.arch;
    let live = crate::progress::status(format!("booting {}", arch.as_str()));
    let ended = loop {
        if qemu::interrupted() {
            drop(running);
            return Err(Error::usage("interrupted; QEMU was stopped"));
        }
        let now = Instant::now();
        if now >= deadline {
            break format!("timeout after {}s", opts.timeout.as_secs());
        }
        if use_kvm && !w.kernel_seen && now - w.start > KVM_GRACE && opts.timeout > KVM_GRACE {
            break KVM_SILENT.to_string();
        }
        live.set_message(w.status(arch, now));
        live.tick();
        match running
            .lines
            .recv_timeout((deadline - now).min(Duration::from_millis(100)))
        {
            Ok(line) => {
                if stream {
                    live.suspend(|| eprintln!("{line}"));
                }
                if let Some(ended) = w.heard(&line) {
                    break ended;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // The console closed: QEMU is gone or going.
                let code = wait_exit(&mut running);
                break format!(
                    "qemu exited ({})",
                    code.map_or("?".into(), |c| c.to_string())
                );
            }
        }
    };
    live.finish_and_clear();
    let stderr = running.stop();
    if ended.starts_with("qemu exited")
        && w.reader.reading.extensions.is_empty()
        && w.log.trim().is_empty()
    {
        // QEMU refused to start (a bad kernel path, an unknown option): not a boot failure.
        return Err(Error::usage(format!(
            "{} did not boot: {}",
            qemu::binary(opts.machine.arch),
            stderr.trim()
        )));
    }
    let console = match &opts.console {
        Some(p) if !stream => {
            write_log(p, &w.log)?;
            Some(p.display().to_string())
        }
        _ => None,
    };
    Ok(w.booted(opts, ended, console))
}

/// What a boot has shown so far: the console read line by line, the log kept, and when the
/// last line came.
struct Watch {
    start: Instant,
    reader: console::Reader,
    log: String,
    kernel_seen: bool,
    last_line: String,
    last_heard: Instant,
}

impl Watch {
    fn new(until: regex::Regex) -> Self {
        let start = Instant::now();
        Watch {
            start,
            reader: console::Reader::new(until),
            log: String::new(),
            kernel_seen: false,
            last_line: String::new(),
            last_heard: start,
        }
    }

    /// Takes one console line; returns why the boot ended, when this line ends it.
    fn heard(&mut self, line: &str) -> Option<String> {
        self.kernel_seen |= line.contains("Linux version");
        self.last_heard = Instant::now();
        self.last_line = line.chars().take(120).collect();
        if self.log.len() < MAX_CONSOLE_BYTES {
            self.log.push_str(line);
            self.log.push('\n');
            if self.log.len() >= MAX_CONSOLE_BYTES {
                self.log.push_str("[tdg: console log capped]\n");
            }
        }
        self.reader.line(line);
        if self.reader.reading.panic.is_some() {
            Some("panic".into())
        } else if self.reader.reading.reached {
            Some("reached".into())
        } else {
            None
        }
    }

    /// The live status line: time, extensions seen, and the last line or a silence hint.
    fn status(&self, arch: Arch, now: Instant) -> String {
        let names: Vec<&str> = self
            .reader
            .reading
            .extensions
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let silent = now - self.last_heard;
        format!(
            "booting {} {:>4}s  extensions: {}  {}",
            arch.as_str(),
            (now - self.start).as_secs(),
            if names.is_empty() {
                "-".to_string()
            } else {
                names.join(", ")
            },
            if silent >= SILENCE {
                format!("silent for {}s: {}", silent.as_secs(), silence_hint(arch))
            } else {
                self.last_line.clone()
            }
        )
    }

    fn booted(self, opts: &Options, ended: String, console: Option<String>) -> Booted {
        let r = self.reader.reading;
        // A boot that never reached its end and heard nothing for a while: say what usually
        // causes it.
        let hint = (!r.reached
            && r.panic.is_none()
            && Instant::now() - self.last_heard >= SILENCE.min(opts.timeout))
        .then(|| silence_hint(opts.machine.arch));
        Booted {
            extensions: r
                .extensions
                .into_iter()
                .map(|(name, version)| Extension { name, version })
                .collect(),
            reached: r.reached,
            services: r.services,
            hint,
            panic: r.panic,
            duration_ms: self.start.elapsed().as_millis() as u64,
            console,
            ended,
            log: self.log,
        }
    }
}

fn wait_exit(r: &mut qemu::Running) -> Option<i32> {
    for _ in 0..50 {
        if let Some(c) = r.exited() {
            return Some(c);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn write_log(p: &Path, log: &str) -> Result<()> {
    let mut f = std::fs::File::create(p).map_err(|e| Error::io(p, e))?;
    f.write_all(log.as_bytes()).map_err(|e| Error::io(p, e))
}
