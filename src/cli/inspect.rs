//! `tdg inspect kernel|initramfs|uki|extension`.

use anyhow::{Context, Result};
use clap::Subcommand;

use super::{platform, runtime, Global};
use tdg::exit::Exit;
use tdg::inspect as i;
use tdg::reference::ImageRef;

#[derive(Subcommand)]
pub enum Inspect {
    /// A kernel: arm64 Image, bzImage, EFI-stub PE or UKI.
    Kernel(FileArgs),
    /// An initramfs as the kernel unpacks it: segments, entries, extensions (exit 1 when the
    /// unpack stops early or a listed layer is not there).
    Initramfs(FileArgs),
    /// A UKI: its sections, embedded kernel, cmdline and os-release.
    Uki(FileArgs),
    /// A system extension image: manifest and rootfs, and whether Talos accepts them.
    Extension {
        /// The extension image, in any reference form (`ghcr.io/siderolabs/spin:v0.21.0`).
        image: String,
        /// The platform to pick from an index: `linux/arm64`, `linux/amd64`.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        /// Judge the paths by this Talos version's rules (default: the newest).
        #[arg(long, value_name = "VERSION")]
        talos: Option<String>,
        /// Judge it as siderolabs/extensions' validator does (version format, service specs,
        /// allowed paths enforced), not only as the imager does.
        #[arg(long)]
        strict: bool,
        /// human or json.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
}

#[derive(clap::Args)]
pub struct FileArgs {
    /// A local file, or REF//path/in/image.
    target: String,
    /// The platform to pick from an index: `linux/arm64`, `linux/amd64`.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// human or json.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// JSON is written as it is serialized: an initramfs of 100k entries is never a document in
/// memory.
fn print<T: serde::Serialize>(
    format: Format,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> Result<()> {
    match format {
        Format::Json => super::stdout::stream(|out| {
            serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::other)?;
            out.write_all(b"\n")
        }),
        Format::Human => super::stdout::print(&human(value)),
    }
}

pub fn inspect(g: &Global, what: &Inspect) -> Result<Exit> {
    let rt = runtime()?;
    let env = g.env()?;
    let f = match what {
        Inspect::Extension {
            image,
            platform: p,
            talos,
            strict,
            format,
        } => {
            let image: ImageRef = image.parse()?;
            let p = platform(p)?;
            let x = rt.block_on(i::extension(
                &env,
                &image,
                p.as_ref(),
                talos.as_deref(),
                *strict,
            ))?;
            print(*format, &x, i::human_extension)?;
            return Ok(if x.problems.is_empty() {
                Exit::Passed
            } else {
                Exit::Failed
            });
        }
        Inspect::Kernel(f) | Inspect::Uki(f) | Inspect::Initramfs(f) => f,
    };
    let target = i::parse_target(&f.target)?;
    let opened = rt.block_on(i::open(&env, &target, platform(&f.platform)?.as_ref()))?;
    if let Inspect::Initramfs(_) = what {
        let info = i::initramfs(&opened.path, env.limits, &env.cache.root().join("tmp"))
            .with_context(|| f.target.clone())?;
        print(f.format, &info, i::human_initramfs)?;
        let services_ok = info
            .services
            .iter()
            .flatten()
            .all(|s| s.problems.is_empty());
        return Ok(if info.problems().is_empty() && services_ok {
            Exit::Passed
        } else {
            Exit::Failed
        });
    }
    let k = i::kernel(&opened.path).with_context(|| f.target.clone())?;
    if matches!(what, Inspect::Uki(_)) && k.uki.is_none() {
        anyhow::bail!(
            "{}: not a UKI (an {} with no .linux section)",
            f.target,
            k.format.describe()
        );
    }
    print(f.format, &k, i::human_kernel)?;
    Ok(Exit::Passed)
}
