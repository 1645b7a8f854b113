//! `tdg schematic` and `tdg factory`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;

use tdg::factory::urls::{self, Factory, Target};
use tdg::talos::schematic::Schematic;

#[derive(Subcommand)]
pub enum SchematicCommand {
    /// Print the schematic ID, as the Image Factory computes it.
    Id { file: PathBuf },
    /// Print the canonical YAML the ID is the SHA-256 of.
    Canonical { file: PathBuf },
}

#[derive(clap::Args)]
pub struct TargetArgs {
    /// The schematic file (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    pub schematic: PathBuf,
    /// Talos version, e.g. v1.11.5.
    #[arg(long, value_name = "VERSION")]
    pub talos: String,
    #[arg(long, value_name = "ARCH", default_value = "arm64")]
    pub arch: String,
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
    Schematic::load(path).map_err(|e| {
        anyhow::anyhow!(
            "{e}{}",
            e.snippet
                .as_ref()
                .map(|s| format!("\n{s}"))
                .unwrap_or_default()
        )
    })
}

pub fn schematic(cmd: &SchematicCommand) -> Result<i32> {
    match cmd {
        SchematicCommand::Id { file } => println!("{}", load(file)?.id()),
        SchematicCommand::Canonical { file } => print!("{}", load(file)?.canonical()),
    }
    Ok(0)
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
        #[arg(long, value_enum, default_value = "human")]
        format: OutputFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

pub fn factory(cmd: &FactoryCommand) -> Result<i32> {
    match cmd {
        FactoryCommand::Urls { target, format } => {
            let (_, _, _, u) = target.resolve()?;
            match format {
                OutputFormat::Human => print!("{}", urls::human(&u)),
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&u)?),
            }
            Ok(0)
        }
    }
}
