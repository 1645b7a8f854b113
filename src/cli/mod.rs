//! The command line's glue: one module per command, each parsing its arguments, calling one
//! library function and printing what it returns. `main.rs` only parses and exits.

pub mod audit;
pub mod boot;
pub mod build;
pub mod demo;
pub mod factory;
pub mod image;
pub mod inspect;
pub mod outcomes;
pub mod promote;
pub mod registry;
pub mod report;
pub mod stdout;
pub mod verify;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use tdg::oci::cache::BlobCache;
use tdg::oci::mirror::Mirrors;
use tdg::oci::platform::Platform;
use tdg::pull::Env;

#[derive(Parser)]
#[command(
    name = "tdg",
    version,
    about = "Verify Talos boot-asset images against declarative specs"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, listed under their own heading in every command's help.
#[derive(clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Rewrite a registry host: HOST=http://H:P (plain HTTP), HOST=https://H[/prefix], or
    /// HOST=oci:/dir (OCI layouts under dir/<repository>). Repeatable; adds to TDG_MIRROR.
    #[arg(long, global = true, value_name = "HOST=URL")]
    mirror: Vec<String>,
    /// Blob cache directory.
    #[arg(long, global = true, env = "TDG_CACHE", value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Cap on the decompressed bytes of one initramfs segment (a bomb ends in an error).
    #[arg(long, global = true, env = "TDG_MAX_DECOMPRESSED", value_name = "SIZE", default_value = "4GiB", value_parser = size_arg)]
    max_decompressed: u64,
    /// Seconds a registry may send nothing before a request fails.
    #[arg(long, global = true, env = "TDG_READ_TIMEOUT", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    read_timeout: Option<u64>,
    /// Seconds one request for a manifest or token may take in all; a blob gets this plus
    /// a second per 256 KiB of its size.
    #[arg(long, global = true, env = "TDG_REQUEST_TIMEOUT", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout: Option<u64>,
    /// The Sigstore trusted_root.json signatures are judged against (default: the embedded
    /// public-good production root).
    #[arg(long, global = true, env = "TDG_TRUSTED_ROOT", value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// Read and hash every layer again instead of using cached tree indexes (evidence runs
    /// always do).
    #[arg(long, global = true, env = "TDG_VERIFY_CACHE")]
    verify_cache: bool,
    /// Do not boot specs' `expect.boot` under QEMU; those checks are reported skipped.
    #[arg(long, global = true)]
    no_boot: bool,
    /// Cap on the cpio entries of one initramfs.
    #[arg(long, global = true, env = "TDG_MAX_ENTRIES", value_name = "N", default_value_t = tdg::limits::DEFAULT_MAX_INITRAMFS_ENTRIES)]
    max_entries: u64,
    /// The directory specs' goldens must stay inside (default: the one holding `specs/`, or
    /// the spec's own directory).
    #[arg(long, global = true, env = "TDG_REPO", value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Human reports list only failures and errors, then the summary.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Colour in human output: auto (a terminal, without NO_COLOR), always or never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    color: ColorChoice,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
pub enum Command {
    /// Verify images against specs.
    Verify(verify::VerifyArgs),
    /// Verify specs and write their golden trees (never when CI is set).
    Bless(verify::BlessArgs),
    /// Print the flattened image, one entry a line, sorted by path.
    Tree(image::TreeArgs),
    /// Write the flattened image into an empty directory.
    Export(image::ExportArgs),
    /// Print the digest a reference resolves to (`crane digest`).
    Digest(registry::DigestArgs),
    /// Print every tag of a repository, one a line (`crane ls`).
    Ls(registry::LsArgs),
    /// Build the image a spec describes, from its build section.
    Build(build::BuildArgs),
    /// Fetch each asset a checksums file lists from a server and check it (the bastion check).
    VerifyServed(build::ServedArgs),
    /// Show what a kernel, UKI, initramfs or extension image holds.
    Inspect {
        #[command(subcommand)]
        what: inspect::Inspect,
    },
    /// Print the JSON Schema of spec v1 (--report: the JSON report; --release: release manifests).
    Schema {
        #[arg(long, conflicts_with = "release")]
        report: bool,
        /// The release manifest's schema (`tdg factory release`).
        #[arg(long)]
        release: bool,
    },
    /// Image Factory schematic IDs, offline.
    Schematic {
        #[command(subcommand)]
        what: factory::SchematicCommand,
    },
    /// Image Factory asset URLs, installer references and release manifests.
    Factory {
        #[command(subcommand)]
        what: factory::FactoryCommand,
    },
    /// Write a sample asset image (OCI layout) and its spec into DIR and verify it, offline.
    Demo(demo::DemoArgs),
    /// Boot an image's kernel and initramfs (or local files) under QEMU and read the console.
    Boot(boot::BootArgs),
    /// Point a tag at the image another reference names, by digest, with every platform and
    /// referrer; release tags never move.
    Promote(promote::PromoteArgs),
    /// Audit every repository of a release: tags present, specs passing, one revision.
    Audit(audit::AuditArgs),
    /// Work with JSON reports: merge the parts of a partitioned run.
    Report {
        #[command(subcommand)]
        what: report::ReportCommand,
    },
    /// Print a shell completion script: `tdg completions bash > /etc/bash_completion.d/tdg`.
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print tdg's man page (roff): `tdg man > tdg.1; man ./tdg.1`.
    Man,
}

impl Cli {
    /// Runs the command; returns its exit code.
    pub fn run(self) -> tdg::error::Result<u8> {
        let g = &self.global;
        tdg::report::set_quiet(g.quiet);
        tdg::progress::set_colour(match g.color {
            ColorChoice::Auto => None,
            ColorChoice::Always => Some(true),
            ColorChoice::Never => Some(false),
        });
        if let Some(r) = &g.repo {
            // Spec loading reads TDG_REPO (`located::repo_root`); set before any thread starts.
            std::env::set_var("TDG_REPO", r);
        }
        Ok(match &self.command {
            Command::Verify(a) => verify::verify(g, a)?,
            Command::Bless(a) => verify::bless(g, a)?,
            Command::Tree(a) => image::tree(g, a)?,
            Command::Export(a) => image::export(g, a)?,
            Command::Digest(a) => registry::digest(g, a)?,
            Command::Ls(a) => registry::ls(g, a)?,
            Command::Build(a) => build::build(g, a)?,
            Command::VerifyServed(a) => build::served(a)?,
            Command::Inspect { what } => inspect::inspect(g, what)?,
            Command::Schema { report, release } => {
                stdout::print(&match (report, release) {
                    (_, true) => tdg::factory::release::SCHEMA.to_string(),
                    (true, _) => tdg::report::json_schema(),
                    _ => tdg::spec::json_schema(),
                })?;
                0
            }
            Command::Schematic { what } => factory::schematic(what)?,
            Command::Factory { what } => factory::factory(what, || g.env())?,
            Command::Demo(a) => demo::demo(g, a)?,
            Command::Boot(a) => boot::boot(g, a)?,
            Command::Promote(a) => promote::promote(g, a)?,
            Command::Audit(a) => audit::audit(g, a)?,
            Command::Report { what } => report::report(what)?,
            Command::Completions { shell } => {
                let mut out = Vec::new();
                clap_complete::generate(
                    *shell,
                    &mut <Cli as clap::CommandFactory>::command(),
                    "tdg",
                    &mut out,
                );
                stdout::print(&String::from_utf8_lossy(&out))?;
                0
            }
            Command::Man => {
                let mut out = Vec::new();
                clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                    .render(&mut out)
                    .map_err(anyhow::Error::from)?;
                stdout::print(&String::from_utf8_lossy(&out))?;
                0
            }
        })
    }
}

impl Global {
    pub fn env(&self) -> Result<Env> {
        let secs = |s: Option<u64>| s.map(std::time::Duration::from_secs);
        tdg::oci::distribution::set_timeouts(secs(self.read_timeout), secs(self.request_timeout));
        let from_env = std::env::var("TDG_MIRROR").ok();
        let mirrors = Mirrors::parse(from_env.as_deref(), self.mirror.iter().map(String::as_str))?;
        let root = self.cache.clone().unwrap_or_else(BlobCache::default_root);
        let mut env = Env::new(mirrors, BlobCache::open(root)?);
        env.boot = !self.no_boot;
        env.verify_cache = self.verify_cache;
        env.trusted_root = self.trusted_root.clone();
        env.limits = tdg::talos::initramfs::Limits {
            max_segment_bytes: self.max_decompressed,
            max_entries: self.max_entries,
        };
        Ok(env)
    }
}

pub fn size_arg(s: &str) -> Result<u64, String> {
    tdg::spec::size::parse(s)
}

pub fn platform(p: &Option<String>) -> Result<Option<Platform>> {
    Ok(p.as_deref().map(str::parse).transpose()?)
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
