//! `tdg boot`: boot an image's boot assets, or local files, under QEMU.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{platform, runtime, Global};
use tdg::boot::{self, Machine, Options};
use tdg::error::Error;
use tdg::layers::flatten::Wanted;
use tdg::oci::platform::Platform;
use tdg::reference::ImageRef;
use tdg::spec::Arch;

#[derive(clap::Args)]
pub struct BootArgs {
    /// An image with assets/talos/<arch>/boot/{vmlinuz,initramfs.xz}.
    #[arg(required_unless_present = "kernel", conflicts_with_all = ["kernel", "initrd"])]
    image: Option<String>,
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// arm64 or amd64 (default: the platform's, else arm64).
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    /// Boot this kernel file instead of an image's.
    #[arg(long, value_name = "FILE", requires = "initrd")]
    kernel: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// Give up after this long.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The console line (a regex) that ends a successful boot.
    #[arg(long, default_value = boot::DEFAULT_UNTIL)]
    until: String,
    /// Kernel arguments added to Talos's metal ones.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    append: Option<String>,
    #[arg(long, default_value = "2GiB", value_parser = super::size_arg)]
    memory: u64,
    /// Write the serial console here.
    #[arg(long, value_name = "FILE")]
    console: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "human")]
    format: super::inspect::Format,
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

pub fn boot(g: &Global, a: &BootArgs) -> Result<u8> {
    let p = platform(&a.platform)?;
    let arch = arch(a, p.as_ref())?;
    // An image's assets stay in the spool until the boot is over.
    let mut _pulled = None;
    let (kernel, initrd) = match (&a.image, &a.kernel) {
        (Some(image), _) => {
            let image: ImageRef = image.parse()?;
            let root = format!("assets/talos/{}/boot", arch.as_str());
            let (k, i) = (format!("{root}/vmlinuz"), format!("{root}/initramfs.xz"));
            let platform = p.unwrap_or_else(|| Platform::new("linux", arch.as_str(), None));
            let env = g.env()?;
            let wanted = Wanted::Paths([k.clone(), i.clone()].into());
            let pulled =
                runtime()?.block_on(tdg::pull::pull(&env, &image, Some(&platform), wanted))?;
            let path = |f: &str| {
                pulled
                    .flat
                    .spooled(&pulled.spool, f)
                    .with_context(|| format!("{image} has no kernel to boot at /{f}"))
            };
            let paths = (path(&k)?, Some(path(&i)?));
            _pulled = Some(pulled);
            paths
        }
        (None, Some(k)) => (k.clone(), a.initrd.clone()),
        (None, None) => unreachable!("clap requires an image or --kernel"),
    };
    let mut append = boot::default_append(arch);
    if let Some(extra) = &a.append {
        append = format!("{append} {extra}");
    }
    let opts = Options {
        machine: Machine {
            arch,
            kernel,
            initrd,
            append,
            memory_mib: a.memory >> 20,
        },
        timeout: a.timeout,
        until: regex::Regex::new(&a.until).map_err(|e| Error::usage(format!("--until: {e}")))?,
        console: a.console.clone(),
    };
    let booted = boot::boot(&opts)?;
    match a.format {
        super::inspect::Format::Json => println!("{}", serde_json::to_string_pretty(&booted)?),
        super::inspect::Format::Human => print!("{}", booted.human()),
    }
    Ok(booted.exit_code())
}
