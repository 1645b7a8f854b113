//! `tdg schematic` and `tdg factory`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;

use tdg::exit::Exit;
use tdg::factory::release::{self, Request};
use tdg::factory::schematic::Schematic;
use tdg::factory::urls::{self, Factory, Target};
use tdg::pull::Env;

#[derive(Subcommand)]
pub enum SchematicCommand {
    /// Print the schematic ID, as the Image Factory computes it.
    Id {
        /// A schematic, YAML or JSON.
        file: PathBuf,
    },
    /// Print the canonical YAML the ID is the SHA-256 of.
    Canonical {
        /// A schematic, YAML or JSON.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct TargetArgs {
    /// The schematic file (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    pub schematic: PathBuf,
    /// Talos version, e.g. v1.11.5.
    #[arg(long, value_name = "VERSION")]
    pub talos: String,
    /// amd64 or arm64.
    #[arg(long, value_name = "ARCH", default_value = "arm64")]
    pub arch: String,
    /// The Talos platform: metal, aws, nocloud, ...
    #[arg(long, value_name = "PLATFORM", default_value = "metal")]
    pub platform: String,
    /// The Secure Boot assets and installer.
    #[arg(long)]
    pub secureboot: bool,
    /// The Image Factory to name (and, for release, to talk to).
    #[arg(long, value_name = "URL", env = "TDG_FACTORY", default_value = urls::DEFAULT_FACTORY)]
    pub factory: String,
}

pub fn load(path: &Path) -> Result<Schematic> {
    let s = Schematic::load(path).map_err(|e| e.with_snippet())?;
    for w in s.warnings() {
        eprintln!("tdg: warning: {}: {w}", path.display());
    }
    Ok(s)
}

pub fn schematic(cmd: &SchematicCommand) -> Result<Exit> {
    match cmd {
        SchematicCommand::Id { file } => super::stdout::println(load(file)?.id())?,
        SchematicCommand::Canonical { file } => super::stdout::print(&load(file)?.canonical())?,
    }
    Ok(Exit::Passed)
}

impl TargetArgs {
    pub fn resolve(&self) -> Result<(Schematic, Factory, Target, urls::Urls)> {
        let s = load(&self.schematic)?;
        let factory = Factory::parse(&self.factory)?;
        let target = Target::new(&self.talos, &self.arch, &self.platform, self.secureboot)?;
        let u = urls::render(&factory, &s.id(), &target).with_context(|| {
            format!(
                "rendering the factory URLs for {}",
                self.schematic.display()
            )
        })?;
        Ok((s, factory, target, u))
    }
}

#[derive(Subcommand)]
pub enum FactoryCommand {
    /// Print the asset URLs and installer references for a schematic and Talos version.
    Urls {
        #[command(flatten)]
        target: TargetArgs,
        /// human or json.
        #[arg(long, value_enum, default_value = "human")]
        format: OutputFormat,
    },
    /// Write a release manifest pinning the ISO (SHA-256) and installer (digest) for a schematic.
    Release(ReleaseArgs),
}

#[derive(clap::Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The release's version, e.g. v0.3.0.
    #[arg(long = "version", value_name = "X")]
    pub release_version: String,
    /// The release channel, e.g. stable.
    #[arg(long, value_name = "C")]
    pub channel: String,
    /// The Kubernetes version the release runs.
    #[arg(long, value_name = "VERSION")]
    pub kubernetes: String,
    /// The app version recorded (default: --version).
    #[arg(long, value_name = "VERSION")]
    pub app_version: Option<String>,
    /// The values profile the app is deployed with.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub values_profile: String,
    /// Render the manifest (URLs, installer reference) without asking the factory.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the ISO in DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "dry_run")]
    pub download: Option<PathBuf>,
    /// Write the manifest here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

pub fn factory(cmd: &FactoryCommand, env: impl FnOnce() -> Result<Env>) -> Result<Exit> {
    match cmd {
        FactoryCommand::Urls { target, format } => {
            let (_, _, _, u) = target.resolve()?;
            match format {
                OutputFormat::Human => super::stdout::print(&urls::human(&u))?,
                OutputFormat::Json => super::stdout::println(serde_json::to_string_pretty(&u)?)?,
            }
            Ok(Exit::Passed)
        }
        FactoryCommand::Release(r) => {
            let t = &r.target;
            let req = Request {
                schematic: t.schematic.clone(),
                factory: Factory::parse(&t.factory)?,
                target: Target::new(&t.talos, &t.arch, &t.platform, t.secureboot)?,
                release_version: r.release_version.clone(),
                channel: r.channel.clone(),
                kubernetes: r.kubernetes.clone(),
                app_version: r.app_version.clone().unwrap_or(r.release_version.clone()),
                values_profile: r.values_profile.clone(),
                dry_run: r.dry_run,
                download: r.download.clone(),
            };
            let env = env()?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let out = rt.block_on(release::release(&env, &req))?;
            for n in &out.notes {
                eprintln!("{n}");
            }
            match &r.output {
                Some(path) => {
                    release::write(&out.manifest, path)?;
                    eprintln!(
                        "wrote {} (schematic {}, installer {})",
                        path.display(),
                        out.urls.schematic_id,
                        out.manifest.os.installer.image
                    );
                }
                None => super::stdout::println(serde_json::to_string_pretty(&out.manifest)?)?,
            }
            Ok(Exit::Passed)
        }
    }
}
