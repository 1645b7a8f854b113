//! `tdg boot`: boot an image's boot assets, local files, or a UKI, under QEMU.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{platform, runtime, Global};
use tdg::boot::{self, Machine, Options, Payload};
use tdg::error::Error;
use tdg::exit::Exit;
use tdg::layers::flatten::Wanted;
use tdg::oci::platform::Platform;
use tdg::pull::Pulled;
use tdg::reference::ImageRef;
use tdg::spec::Arch;

#[derive(clap::Args)]
pub struct BootArgs {
    /// An image with assets/talos/<arch>/boot/{vmlinuz,initramfs.xz}.
    #[arg(required_unless_present_any = ["kernel", "uki", "matchbox"], conflicts_with_all = ["kernel", "initrd", "uki", "matchbox"])]
    image: Option<String>,
    /// Boot what `tdg build --matchbox DIR` wrote, with its profile's kernel arguments.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kernel", "initrd", "uki"])]
    matchbox: Option<PathBuf>,
    /// The matchbox profile (default: the only one in DIR/profiles).
    #[arg(long, value_name = "NAME", requires = "matchbox")]
    profile: Option<String>,
    /// The platform to pick from an index: `linux/arm64`, `linux/amd64`.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// arm64 or amd64 (default: the platform's, else arm64).
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    /// Boot this kernel file instead of an image's.
    #[arg(long, value_name = "FILE", requires = "initrd")]
    kernel: Option<PathBuf>,
    /// The initramfs to boot with --kernel.
    #[arg(long, value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// Boot this UKI under UEFI firmware (its own .cmdline; --append does not apply).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kernel", "initrd"])]
    uki: Option<PathBuf>,
    /// Give up after this long.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The console line (a regex) that ends a successful boot.
    #[arg(long, default_value = boot::DEFAULT_UNTIL)]
    until: String,
    /// Kernel arguments added to Talos's metal ones.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    append: Option<String>,
    /// The guest's memory.
    #[arg(long, default_value = "2GiB", value_parser = super::size_arg)]
    memory: u64,
    /// Write the serial console here.
    #[arg(long, value_name = "FILE")]
    console: Option<PathBuf>,
    /// How the kernel starts: auto (UEFI firmware for an EFI zboot kernel, such as Talos's
    /// arm64 vmlinuz; QEMU's own loader otherwise), uefi (any EFI-stub kernel through the
    /// firmware), none (QEMU's loader).
    #[arg(long, value_enum, default_value = "auto", conflicts_with = "uki")]
    firmware: FirmwareArg,
    /// human, or json (what the console showed, the extensions enabled, the services).
    #[arg(long, value_enum, default_value = "human")]
    format: super::inspect::Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FirmwareArg {
    Auto,
    Uefi,
    None,
}

impl From<FirmwareArg> for boot::Firmware {
    fn from(f: FirmwareArg) -> Self {
        match f {
            FirmwareArg::Auto => boot::Firmware::Auto,
            FirmwareArg::Uefi => boot::Firmware::Uefi,
            FirmwareArg::None => boot::Firmware::None,
        }
    }
}

fn arch(a: &BootArgs, p: Option<&Platform>) -> Result<Arch> {
    let name = a
        .arch
        .clone()
        .or_else(|| p.map(|p| p.arch.clone()))
        .unwrap_or_else(|| "arm64".into());
    match name.as_str() {
        "arm64" => Ok(Arch::Arm64),
        "amd64" => Ok(Arch::Amd64),
        other => Err(Error::usage(format!("tdg boots arm64 and amd64, not {other}")).into()),
    }
}

pub fn boot(g: &Global, a: &BootArgs) -> Result<Exit> {
    let p = platform(&a.platform)?;
    let arch = arch(a, p.as_ref())?;
    // What the boot reads stays alive until it is over: an image's spool, a UKI's ESP.
    let mut _pulled = None;
    let mut _esp = None;
    let payload = if let Some(uki) = &a.uki {
        if !uki.is_file() {
            return Err(Error::usage(format!("{}: no such file", uki.display())).into());
        }
        let (guard, esp) = boot::esp_for(uki, arch)?;
        _esp = Some(guard);
        Payload::Uki { esp }
    } else if let Some(dir) = &a.matchbox {
        let profile = tdg::build::matchbox::read_profile(dir, a.profile.as_deref())?;
        // The profile's arguments, as matchbox serves them; the arch's serial console last, so
        // the console is readable whatever the profile names.
        let mut append = profile.args.join(" ");
        append = format!("{append} console={}", boot::qemu::console(arch));
        if let Some(extra) = &a.append {
            append = format!("{append} {extra}");
        }
        let uefi = boot::Firmware::from(a.firmware).uefi_for(&profile.kernel)?;
        Payload::Kernel {
            kernel: profile.kernel,
            initrd: profile.initrd,
            append,
            uefi,
        }
    } else {
        let (kernel, initrd) = kernel_and_initrd(g, a, arch, p.as_ref(), &mut _pulled)?;
        let mut append = boot::default_append(arch);
        if let Some(extra) = &a.append {
            append = format!("{append} {extra}");
        }
        let uefi = boot::Firmware::from(a.firmware).uefi_for(&kernel)?;
        Payload::Kernel {
            kernel,
            initrd,
            append,
            uefi,
        }
    };
    let opts = Options {
        machine: Machine {
            arch,
            boot: payload,
            memory_mib: a.memory >> 20,
        },
        timeout: a.timeout,
        until: regex::Regex::new(&a.until).map_err(|e| Error::usage(format!("--until: {e}")))?,
        console: a.console.clone(),
    };
    let booted = boot::boot(&opts)?;
    match a.format {
        super::inspect::Format::Json => {
            super::stdout::println(serde_json::to_string_pretty(&booted)?)?
        }
        super::inspect::Format::Human => super::stdout::print(&booted.human())?,
    }
    Ok(booted.exit())
}

/// The kernel and initramfs to boot: an image's (pulled into `keep`, whose spool holds
/// them), or the files given.
fn kernel_and_initrd(
    g: &Global,
    a: &BootArgs,
    arch: Arch,
    p: Option<&Platform>,
    keep: &mut Option<Pulled>,
) -> Result<(PathBuf, Option<PathBuf>)> {
    let Some(image) = &a.image else {
        let kernel = a.kernel.clone().context("--kernel, --uki or an image")?;
        return Ok((kernel, a.initrd.clone()));
    };
    let image: ImageRef = image.parse()?;
    use tdg::image_path::{assets, INITRD, KERNEL};
    let root = assets(arch.as_str());
    let (k, i) = (format!("{root}/{KERNEL}"), format!("{root}/{INITRD}"));
    let platform = p
        .cloned()
        .unwrap_or_else(|| Platform::new("linux", arch.as_str(), None));
    let env = g.env()?;
    let wanted = Wanted::Paths([k.clone(), i.clone()].into());
    let pulled = runtime()?.block_on(tdg::pull::pull(&env, &image, Some(&platform), wanted))?;
    let path = |f: &str| {
        pulled
            .flat
            .spooled(&pulled.spool, f)
            .with_context(|| format!("{image} has no kernel to boot at /{f}"))
    };
    let paths = (path(&k)?, Some(path(&i)?));
    *keep = Some(pulled);
    Ok(paths)
}
