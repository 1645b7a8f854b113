//! Checks on a kernel file: the architecture its bytes say (arm64 `Image`, bzImage, EFI-stub
//! PE, a UKI's kernel), and that a UKI carries a `.linux` section and the cmdline asked for.

use std::sync::Arc;

use super::files::file_check_name;
use super::subject::{fail, Judged, Subject, Verdict};
use super::{Needs, Planned};
use crate::spec::{Arch, FileExpectation};
use crate::talos::kernel::{self, KernelInfo};

pub const KERNEL: &str = "kernel";
pub const UKI: &str = "uki";

#[derive(Debug)]
pub enum Check {
    Arch {
        path: String,
        want: Arch,
    },
    Uki {
        path: String,
        cmdline_contains: Vec<String>,
    },
}

pub fn plan(f: &FileExpectation) -> Vec<Arc<dyn Planned>> {
    let mut out: Vec<Arc<dyn Planned>> = Vec::new();
    if let Some(want) = f.kernel {
        out.push(Arc::new(Check::Arch {
            path: f.path.clone(),
            want,
        }));
    }
    if let Some(u) = &f.uki {
        out.push(Arc::new(Check::Uki {
            path: f.path.clone(),
            cmdline_contains: u.cmdline_contains.clone(),
        }));
    }
    out
}

impl Planned for Check {
    fn name(&self) -> String {
        match self {
            Check::Arch { path, .. } => file_check_name(path, KERNEL),
            Check::Uki { path, .. } => file_check_name(path, UKI),
        }
    }

    fn needs(&self) -> Needs {
        match self {
            Check::Arch { path, .. } | Check::Uki { path, .. } => Needs::paths([path.clone()]),
        }
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        match self {
            Check::Arch { path, want } => {
                let k = sniff(s, path)?;
                // A PE with no Linux header (systemd-boot, shim, GRUB) runs under UEFI but
                // boots nothing by itself: its machine field is not a kernel's arch.
                if k.format == crate::talos::kernel::Format::Pe {
                    return fail(format!(
                        "not a Linux kernel: a PE image for {} with no Linux header (no arm64 Image magic, bzImage setup header, zboot payload or UKI .linux section), such as systemd-boot or GRUB",
                        k.arch
                    ));
                }
                if k.arch == want.as_str() {
                    Ok(())
                } else {
                    fail(format!(
                        "expected an {} kernel, found {} ({})",
                        want.as_str(),
                        k.arch,
                        k.format.describe()
                    ))
                }
            }
            Check::Uki {
                path,
                cmdline_contains,
            } => {
                let k = sniff(s, path)?;
                let Some(u) = &k.uki else {
                    return fail(format!(
                        "not a UKI: a {} with no .linux section",
                        k.format.describe()
                    ));
                };
                let cmdline = u.cmdline.as_deref().unwrap_or("");
                let missing: Vec<String> = cmdline_contains
                    .iter()
                    .filter(|c| !cmdline.contains(c.as_str()))
                    .map(|c| format!("'{c}'"))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    fail(format!(
                        ".cmdline lacks {} (it is '{}')",
                        missing.join(", "),
                        cmdline.chars().take(120).collect::<String>()
                    ))
                }
            }
        }
    }
}

fn sniff(s: &Subject<'_>, path: &str) -> Result<KernelInfo, Verdict> {
    let (path, _) = s.locate(path)?;
    let mut f = s.open(&path)?;
    kernel::sniff(&mut f).map_err(|e| Verdict::Fail(format!("{e:#}")))
}
