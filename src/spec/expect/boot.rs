//! `expect.boot`: a boot of the image under QEMU (checked by `check::boot`).
//!
//! The section as written (YAML, JSON Schema), its validated form, and its validation.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::initramfs::InitramfsExpect;
use super::initramfs::{ExtensionsExpect, InitramfsExpectation};
use crate::located::LocatedError;
use crate::spec::arch::Arch;
use crate::spec::validator::Validator;

// As written.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootExpect {
    /// Give up after this long (`300s`, `5m`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// The console line (a regex) that ends a successful boot (default: `entering maintenance
    /// service`).
    #[serde(default)]
    pub until: Option<String>,
    /// Kernel arguments added to Talos's metal ones.
    #[serde(default)]
    pub append: Option<String>,
    /// The kernel to boot (default `assets/talos/<arch>/boot/vmlinuz`).
    #[serde(default)]
    pub kernel: Option<String>,
    /// The initramfs (default `assets/talos/<arch>/boot/initramfs.xz`).
    #[serde(default)]
    pub initrd: Option<String>,
    /// Which extensions Talos's init enables, as for an initramfs's `extensions`.
    #[serde(default)]
    pub extensions: Option<ExtensionsExpect>,
    /// Text the console must and must not show.
    #[serde(default)]
    pub console: Option<ConsoleExpect>,
    /// Talos's services as the console reports them (`[talos] service[NAME](STATE)`): the
    /// last state each named one reported.
    #[serde(default)]
    pub services: Option<ServicesExpect>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicesExpect {
    /// Services whose last state is `Running` (`ext-spin`).
    #[serde(default)]
    pub running: Vec<String>,
    /// Services whose last state is `Waiting` (tailscale's, until its
    /// `ExtensionServiceConfig` arrives).
    #[serde(default)]
    pub waiting: Vec<String>,
    /// Services whose last state is `Failed`.
    #[serde(default)]
    pub failed: Vec<String>,
    /// Services the console never names (`ext-tailscale` on a worker).
    #[serde(default)]
    pub absent: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleExpect {
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub lacks: Vec<String>,
}

// Validated.

/// `expect.boot.until` when a spec leaves it out: Talos's line once machined runs unconfigured.
pub const DEFAULT_UNTIL: &str = "entering maintenance service";

/// `expect.boot.timeout` when a spec leaves it out.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The validated `expect.boot`.
#[derive(Debug, Clone)]
pub struct BootExpectation {
    pub timeout: std::time::Duration,
    pub until: regex::Regex,
    pub append: Option<String>,
    /// Paths in the image; `{arch}` still in them.
    pub kernel: String,
    pub initrd: String,
    pub extensions: Option<InitramfsExpectation>,
    pub console_contains: Vec<String>,
    pub console_lacks: Vec<String>,
    pub services: Option<ServicesExpectation>,
}

/// The validated `expect.boot.services`: the last state of each named service.
#[derive(Debug, Clone, Default)]
pub struct ServicesExpectation {
    pub running: Vec<String>,
    pub waiting: Vec<String>,
    pub failed: Vec<String>,
    pub absent: Vec<String>,
}

impl BootExpectation {
    pub fn kernel_for(&self, arch: Arch) -> String {
        self.kernel.replace("{arch}", arch.as_str())
    }
    pub fn initrd_for(&self, arch: Arch) -> String {
        self.initrd.replace("{arch}", arch.as_str())
    }
}

impl Validator<'_> {
    pub(in crate::spec) fn boot(
        &self,
        b: &Spanned<BootExpect>,
    ) -> Result<BootExpectation, LocatedError> {
        let (v, at) = (&b.value, &b.referenced);
        let timeout = match &v.timeout {
            Some(t) => humantime::parse_duration(t)
                .map_err(|e| self.err(at, format!("boot.timeout '{t}': {e}")))?,
            None => super::DEFAULT_TIMEOUT,
        };
        let until = v.until.as_deref().unwrap_or(super::DEFAULT_UNTIL);
        let until = regex::Regex::new(until).map_err(|e| {
            self.err(
                at,
                format!(
                    "boot.until: invalid regex: {}",
                    crate::spec::last_line(&e.to_string())
                ),
            )
        })?;
        let extensions = match &v.extensions {
            Some(x) => {
                let i = InitramfsExpect {
                    extensions: Some(ExtensionsExpect {
                        present: x.present.clone(),
                        absent: x.absent.clone(),
                        exact: x.exact.clone(),
                    }),
                    compression: None,
                    services: None,
                    arch: None,
                };
                Some(self.initramfs(&i, at)?)
            }
            None => None,
        };
        let path = |p: &Option<String>, default: &str| -> Result<String, LocatedError> {
            let p = p.clone().unwrap_or_else(|| default.to_string());
            crate::image_path::normalize(&p.replace("{arch}", "arm64"))
                .map_err(|e| self.err(at, e.to_string()))?;
            Ok(p)
        };
        let console = v.console.as_ref();
        use crate::image_path::{ASSETS, INITRD, KERNEL};
        Ok(BootExpectation {
            timeout,
            until,
            append: v.append.clone(),
            kernel: path(&v.kernel, &format!("{ASSETS}/{KERNEL}"))?,
            initrd: path(&v.initrd, &format!("{ASSETS}/{INITRD}"))?,
            extensions,
            console_contains: console.map(|c| c.contains.clone()).unwrap_or_default(),
            console_lacks: console.map(|c| c.lacks.clone()).unwrap_or_default(),
            services: v
                .services
                .as_ref()
                .map(|x| self.services(x, at))
                .transpose()?,
        })
    }

    pub(in crate::spec) fn services(
        &self,
        x: &ServicesExpect,
        at: &Location,
    ) -> Result<super::ServicesExpectation, LocatedError> {
        let all = x
            .running
            .iter()
            .chain(&x.waiting)
            .chain(&x.failed)
            .chain(&x.absent);
        if all.clone().next().is_none() {
            return Err(self.err(
                at,
                "boot.services names no service: give running, waiting, failed or absent",
            ));
        }
        for (i, n) in all.clone().enumerate() {
            if n.is_empty() || n.contains(char::is_whitespace) || n.contains(['[', ']', '(', ')']) {
                return Err(self.err(at, format!("boot.services: '{n}' is not a service name")));
            }
            if all.clone().take(i).any(|m| m == n) {
                return Err(self.err(at, format!("boot.services names {n} twice")));
            }
        }
        Ok(super::ServicesExpectation {
            running: x.running.clone(),
            waiting: x.waiting.clone(),
            failed: x.failed.clone(),
            absent: x.absent.clone(),
        })
    }
}
