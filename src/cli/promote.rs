//! `tdg promote SRC DST`: preflight, resolve, guard, verify, copy; in that order, so nothing
//! moves before every reason to refuse has been heard.

use std::path::PathBuf;

use anyhow::Result;

use super::{outcomes, runtime, Global};
use tdg::check::golden::Mode;
use tdg::check::plan;
use tdg::error::Error;
use tdg::exit::Exit;
use tdg::promote::{self, Request};
use tdg::reference::ImageRef;

#[derive(clap::Args)]
pub struct PromoteArgs {
    /// The image to promote, by tag or digest.
    #[arg(value_name = "SRC")]
    source: String,
    /// The tag to point at SRC's digest.
    #[arg(value_name = "DST")]
    target: String,
    /// Verify SRC, pinned to the digest it resolved to, against this spec first; an image that
    /// fails it is never tagged (exit 1).
    #[arg(long, value_name = "SPEC")]
    spec: Option<PathBuf>,
    /// Print the plan and change nothing (no preflight upload either).
    #[arg(long)]
    dry_run: bool,
    /// Let a tag that names another image move. Never lifts the rule for release tags.
    #[arg(long)]
    allow_move: bool,
    /// Tags that never move, as a regex [default: the spec's build.immutable_tags, else
    /// `v?MAJOR.MINOR.PATCH[-PRE]`].
    #[arg(long, value_name = "REGEX")]
    immutable_tags: Option<String>,
}

pub fn promote(g: &Global, a: &PromoteArgs) -> Result<Exit> {
    let source: ImageRef = a.source.parse()?;
    let target: ImageRef = a.target.parse()?;
    // The spec is read before anything is fetched: a typo fails at once.
    let spec = a
        .spec
        .as_deref()
        .map(|p| tdg::spec::load_file(p, g.repo.as_deref()))
        .transpose()
        .map_err(Error::from)?;
    let immutable = match (
        &a.immutable_tags,
        spec.as_ref().and_then(|s| s.build.as_ref()),
    ) {
        (Some(r), _) => regex::Regex::new(r)
            .map_err(|e| Error::usage(format!("--immutable-tags: invalid regex: {e}")))?,
        (None, Some(b)) => b.immutable_tags.clone(),
        (None, None) => regex::Regex::new(tdg::spec::RELEASE_TAGS).expect("a valid regex"),
    };
    let req = Request {
        source,
        target,
        allow_move: a.allow_move,
        immutable,
    };
    let env = g.env()?;
    runtime()?.block_on(async {
        if !a.dry_run {
            promote::preflight(&env, &req.target).await?;
        }
        let resolved = promote::resolve(&env, &req.source).await?;
        super::stdout::println(format!("{}: {}", req.source, resolved.digest))?;
        let before = promote::guard(&env, &req, &resolved.digest).await?;
        if let Some(spec) = spec {
            let mut pinned = req.source.clone();
            pinned.digest = Some(resolved.digest.clone());
            let plans = [plan::plan(spec, Some(pinned), None)];
            let v = tdg::run::run(&env, &plans, Mode::ReadOnly, None).await?;
            let code = outcomes::present(&v, None, None, g.style())?;
            if code != Exit::Passed {
                eprintln!(
                    "tdg: not promoted: {} fails its spec; {} is unchanged",
                    resolved.digest, req.target
                );
                return Ok(code);
            }
        }
        let p = promote::promote(&env, &req, &resolved, before, a.dry_run).await?;
        for step in &p.steps {
            super::stdout::println(format!("  {step}"))?;
        }
        super::stdout::println(p.summary(&req.target))?;
        if let Some(why) = &p.unconfirmed {
            eprintln!(
                "tdg: warning: the registry accepted {} as {}, but reading it back failed: {why}",
                req.target, p.digest
            );
        }
        if a.dry_run {
            super::stdout::println("dry run: nothing changed")?;
        }
        Ok(Exit::Passed)
    })
}
