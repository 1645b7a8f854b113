//! `tdg tree` and `tdg export`: one image, pulled and flattened.

use std::path::PathBuf;

use anyhow::Result;

use super::{platform, runtime, Global};
use tdg::exit::Exit;
use tdg::layers::flatten::Wanted;
use tdg::pull::{self, Pulled};
use tdg::reference::ImageRef;

#[derive(clap::Args)]
pub struct TreeArgs {
    /// The image: `registry/repo:tag`, `…@sha256:…`, `oci:DIR[:tag]`, `oci-archive:FILE`,
    /// `docker-archive:FILE`.
    image: String,
    /// The platform to pick from an index: `linux/arm64`, `linux/amd64`.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The image, in any reference form `tree` takes.
    image: String,
    /// An empty (or absent) directory to write the flattened image into.
    dir: PathBuf,
    /// The platform to pick from an index: `linux/arm64`, `linux/amd64`.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Most bytes of file content to write: a decompression bomb stops here.
    #[arg(long, env = "TDG_MAX_EXPORT_SIZE", value_name = "SIZE", default_value = "16GiB", value_parser = super::size_arg)]
    max_export_size: u64,
}

/// Pulls `image`, spooling at most `max_spooled` bytes of file content.
fn pulled(
    g: &Global,
    image: &ImageRef,
    p: &Option<String>,
    wanted: Wanted,
    max_spooled: u64,
) -> Result<Pulled> {
    let mut env = g.env()?;
    env.max_spooled = max_spooled;
    let platform = platform(p)?;
    Ok(runtime()?.block_on(pull::pull(&env, image, platform.as_ref(), wanted))?)
}

pub fn tree(g: &Global, a: &TreeArgs) -> Result<Exit> {
    let p = pulled(g, &a.image.parse()?, &a.platform, Wanted::Nothing, u64::MAX)?;
    super::stdout::stream(|out| p.flat.tree.write_listing(out))?;
    Ok(Exit::Passed)
}

pub fn export(g: &Global, a: &ExportArgs) -> Result<Exit> {
    let image: ImageRef = a.image.parse()?;
    // Before anything is fetched: a non-empty directory used to cost a whole spool first.
    tdg::layers::export::check_destination(&a.dir).map_err(tdg::error::Error::usage)?;
    let p = pulled(
        g,
        &image,
        &a.platform,
        Wanted::Everything,
        a.max_export_size,
    )?;
    let notes = tdg::layers::export::write_tree(&p.flat, &p.spool, &a.dir)?;
    for d in &notes.skipped_devices {
        eprintln!("tdg: warning: device node {d} not created (needs privilege)");
    }
    eprintln!(
        "exported {} entries of {}@{} to {}",
        p.flat.tree.len(),
        image,
        p.resolved.digest,
        a.dir.display()
    );
    Ok(Exit::Passed)
}
