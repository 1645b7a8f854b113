//! The `tdg` command line: parse, call the library, print. Exit codes: 0 every check passed,
//! 1 a check failed, 2 the run could not be evaluated (bad spec, registry fault, integrity).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use tdg::check::plan;
use tdg::layers::flatten::Wanted;
use tdg::oci::cache::BlobCache;
use tdg::oci::mirror::Mirrors;
use tdg::oci::platform::Platform;
use tdg::pull::{self, Env};
use tdg::reference::ImageRef;
use tdg::report::{self, Format};
use tdg::verify;

#[derive(Parser)]
#[command(
    name = "tdg",
    version,
    about = "Verify Talos boot-asset images against declarative specs"
)]
struct Cli {
    /// Rewrite a registry host: HOST=http://H:P (plain HTTP), HOST=https://H[/prefix], or
    /// HOST=oci:/dir (OCI layouts under dir/<repository>). Repeatable; adds to TDG_MIRROR.
    #[arg(long, global = true, value_name = "HOST=URL")]
    mirror: Vec<String>,
    /// Blob cache directory.
    #[arg(long, global = true, env = "TDG_CACHE", value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Cap on the decompressed bytes of one initramfs segment (a bomb ends in an error).
    #[arg(long, global = true, env = "TDG_MAX_DECOMPRESSED", value_name = "SIZE", default_value_t = tdg::limits::DEFAULT_MAX_SEGMENT_BYTES, value_parser = size_arg)]
    max_decompressed: u64,
    /// Cap on the cpio entries of one initramfs.
    #[arg(
        long,
        global = true,
        env = "TDG_MAX_ENTRIES",
        value_name = "N",
        default_value_t = tdg::limits::DEFAULT_MAX_INITRAMFS_ENTRIES
    )]
    max_entries: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify images against specs.
    Verify {
        #[arg(required_unless_present = "from_evidence", value_name = "SPEC")]
        specs: Vec<PathBuf>,
        /// Check this image instead of the one each spec names (e.g. a pinned digest).
        #[arg(long, value_name = "REF")]
        image: Option<String>,
        /// Platform to pick from an index, overriding the spec's.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Write the report here instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Write an auditor's evidence bundle per spec into DIR/<spec>/.
        #[arg(long, value_name = "DIR")]
        evidence: Option<PathBuf>,
        /// Re-check the verdicts recorded in evidence bundles, offline, instead of pulling.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["image", "evidence"])]
        from_evidence: Option<PathBuf>,
    },
    /// Verify specs and write their golden trees (never when CI is set).
    Bless {
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<PathBuf>,
        #[arg(long, value_name = "REF")]
        image: Option<String>,
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Print the flattened image, one entry a line, sorted by path.
    Tree {
        image: String,
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Write the flattened image into an empty directory.
    Export {
        image: String,
        dir: PathBuf,
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Build the image a spec describes, from its build section.
    Build {
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<PathBuf>,
        /// Write the image to an OCI layout (created, or added to).
        #[arg(long, value_name = "oci:DIR[:TAG]")]
        output: Option<String>,
        /// Push to the spec's build.push, or to REF.
        #[arg(long, value_name = "REF", num_args = 0..=1, default_missing_value = "")]
        push: Option<String>,
        /// Also write the assets and a matchbox profile and group here.
        #[arg(long, value_name = "DIR")]
        matchbox: Option<PathBuf>,
        /// After building, verify the result against the same spec.
        #[arg(long)]
        verify: bool,
        /// Set a label, over the spec's (e.g. org.opencontainers.image.revision=$GITHUB_SHA).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Set a build-report fact, over the spec's.
        #[arg(long = "report", value_name = "KEY=VALUE")]
        report_facts: Vec<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: InspectFormat,
    },
    /// Fetch each asset a checksums file lists from a server and check it (the bastion check).
    VerifyServed {
        /// Base URL the assets are served under, e.g. http://bastion:8080/assets
        url: String,
        #[arg(long, value_name = "FILE")]
        checksums: PathBuf,
    },
    /// Show what a kernel, UKI, initramfs or extension image holds.
    Inspect {
        #[command(subcommand)]
        what: Inspect,
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
        what: cli::factory::SchematicCommand,
    },
    /// Image Factory asset URLs, installer references and release manifests.
    Factory {
        #[command(subcommand)]
        what: cli::factory::FactoryCommand,
    },
    /// Write a sample asset image (OCI layout) and its spec into DIR and verify it, offline.
    Demo {
        #[arg(default_value = "tdg-demo")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum Inspect {
    /// A kernel: arm64 Image, bzImage, EFI-stub PE or UKI.
    Kernel(InspectFile),
    /// An initramfs: its segments, entries and extensions.
    Initramfs(InspectFile),
    /// A UKI: its sections, embedded kernel, cmdline and os-release.
    Uki(InspectFile),
    /// A system extension image: manifest and rootfs, and whether Talos accepts them.
    Extension {
        image: String,
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: InspectFormat,
    },
}

#[derive(clap::Args)]
struct InspectFile {
    /// A local file, or REF//path/in/image.
    target: String,
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    format: InspectFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InspectFormat {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("tdg: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn env(cli: &Cli) -> Result<Env> {
    let from_env = std::env::var("TDG_MIRROR").ok();
    let mirrors = Mirrors::parse(from_env.as_deref(), cli.mirror.iter().map(String::as_str))?;
    let root = cli.cache.clone().unwrap_or_else(BlobCache::default_root);
    let mut env = Env::new(mirrors, BlobCache::open(root)?);
    env.limits = limits(cli);
    Ok(env)
}

fn limits(cli: &Cli) -> tdg::talos::initramfs::Limits {
    tdg::talos::initramfs::Limits {
        max_segment_bytes: cli.max_decompressed,
        max_entries: cli.max_entries,
    }
}

fn size_arg(s: &str) -> Result<u64, String> {
    tdg::spec::size::parse(s)
}

fn platform(p: &Option<String>) -> Result<Option<Platform>> {
    Ok(p.as_deref().map(str::parse).transpose()?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn inspect(cli: &Cli, what: &Inspect) -> Result<i32> {
    use tdg::inspect as i;
    let rt = runtime()?;
    let env = env(cli)?;
    let print = |format: InspectFormat, json: serde_json::Value, human: String| match format {
        InspectFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        ),
        InspectFormat::Human => print!("{human}"),
    };
    match what {
        Inspect::Kernel(f) | Inspect::Uki(f) | Inspect::Initramfs(f) => {
            let target = i::parse_target(&f.target)?;
            let opened = rt.block_on(i::open(&env, &target, platform(&f.platform)?.as_ref()))?;
            if let Inspect::Initramfs(_) = what {
                let info =
                    i::initramfs(&opened.path, env.limits).with_context(|| f.target.clone())?;
                print(
                    f.format,
                    serde_json::to_value(&info)?,
                    i::human_initramfs(&info),
                );
                return Ok(0);
            }
            let k = i::kernel(&opened.path).with_context(|| f.target.clone())?;
            if matches!(what, Inspect::Uki(_)) && k.uki.is_none() {
                anyhow::bail!(
                    "{}: not a UKI (an {} with no .linux section)",
                    f.target,
                    k.format.describe()
                );
            }
            print(f.format, serde_json::to_value(&k)?, i::human_kernel(&k));
            Ok(0)
        }
        Inspect::Extension {
            image,
            platform: p,
            format,
        } => {
            let image: ImageRef = image.parse()?;
            let x = rt.block_on(i::extension(&env, &image, platform(p)?.as_ref()))?;
            print(*format, serde_json::to_value(&x)?, i::human_extension(&x));
            Ok(if x.problems.is_empty() { 0 } else { 1 })
        }
    }
}

/// `KEY=VALUE` arguments.
fn pairs(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !v.contains('\n') => {
                Ok((k.trim().to_string(), v.to_string()))
            }
            _ => anyhow::bail!("'{a}' is not KEY=VALUE"),
        })
        .collect()
}

type Overrides = (Vec<(String, String)>, Vec<(String, String)>);

#[allow(clippy::too_many_arguments)]
fn build(
    cli: &Cli,
    specs: &[PathBuf],
    output: &Option<String>,
    push: &Option<String>,
    matchbox: &Option<PathBuf>,
    then_verify: bool,
    format: InspectFormat,
    overrides: &Overrides,
) -> Result<i32> {
    let output = match output {
        Some(o) => {
            let r: ImageRef = o.parse()?;
            match r.location {
                tdg::reference::Location::Layout { dir } => Some((dir, r.tag)),
                _ => anyhow::bail!("--output takes oci:DIR[:TAG], not {o}"),
            }
        }
        None => None,
    };
    let push = match push.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(r) => Some(Some(r.parse()?)),
    };
    let opts = tdg::build::Options {
        output,
        push,
        matchbox: matchbox.clone(),
        epoch: tdg::epoch::source_date_epoch()?,
    };
    let env = env(cli)?;
    let rt = runtime()?;
    let mut code = 0;
    for path in specs {
        let mut spec = load_spec(path)?;
        if let Some(b) = spec.build.as_mut() {
            b.labels.extend(overrides.0.iter().cloned());
            b.report.extend(overrides.1.iter().cloned());
        }
        let built = rt.block_on(tdg::build::build(&env, &spec, &opts))?;
        match format {
            InspectFormat::Json => println!("{}", serde_json::to_string_pretty(&built)?),
            InspectFormat::Human => eprint!("{}", tdg::build::human(&built)),
        }
        if then_verify {
            let image: ImageRef = match &built.pushed {
                Some(p) => p.parse()?,
                None => format!("oci:{}@{}", built.layout, built.digest).parse()?,
            };
            let plan = plan::plan(spec, Some(image), None);
            let run = rt.block_on(verify::run(&env, &plan));
            let runs = [run];
            if format == InspectFormat::Human {
                print!("{}", report::human(&runs));
            }
            code = code.max(verify::exit_code(&runs));
        }
    }
    Ok(code)
}

fn load_spec(path: &std::path::Path) -> Result<tdg::spec::Spec> {
    tdg::spec::load_file(path).map_err(|e| e.with_snippet())
}

/// Verifies specs and settles their goldens by `mode`, telling the user what was written.
fn verify_specs(
    cli: &Cli,
    specs: &[PathBuf],
    image: &Option<String>,
    p: &Option<String>,
    mode: tdg::check::golden::Mode,
    evidence: Option<&std::path::Path>,
) -> Result<Vec<verify::SpecRun>> {
    let image: Option<ImageRef> = image.as_deref().map(str::parse).transpose()?;
    let platform = platform(p)?;
    let mut plans = Vec::new();
    for path in specs {
        plans.push(plan::plan(
            load_spec(path)?,
            image.clone(),
            platform.clone(),
        ));
    }
    let env = env(cli)?;
    let rt = runtime()?;
    let mut runs = Vec::new();
    for plan in &plans {
        let (run, pulled) = rt.block_on(verify::run_keeping(&env, plan));
        if let (Some(dir), Some(pulled)) = (evidence, &pulled) {
            let bundle = dir.join(&plan.spec.name);
            tdg::evidence::write(&bundle, plan, &run, pulled)?;
            eprintln!(
                "tdg: evidence for {} in {}",
                plan.spec.name,
                bundle.display()
            );
        }
        runs.push(run);
    }
    for note in verify::settle_goldens(&mut runs, mode)? {
        eprintln!("tdg: {note}");
    }
    Ok(runs)
}

/// `verify --from-evidence`: the recorded verdicts re-checked offline; a verdict that comes
/// out differently is exit 2, whatever the checks say.
fn recheck_evidence(
    cli: &Cli,
    dir: &std::path::Path,
    format: Format,
    output: &Option<PathBuf>,
) -> Result<i32> {
    let env = env(cli)?;
    let rt = runtime()?;
    let mut runs = Vec::new();
    let mut differs = Vec::new();
    for bundle in tdg::evidence::bundles(dir)? {
        let (run, d) = rt.block_on(tdg::evidence::recheck(&env, &bundle))?;
        differs.extend(d.into_iter().map(|m| format!("{}: {m}", run.spec)));
        runs.push(run);
    }
    let text = report::render(format, &runs)?;
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    if differs.is_empty() {
        eprintln!("tdg: the re-checked verdict matches the evidence");
        Ok(verify::exit_code(&runs))
    } else {
        for d in &differs {
            eprintln!("tdg: verdict differs: {d}");
        }
        Ok(2)
    }
}

/// Resolves, pulls and flattens one image for `tree` and `export`.
fn pull(
    cli: &Cli,
    image: &str,
    p: &Option<String>,
    wanted: Wanted,
) -> Result<(ImageRef, pull::Pulled)> {
    let image: ImageRef = image.parse()?;
    let env = env(cli)?;
    let pulled = runtime()?.block_on(pull::pull(&env, &image, platform(p)?.as_ref(), wanted))?;
    Ok((image, pulled))
}

fn run(cli: Cli) -> Result<i32> {
    match &cli.command {
        Command::Inspect { what } => inspect(&cli, what),
        Command::Build {
            specs,
            output,
            push,
            matchbox,
            verify: then_verify,
            format,
            labels,
            report_facts,
        } => {
            let overrides = (pairs(labels)?, pairs(report_facts)?);
            build(
                &cli,
                specs,
                output,
                push,
                matchbox,
                *then_verify,
                *format,
                &overrides,
            )
        }
        Command::VerifyServed { url, checksums } => {
            let text = std::fs::read_to_string(checksums)
                .with_context(|| format!("reading {}", checksums.display()))?;
            let report = runtime()?.block_on(tdg::build::served::verify(url, &text))?;
            print!("{}", report.human());
            Ok(report.exit_code())
        }
        Command::Schema { report, release } => {
            if *release {
                print!("{}", tdg::factory::release::SCHEMA);
            } else if *report {
                print!("{}", report::json_schema());
            } else {
                print!("{}", tdg::spec::json_schema());
            }
            Ok(0)
        }
        Command::Verify {
            specs,
            image,
            platform: p,
            format,
            output,
            evidence,
            from_evidence,
        } => {
            let runs = match from_evidence {
                Some(dir) => return recheck_evidence(&cli, dir, *format, output),
                None => verify_specs(
                    &cli,
                    specs,
                    image,
                    p,
                    tdg::check::golden::Mode::from_env(),
                    evidence.as_deref(),
                )?,
            };
            let text = report::render(*format, &runs)?;
            match output {
                Some(path) => std::fs::write(path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(verify::exit_code(&runs))
        }
        Command::Bless {
            specs,
            image,
            platform: p,
        } => {
            if tdg::check::golden::Mode::from_env() == tdg::check::golden::Mode::ReadOnly {
                anyhow::bail!("CI is set: goldens are never written in CI; bless them locally and commit them");
            }
            let runs = verify_specs(&cli, specs, image, p, tdg::check::golden::Mode::Bless, None)?;
            print!("{}", report::human(&runs));
            Ok(verify::exit_code(&runs))
        }
        Command::Tree { image, platform: p } => {
            let (_, pulled) = pull(&cli, image, p, Wanted::Nothing)?;
            print!("{}", pulled.flat.tree.listing());
            Ok(0)
        }
        Command::Export {
            image,
            dir,
            platform: p,
        } => {
            let (image, pulled) = pull(&cli, image, p, Wanted::Everything)?;
            let notes = tdg::layers::export::write_tree(&pulled.flat, &pulled.spool, dir)?;
            for d in &notes.skipped_devices {
                eprintln!("tdg: warning: device node {d} not created (needs privilege)");
            }
            eprintln!(
                "exported {} entries of {}@{} to {}",
                pulled.flat.tree.entries.len(),
                image,
                pulled.resolved.digest,
                dir.display()
            );
            Ok(0)
        }
        Command::Schematic { what } => cli::factory::schematic(what),
        Command::Factory { what } => cli::factory::factory(what, || env(&cli)),
        Command::Demo { dir } => {
            let spec_path = tdg::demo::write(dir)?;
            eprintln!(
                "wrote {} and an OCI layout beside it; verifying:",
                spec_path.display()
            );
            let spec = tdg::spec::load_file(&spec_path)?;
            let plan = plan::plan(spec, None, None);
            let env = env(&cli)?;
            let run = runtime()?.block_on(verify::run(&env, &plan));
            let runs = [run];
            print!("{}", report::human(&runs));
            Ok(verify::exit_code(&runs))
        }
    }
}
