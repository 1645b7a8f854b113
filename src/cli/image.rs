//! `tdg tree` and `tdg export`: one image, pulled and flattened.

use std::path::PathBuf;

use anyhow::Result;

use super::{platform, runtime, Global};
use tdg::layers::flatten::Wanted;
use tdg::pull::{self, Pulled};
use tdg::reference::ImageRef;

#[derive(clap::Args)]
pub struct TreeArgs {
    image: String,
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    image: String,
    dir: PathBuf,
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
}

fn pulled(g: &Global, image: &ImageRef, p: &Option<String>, wanted: Wanted) -> Result<Pulled> {
    let env = g.env()?;
    let platform = platform(p)?;
    Ok(runtime()?.block_on(pull::pull(&env, image, platform.as_ref(), wanted))?)
}

pub fn tree(g: &Global, a: &TreeArgs) -> Result<u8> {
    let p = pulled(g, &a.image.parse()?, &a.platform, Wanted::Nothing)?;
    print!("{}", p.flat.tree.listing());
    Ok(0)
}

pub fn export(g: &Global, a: &ExportArgs) -> Result<u8> {
    let image: ImageRef = a.image.parse()?;
    let p = pulled(g, &image, &a.platform, Wanted::Everything)?;
    let notes = tdg::layers::export::write_tree(&p.flat, &p.spool, &a.dir)?;
    for d in &notes.skipped_devices {
        eprintln!("tdg: warning: device node {d} not created (needs privilege)");
    }
    eprintln!(
        "exported {} entries of {}@{} to {}",
        p.flat.tree.entries.len(),
        image,
        p.resolved.digest,
        a.dir.display()
    );
    Ok(0)
}
