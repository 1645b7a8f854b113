//! Content that serves only another architecture: x86 CPU microcode, the firmware of GPUs that
//! exist only on x86 machines (Intel's i915, AMD's amdgpu; CozyStack's profile lists them, and
//! users put them in arm64 builds, image-factory #240), and ELF binaries or kernel modules built
//! for another machine. Talos carries such content without a word; on the node it is dead
//! weight at best and a module that will not load at worst.

/// An architecture content is for: `arm64` or `amd64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Arm64,
    Amd64,
}

/// Directories (relative to the root, as in an extension's rootfs or an initramfs) whose
/// content serves x86 only.
const X86_ONLY: &[(&str, &str)] = &[
    ("firmware/intel-ucode/", "Intel CPU microcode (x86 only)"),
    ("firmware/amd-ucode/", "AMD CPU microcode (x86 only)"),
    ("firmware/i915/", "Intel i915 GPU firmware (x86 only)"),
    ("firmware/amdgpu/", "AMD amdgpu GPU firmware (x86 only)"),
    ("kernel/x86/microcode/", "early x86 CPU microcode"),
];

/// Why `path` (with its first bytes `head`) serves another architecture than `arch`, if it does.
pub fn foreign(path: &str, head: &[u8], arch: Arch) -> Option<String> {
    let path = path.trim_start_matches('/');
    if arch != Arch::Amd64 {
        for (dir, what) in X86_ONLY {
            let under = path.starts_with(dir)
                || ["usr/lib/", "lib/"]
                    .iter()
                    .any(|p| path.strip_prefix(p).is_some_and(|r| r.starts_with(dir)));
            if under {
                return Some(format!("/{path}: {what}"));
            }
        }
    }
    let machine = elf_machine(head)?;
    let own = match arch {
        Arch::Arm64 => machine == "arm64",
        Arch::Amd64 => machine == "x86-64",
    };
    (!own).then(|| format!("/{path}: an ELF for {machine}"))
}

/// The CPU an ELF file is for (`e_machine`, read in the file's byte order), when it is one of
/// the CPUs Talos runs on or commonly confused with them; other machines (eBPF objects) are not
/// judged.
fn elf_machine(head: &[u8]) -> Option<&'static str> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let m = match head[5] {
        1 => u16::from_le_bytes([head[18], head[19]]),
        2 => u16::from_be_bytes([head[18], head[19]]),
        _ => return None,
    };
    Some(match m {
        3 => "x86 (32-bit)",
        62 => "x86-64",
        40 => "arm (32-bit)",
        183 => "arm64",
        243 => "riscv",
        21 => "ppc64",
        22 => "s390",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF\x02\x01\x01".to_vec();
        h.resize(18, 0);
        h.extend(machine.to_le_bytes());
        h.extend([1, 0, 0, 0]);
        h
    }

    #[test]
    fn x86_only_content_in_an_arm64_image() {
        let a = Arch::Arm64;
        assert!(foreign("usr/lib/firmware/intel-ucode/06-8f-08", b"", a)
            .unwrap()
            .contains("Intel CPU microcode"));
        assert!(foreign("/lib/firmware/amdgpu/navi10_sos.bin", b"", a).is_some());
        assert!(foreign("kernel/x86/microcode/GenuineIntel.bin", b"", a).is_some());
        assert!(foreign("usr/lib/firmware/bnx2x/x.fw", b"", a).is_none());
        assert_eq!(
            foreign("usr/local/bin/tool", &elf(62), a).unwrap(),
            "/usr/local/bin/tool: an ELF for x86-64"
        );
        assert!(foreign("usr/local/bin/tool", &elf(183), a).is_none());
        // eBPF objects serve every architecture.
        assert!(foreign("usr/local/lib/prog.o", &elf(247), a).is_none());
        // On amd64, x86 firmware is at home and an arm64 module is not.
        assert!(foreign("usr/lib/firmware/i915/x.bin", b"", Arch::Amd64).is_none());
        assert!(foreign("usr/lib/modules/6.12/x.ko", &elf(183), Arch::Amd64).is_some());
    }
}
