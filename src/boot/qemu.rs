//! Running a kernel under QEMU with its serial console on a pipe: `qemu-system-aarch64 -M virt`
//! or `qemu-system-x86_64 -M q35`, KVM when `/dev/kvm` opens and the host is the guest's arch,
//! TCG otherwise. QEMU is killed on every way out: when dropped, when tdg dies
//! (`PR_SET_PDEATHSIG`), and on SIGINT/SIGTERM, which the boot loop watches for.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use crate::error::{Error, ErrorKind, Result};
use crate::spec::Arch;

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct Machine {
    pub arch: Arch,
    pub boot: Payload,
    pub memory_mib: u64,
}

/// A kernel QEMU loads itself, or a UKI that UEFI firmware boots from an ESP.
#[derive(Debug, Clone)]
pub enum Payload {
    Kernel {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        append: String,
        /// Through UEFI firmware (kernel, initrd and command line over fw_cfg, the kernel run
        /// as an EFI application), as an EFI zboot kernel needs; else QEMU loads it directly.
        uefi: bool,
    },
    /// `dir` holds `EFI/BOOT/BOOT<arch>.EFI`, served to the firmware as a FAT disk.
    Uki { esp: PathBuf },
}

/// The UEFI firmware QEMU boots a UKI or an EFI kernel with, and the Debian package that has
/// it. Talos's own QEMU launcher (`pkg/provision/providers/qemu`) boots arm64 through UEFI too.
pub fn firmware(arch: Arch) -> (&'static str, &'static str) {
    match arch {
        Arch::Arm64 => (
            "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
            "qemu-efi-aarch64",
        ),
        Arch::Amd64 => ("/usr/share/ovmf/OVMF.fd", "ovmf"),
    }
}

/// The removable-media boot path UEFI firmware looks for (`\EFI\BOOT\BOOTAA64.EFI`).
pub fn removable_path(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "EFI/BOOT/BOOTAA64.EFI",
        Arch::Amd64 => "EFI/BOOT/BOOTX64.EFI",
    }
}

pub fn binary(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "qemu-system-aarch64",
        Arch::Amd64 => "qemu-system-x86_64",
    }
}

/// The Debian package that brings [`binary`].
pub fn package(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "qemu-system-arm",
        Arch::Amd64 => "qemu-system-x86",
    }
}

/// The serial console the arch's `virt`/`q35` machine has.
pub fn console(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "ttyAMA0",
        Arch::Amd64 => "ttyS0",
    }
}

/// KVM when it can be used: the host runs the guest's arch and `/dev/kvm` opens.
pub fn kvm(arch: Arch) -> bool {
    let host = match std::env::consts::ARCH {
        "aarch64" => Arch::Arm64,
        "x86_64" => Arch::Amd64,
        _ => return false,
    };
    host == arch
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok()
}

/// The QEMU command; `use_kvm` says whether to ask for KVM (with the host's CPU).
pub fn command(m: &Machine, use_kvm: bool) -> Command {
    let mut c = Command::new(binary(m.arch));
    let (accel, cpu) = if use_kvm {
        ("kvm", "host")
    } else {
        ("tcg", "max")
    };
    match m.arch {
        Arch::Arm64 => c.args(["-M", "virt", "-cpu", cpu]),
        Arch::Amd64 => c.args(["-M", "q35", "-cpu", cpu]),
    };
    c.args(["-accel", accel])
        .args(["-m", &m.memory_mib.to_string()])
        // No NIC (its option ROM is another package), no display, no monitor: the serial
        // console alone, on stdout.
        .args([
            "-nic", "none", "-display", "none", "-monitor", "none", "-serial", "stdio",
        ])
        .arg("-no-reboot");
    match &m.boot {
        Payload::Kernel {
            kernel,
            initrd,
            append,
            uefi,
        } => {
            if *uefi {
                c.arg("-bios").arg(firmware(m.arch).0);
            }
            c.arg("-kernel").arg(kernel);
            if let Some(i) = initrd {
                c.arg("-initrd").arg(i);
            }
            c.arg("-append").arg(append);
        }
        Payload::Uki { esp } => {
            c.arg("-bios")
                .arg(firmware(m.arch).0)
                .arg("-drive")
                .arg(format!(
                    "file=fat:{},format=raw,if=virtio,readonly=on",
                    esp.display()
                ));
        }
    }
    c
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether SIGINT or SIGTERM arrived since [`Running::start`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst) || crate::temps::interrupted()
}

/// A running QEMU and the lines of its console.
pub struct Running {
    child: Child,
    pub lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    pub fn start(m: &Machine, use_kvm: bool) -> Result<Running> {
        if let Payload::Uki { .. } | Payload::Kernel { uefi: true, .. } = m.boot {
            let (fw, package) = firmware(m.arch);
            if !Path::new(fw).is_file() {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!("no UEFI firmware at {fw} to boot with (apt-get install {package})"),
                ));
            }
        }
        // SAFETY: installing a handler that only stores to an atomic.
        unsafe {
            libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        }
        let mut cmd = command(m, use_kvm);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl and setpgid are async-signal-safe; nothing else runs in the child.
        unsafe {
            cmd.pre_exec(|| {
                // Dies with tdg; its own process group, so a terminal's Ctrl-C reaches tdg,
                // which kills it after cleaning up.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!(
                        "{} is not installed (apt-get install {})",
                        binary(m.arch),
                        package(m.arch)
                    ),
                ))
            }
            Err(e) => return Err(Error::io(Path::new(binary(m.arch)), e)),
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            // Lines of any bytes; a console may print anything.
            while let Ok(n) = r.read_until(b'\n', &mut buf) {
                if n == 0 {
                    break;
                }
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches('\n')
                    .to_string();
                buf.clear();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = (&mut stderr).take(64 << 10).read_to_string(&mut s);
            s
        });
        // Under the CLI, signals go to `temps`' thread, which defers to this loop while QEMU
        // runs (until `Drop`); embedded (the harness), the handler above notes them.
        crate::temps::defer(true);
        Ok(Running {
            child,
            lines,
            stderr: Some(stderr),
        })
    }

    /// QEMU's exit code, once it has exited.
    pub fn exited(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .ok()
            .flatten()
            .map(|s| s.code().unwrap_or(-1))
    }

    /// Kills QEMU and returns what it wrote to stderr.
    pub fn stop(mut self) -> String {
        self.kill();
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
        crate::temps::defer(false);
    }
}
