//! `tdg digest` and `tdg ls`: crane's habits (`crane digest`, `crane ls`), daemonless, through
//! the same mirrors, credentials and timeouts as every other command.

use anyhow::Result;

use super::{platform, runtime, stdout, Global};
use tdg::error::Error;
use tdg::exit::Exit;
use tdg::oci::source::Source;
use tdg::reference::ImageRef;

#[derive(clap::Args)]
pub struct DigestArgs {
    /// The image: `registry/repo:tag`, `…@sha256:…`, `oci:DIR[:tag]`, `oci-archive:FILE`.
    image: String,
    /// Print the digest of this platform's manifest instead of the index's.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
}

#[derive(clap::Args)]
pub struct LsArgs {
    /// The repository (`ghcr.io/owner/name`, no tag) or an OCI layout (`oci:DIR`).
    repository: String,
}

/// The digest of what the reference names, as `crane digest` prints it: the index's for an
/// index, unless `--platform` picks one of its manifests.
pub fn digest(g: &Global, a: &DigestArgs) -> Result<Exit> {
    let image: ImageRef = a.image.parse()?;
    let platform = platform(&a.platform)?;
    let env = g.env()?;
    let digest = runtime()?.block_on(async {
        let source = Source::open(&env.mirrors.endpoint(&image))?;
        match &platform {
            None => source.top(&image).await.map(|(_, d)| d),
            Some(p) => tdg::oci::resolve::resolve(&source, &image, Some(p), &env.cache)
                .await
                .map(|r| r.manifest_digest),
        }
    })?;
    stdout::print(&format!("{digest}\n"))?;
    Ok(Exit::Passed)
}

/// Every tag of a repository, one a line, in the registry's order.
pub fn ls(g: &Global, a: &LsArgs) -> Result<Exit> {
    let repo: ImageRef = a.repository.parse()?;
    // A registry reference without a tag reads as `:latest`; what the user wrote decides.
    let named = match &repo.location {
        tdg::reference::Location::Registry { .. } => {
            let last = a.repository.rsplit('/').next().unwrap_or("");
            last.contains(':') || last.contains('@')
        }
        _ => repo.digest.is_some(),
    };
    if named {
        return Err(Error::usage(format!(
            "{}: name a repository without a tag or digest",
            a.repository
        ))
        .into());
    }
    let env = g.env()?;
    let tags =
        runtime()?.block_on(async { Source::open(&env.mirrors.endpoint(&repo))?.tags().await })?;
    let mut out = String::new();
    for t in tags {
        out += &t;
        out.push('\n');
    }
    stdout::print(&out)?;
    Ok(Exit::Passed)
}
