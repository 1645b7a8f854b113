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

use tdg::exit::Exit;
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
    #[command(
        after_help = "Examples:\n  tdg verify specs/spin-only-arm64.yaml specs/spin-tailscale-arm64.yaml\n  tdg verify specs/spin-only-arm64.yaml --image ghcr.io/urmanac/talos-cozystack-spin-only@$DIGEST --format junit --output junit.xml\n  tdg verify specs/*.yaml --partition slice:1/3 --format json --output part-1.json"
    )]
    Verify(verify::VerifyArgs),
    /// Verify specs and write their golden trees (never when CI is set).
    #[command(
        after_help = "Examples:\n  tdg bless specs/spin-only-arm64.yaml\n  tdg bless specs/spin-only-arm64.yaml --image oci:out:v1.11.5"
    )]
    Bless(verify::BlessArgs),
    /// Print the flattened image, one entry a line, sorted by path.
    #[command(
        after_help = "Examples:\n  tdg tree ghcr.io/urmanac/talos-cozystack-spin-only:v1.11.5\n  tdg tree oci:out:v1.11.5 --platform linux/arm64 | grep boot/"
    )]
    Tree(image::TreeArgs),
    /// Write the flattened image into an empty directory.
    #[command(
        after_help = "Examples:\n  tdg export ghcr.io/urmanac/talos-cozystack-spin-only:v1.11.5 assets/\n  tdg export oci-archive:image.tar ./out --platform linux/arm64"
    )]
    Export(image::ExportArgs),
    /// Print the digest a reference resolves to (`crane digest`).
    #[command(
        after_help = "Examples:\n  tdg digest ghcr.io/urmanac/talos-cozystack-spin-only:v1.11.5\n  tdg digest ghcr.io/siderolabs/installer:v1.11.5 --platform linux/arm64"
    )]
    Digest(registry::DigestArgs),
    /// Print every tag of a repository, one a line (`crane ls`).
    #[command(
        after_help = "Examples:\n  tdg ls ghcr.io/urmanac/talos-cozystack-spin-only\n  tdg ls oci:out"
    )]
    Ls(registry::LsArgs),
    /// Build the image a spec describes, from its build section.
    #[command(
        after_help = "Examples:\n  tdg build specs/spin-only-arm64.yaml --output oci:out:dev --verify\n  tdg build specs/spin-only-arm64.yaml specs/spin-tailscale-arm64.yaml --push --label org.opencontainers.image.revision=$GITHUB_SHA\n  tdg build specs/spin-only-arm64.yaml --matchbox /var/lib/matchbox"
    )]
    Build(build::BuildArgs),
    /// Fetch each asset a checksums file lists from a server and check it (the bastion check).
    #[command(
        after_help = "Examples:\n  tdg verify-served http://bastion:8080/assets --checksums assets/talos/arm64/checksums.sha256\n  tdg verify-served https://assets.example/talos --checksums checksums.sha256 --read-timeout 30"
    )]
    VerifyServed(build::ServedArgs),
    /// Show what a kernel, UKI, initramfs or extension image holds.
    #[command(
        after_help = "Examples:\n  tdg inspect kernel ghcr.io/urmanac/talos-cozystack-spin-only:v1.11.5//assets/talos/arm64/boot/vmlinuz\n  tdg inspect initramfs boot/initramfs.xz --format json\n  tdg inspect extension ghcr.io/siderolabs/tailscale:1.88.3 --strict"
    )]
    Inspect {
        #[command(subcommand)]
        what: inspect::Inspect,
    },
    /// Print the JSON Schema of spec v1 (--report: the JSON report; --release: release manifests).
    #[command(
        after_help = "Examples:\n  tdg schema > schema/spec-v1.schema.json\n  tdg schema --report"
    )]
    Schema {
        #[arg(long, conflicts_with = "release")]
        report: bool,
        /// The release manifest's schema (`tdg factory release`).
        #[arg(long)]
        release: bool,
    },
    /// Image Factory schematic IDs, offline.
    #[command(
        after_help = "Examples:\n  tdg schematic id schematics/spin-only.yaml\n  tdg schematic canonical schematics/spin-tailscale.yaml"
    )]
    Schematic {
        #[command(subcommand)]
        what: factory::SchematicCommand,
    },
    /// Image Factory asset URLs, installer references and release manifests.
    #[command(
        after_help = "Examples:\n  tdg factory urls --schematic schematics/spin-only.yaml --talos v1.11.5\n  tdg factory release --schematic schematics/spin-only.yaml --talos v1.11.5 --version v0.3.0 --channel stable --kubernetes v1.33.0 --dry-run"
    )]
    Factory {
        #[command(subcommand)]
        what: factory::FactoryCommand,
    },
    /// Write a sample asset image (OCI layout) and its spec into DIR and verify it, offline.
    #[command(after_help = "Examples:\n  tdg demo\n  tdg demo /tmp/tdg-demo")]
    Demo(demo::DemoArgs),
    /// Boot an image's kernel and initramfs (or local files) under QEMU and read the console.
    #[command(
        after_help = "Examples:\n  tdg boot oci:out:dev\n  tdg boot --kernel vmlinuz --initrd initramfs.xz --arch arm64 --console console.log\n  tdg boot --matchbox /var/lib/matchbox --timeout 10m"
    )]
    Boot(boot::BootArgs),
    /// Point a tag at the image another reference names, by digest, with every platform and
    /// referrer; release tags never move.
    #[command(
        after_help = "Examples:\n  tdg promote ghcr.io/urmanac/talos-cozystack-spin-only:v1.11.5 ghcr.io/urmanac/talos-cozystack-spin-only:stable --spec specs/spin-only-arm64.yaml --allow-move\n  tdg promote ghcr.io/a/b@$DIGEST ghcr.io/a/b:v1.0.0 --dry-run"
    )]
    Promote(promote::PromoteArgs),
    /// Audit every repository of a release: tags present, specs passing, one revision.
    #[command(
        after_help = "Examples:\n  tdg audit --fleet fleet.yaml\n  tdg audit --fleet fleet.yaml --revision $GITHUB_SHA --format junit --output fleet.xml\n  tdg audit --fleet fleet.yaml --partition slice:2/3 --format json --output fleet-2.json"
    )]
    Audit(audit::AuditArgs),
    /// Work with JSON reports: merge the parts of a partitioned run.
    #[command(
        after_help = "Examples:\n  tdg report merge fleet-1.json fleet-2.json fleet-3.json\n  tdg report merge part-*.json --format junit --output junit.xml"
    )]
    Report {
        #[command(subcommand)]
        what: report::ReportCommand,
    },
    /// Print a shell completion script: `tdg completions bash > /etc/bash_completion.d/tdg`.
    #[command(
        after_help = "Examples:\n  tdg completions bash > /etc/bash_completion.d/tdg\n  tdg completions zsh > ~/.zfunc/_tdg"
    )]
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print tdg's man page (roff): `tdg man > tdg.1; man ./tdg.1`.
    #[command(
        after_help = "Examples:\n  tdg man > tdg.1 && man ./tdg.1\n  tdg man | gzip > /usr/local/share/man/man1/tdg.1.gz"
    )]
    Man,
}

impl Cli {
    /// Runs the command; returns its exit code.
    pub fn run(self) -> tdg::error::Result<Exit> {
        let g = &self.global;
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
                Exit::Passed
            }
            Command::Schematic { what } => factory::schematic(what)?,
            Command::Factory { what } => factory::factory(what, || g.env())?,
            Command::Demo(a) => demo::demo(g, a)?,
            Command::Boot(a) => boot::boot(g, a)?,
            Command::Promote(a) => promote::promote(g, a)?,
            Command::Audit(a) => audit::audit(g, a)?,
            Command::Report { what } => report::report(g, what)?,
            Command::Completions { shell } => {
                let mut out = Vec::new();
                clap_complete::generate(
                    *shell,
                    &mut <Cli as clap::CommandFactory>::command(),
                    "tdg",
                    &mut out,
                );
                stdout::print(&String::from_utf8_lossy(&out))?;
                Exit::Passed
            }
            Command::Man => {
                let mut out = Vec::new();
                clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                    .render(&mut out)
                    .map_err(anyhow::Error::from)?;
                stdout::print(&String::from_utf8_lossy(&out))?;
                Exit::Passed
            }
        })
    }
}

impl Global {
    /// How reports look, from `-q` and `--color`.
    pub fn style(&self) -> tdg::report::Style {
        tdg::report::Style {
            quiet: self.quiet,
            colour: tdg::progress::colour(match self.color {
                ColorChoice::Auto => None,
                ColorChoice::Always => Some(true),
                ColorChoice::Never => Some(false),
            }),
        }
    }

    pub fn env(&self) -> Result<Env> {
        let from_env = std::env::var("TDG_MIRROR").ok();
        let mut mirrors =
            Mirrors::parse(from_env.as_deref(), self.mirror.iter().map(String::as_str))?;
        let defaults = tdg::oci::distribution::Timeouts::default();
        let secs = std::time::Duration::from_secs;
        mirrors.timeouts = tdg::oci::distribution::Timeouts {
            read: self.read_timeout.map_or(defaults.read, secs),
            request: self.request_timeout.map_or(defaults.request, secs),
        };
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

pub fn size_arg(s: &str) -> Result<u64, tdg::error::Reason> {
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::Cli;

    /// Every command's help, rendered as `docs/cli.md` shows it (env values hidden: the page must
    /// not depend on who renders it).
    fn help_pages(cmd: clap::Command, path: &str, out: &mut String) {
        let cmd = cmd.mut_args(|a| a.hide_env_values(true));
        let name = if path.is_empty() {
            "tdg".to_string()
        } else {
            format!("{path} {}", cmd.get_name())
        };
        let mut c = cmd.clone().bin_name(&name);
        let help = c.render_long_help().to_string();
        out.push_str(&format!(
            "### `{name}`\n\n```text\n{}\n```\n\n",
            help.trim_end()
        ));
        for sub in cmd.get_subcommands() {
            if sub.get_name() != "help" {
                help_pages(sub.clone(), &name, out);
            }
        }
    }

    /// `docs/cli.md` ends in every command's help as the binary prints it; this fails when it
    /// is stale (`TDG_UPDATE_DOCS=1 cargo test --bin tdg` rewrites it).
    #[test]
    fn docs_cli_md_holds_every_commands_current_help() {
        const MARK: &str =
            "<!-- generated by `TDG_UPDATE_DOCS=1 cargo test --bin tdg`; do not edit below -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md");
        let page = std::fs::read_to_string(path).unwrap();
        let hand = page.split(MARK).next().unwrap().trim_end();
        let mut generated = String::new();
        help_pages(Cli::command(), "", &mut generated);
        let want = format!(
            "{hand}\n\n{MARK}\n\n## Every command's help\n\n{}",
            generated.trim_end()
        );
        let want = want + "\n";
        if std::env::var_os("TDG_UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
            return;
        }
        assert!(
            page == want,
            "docs/cli.md is stale: run `TDG_UPDATE_DOCS=1 cargo test --bin tdg`"
        );
    }

    /// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens.
    fn slug(heading: &str) -> String {
        heading
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect()
    }

    /// Why the link `target` in the page at `from` does not resolve, if it does not.
    fn broken(from: &std::path::Path, target: &str) -> Option<String> {
        if target.starts_with("http://")
            || target.starts_with("https://")
            || target.starts_with("mailto:")
        {
            return None;
        }
        let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
        let page = if file.is_empty() {
            from.to_path_buf()
        } else {
            from.parent().unwrap().join(file)
        };
        if !page.exists() {
            return Some(format!("{target}: no {}", page.display()));
        }
        if anchor.is_empty() {
            return None;
        }
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .map(|l| slug(l.trim_start_matches('#')))
            .any(|s| s == anchor);
        (!found).then(|| format!("{target}: no heading #{anchor} in {}", page.display()))
    }

    /// Every relative link and anchor in the README, CONTRIBUTING.md and docs/ resolves.
    #[test]
    fn every_link_in_the_docs_resolves() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut pages = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
        for e in std::fs::read_dir(root.join("docs")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "md") {
                pages.push(p);
            }
        }
        let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
        let mut bad = Vec::new();
        let mut seen = 0;
        // Code shows what programs print, not links: fenced blocks and `spans` are left out.
        let code = regex::Regex::new(r"(?s)```.*?```|`[^`]*`").unwrap();
        for page in &pages {
            let text = std::fs::read_to_string(page).unwrap();
            let text = code.replace_all(&text, "");
            for c in link.captures_iter(&text) {
                seen += 1;
                if let Some(why) = broken(page, &c[1]) {
                    bad.push(format!("{}: {why}", page.display()));
                }
            }
        }
        assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
        assert!(seen > 10, "only {seen} links");
        // The check can fail.
        let readme = root.join("README.md");
        assert!(broken(&readme, "docs/nothing.md").is_some());
        assert!(broken(&readme, "docs/spec.md#no-such-heading").is_some());
        assert!(broken(&readme, "docs/testing.md#what-the-tests-need").is_none());
    }

    /// Every command's help ends in two or three examples, and each parses as the command line
    /// it shows (what follows a `>`, `|` or `&&` is the shell's).
    #[test]
    fn every_command_shows_examples_that_parse() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let examples: Vec<&str> = help
                .lines()
                .skip_while(|l| *l != "Examples:")
                .skip(1)
                .map(str::trim)
                .collect();
            assert!(
                (2..=3).contains(&examples.len()),
                "tdg {name}: {} examples",
                examples.len()
            );
            for e in examples {
                let line = e.split(['>', '|']).next().unwrap_or(e);
                let line = line.split("&&").next().unwrap_or(line);
                let words: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(words.get(1), Some(&name), "{e}");
                if let Err(err) = Cli::try_parse_from(&words) {
                    panic!("tdg {name}: the example `{e}` does not parse: {err}");
                }
            }
        }
    }
}
