//! The shared world of the spec trials: one registry, the published-image fixtures pushed to
//! it under their GHCR names, a mirror `ghcr.io=http://127.0.0.1:PORT`, and one verify run per
//! spec whose outcomes the spec's trials read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, Context, Result};
use libtest_mimic::{Failed, Trial};

use tdg::check::SpecRun;
use tdg::check::{plan, Plan, Status};
use tdg::oci::cache::BlobCache;
use tdg::oci::mirror::Mirrors;
use tdg::pull::Env;

use crate::registry::Registry;
use crate::upstream;

pub struct World {
    pub registry: Registry,
    pub env: Env,
    /// What building each spec gave, by spec name.
    pub builds: HashMap<String, Result<tdg::build::Built, String>>,
    _tmp: tempfile::TempDir,
}

static WORLD: Mutex<Option<Arc<World>>> = Mutex::new(None);
static WORLD_ERR: OnceLock<String> = OnceLock::new();

pub fn world() -> Result<Arc<World>> {
    if let Some(e) = WORLD_ERR.get() {
        return Err(anyhow!("{e}"));
    }
    let mut guard = WORLD.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(w) = guard.as_ref() {
        return Ok(w.clone());
    }
    match build_world() {
        Ok(w) => {
            let w = Arc::new(w);
            *guard = Some(w.clone());
            Ok(w)
        }
        Err(e) => {
            let msg = format!("setting up the test registry: {e:#}");
            let _ = WORLD_ERR.set(msg.clone());
            Err(anyhow!(msg))
        }
    }
}

fn build_world() -> Result<World> {
    let registry = match std::env::var("TDG_TEST_REGISTRY") {
        Ok(addr) if !addr.is_empty() => Registry::external(&addr),
        _ => Registry::start(None)?,
    };
    let tmp = tempfile::tempdir()?;
    upstream::push_all(&registry.addr, tmp.path())?;
    let mirrors = Mirrors::parse(None, [format!("ghcr.io=http://{}", registry.addr).as_str()])?;
    let env = Env::new(mirrors, BlobCache::open(tmp.path().join("cache"))?);
    // Every spec with a build section is built from the upstream fixtures and pushed to its
    // ghcr.io name through the mirror, as a release would; the spec trials then pull it back.
    let mut builds = HashMap::new();
    let rt = tokio::runtime::Runtime::new()?;
    for path in spec_paths()? {
        let spec = tdg::spec::load_file(&path, None).map_err(|e| anyhow!("{e}"))?;
        if spec.build.is_none() {
            continue;
        }
        let opts = tdg::build::Options {
            output: None,
            push: Some(tdg::build::PushTarget::SpecDefault),
            no_verify: false,
            matchbox: None,
            epoch: 1_700_000_000,
        };
        // Published straight away: each of the spec's checks is then a trial of its own,
        // reading the image back from the registry (the CLI gates its pushes on the spec).
        let built = rt
            .block_on(async {
                let mut b = tdg::build::build(&env, &spec, &opts).await?;
                tdg::build::publish(&env, &mut b).await?;
                anyhow::Ok(b)
            })
            .map_err(|e| format!("{e:#}"));
        builds.insert(spec.name.clone(), built);
    }
    Ok(World {
        registry,
        env,
        builds,
        _tmp: tmp,
    })
}

fn spec_paths() -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo_root().join("specs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Stops the shared registry; called once the trials are done.
pub fn shutdown() {
    let w = WORLD.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(w);
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

type RunCell = Arc<OnceLock<Result<SpecRun, String>>>;

/// One trial per check of every spec in `specs/`. Planning reads YAML only.
pub fn spec_trials() -> Result<Vec<Trial>> {
    let mut trials = Vec::new();
    let mut referenced = Vec::new();
    for path in spec_paths()? {
        let spec = tdg::spec::load_file(&path, None).map_err(|e| anyhow!("{e}"))?;
        if let Some(t) = &spec.expect.tree {
            referenced.push(t.golden.clone());
        }
        referenced.extend(spec.expect.files.iter().filter_map(|f| {
            f.report
                .as_ref()?
                .golden
                .as_ref()
                .map(|g| g.file.path.clone())
        }));
        if spec.build.is_some() {
            let name = spec.name.clone();
            trials.push(
                Trial::test(format!("{name}::build"), move || build_result(&name))
                    .with_kind("spec"),
            );
        }
        let plan = Arc::new(plan::plan(spec, None, None));
        let cell: RunCell = Arc::new(OnceLock::new());
        for check in &plan.checks {
            let (plan, cell, id) = (plan.clone(), cell.clone(), check.id.clone());
            let name = format!("{}::{}", plan.spec.name, check.id);
            trials.push(Trial::test(name, move || run_check(&plan, &cell, &id)).with_kind("spec"));
        }
    }
    let referenced = referenced.clone();
    trials.push(
        Trial::test("goldens::every_golden_is_referenced", move || {
            unreferenced_goldens(&repo_root().join("golden"), &referenced)
        })
        .with_kind("spec"),
    );
    Ok(trials)
}

/// A golden no spec names is dead weight that hides nothing; it is reported as a failure.
pub fn unreferenced_goldens(dir: &Path, referenced: &[PathBuf]) -> Result<(), Failed> {
    let known: Vec<PathBuf> = referenced
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    let mut stray = Vec::new();
    for e in std::fs::read_dir(dir)
        .map_err(|e| Failed::from(e.to_string()))?
        .flatten()
    {
        let p = e.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "README.md" || name.ends_with(".new") {
            continue;
        }
        if !known.contains(&p.canonicalize().unwrap_or(p.clone())) {
            stray.push(name);
        }
    }
    if stray.is_empty() {
        Ok(())
    } else {
        Err(Failed::from(format!(
            "goldens no spec references: {}",
            stray.join(", ")
        )))
    }
}

fn build_result(name: &str) -> Result<(), Failed> {
    let w = world().map_err(|e| Failed::from(format!("{e:#}")))?;
    match w.builds.get(name) {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(Failed::from(e.as_str())),
        None => Err(Failed::from("not built")),
    }
}

fn run_check(plan: &Plan, cell: &RunCell, id: &str) -> Result<(), Failed> {
    let run = cell.get_or_init(|| {
        let w = world().map_err(|e| format!("{e:#}"))?;
        let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        let mut runs = [rt.block_on(tdg::run::pipeline::run(&w.env, plan))];
        // TDG_BLESS=1 cargo test writes goldens; CI never writes; otherwise a `.new` to review.
        for note in
            tdg::check::record::settle_goldens(&mut runs, tdg::check::golden::Mode::from_env())
                .map_err(|e| format!("{e:#}"))?
        {
            eprintln!("{note}");
        }
        let [run] = runs;
        Ok(run)
    });
    let run = run.as_ref().map_err(|e| Failed::from(e.as_str()))?;
    let o = run
        .outcomes
        .iter()
        .find(|o| o.check == id)
        .ok_or_else(|| Failed::from(format!("no outcome for {id}")))?;
    match o.status {
        Status::Pass => Ok(()),
        s => Err(Failed::from(format!("{}: {}", s.word(), o.message))),
    }
}

/// A copy of a real spec in `dir` without its goldens (`tree:` and the report's `golden:` and
/// `redact:`) and without its boot (a hand-made fixture's kernel is a stand-in that boots
/// nothing), for trials that check a hand-made fixture rather than the build's output.
pub fn spec_without_goldens(variant: &str, dir: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(repo_root().join(format!("specs/{variant}-arm64.yaml")))?;
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim_start();
        if line.starts_with("  tree:") || line.starts_with("  boot:") {
            skipping = true;
            continue;
        }
        if skipping && (line.starts_with("    ") || t.is_empty()) {
            continue;
        }
        skipping = false;
        if t.starts_with("golden:")
            || t.starts_with("redact:")
            || t.starts_with("# The whole report")
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    write_spec(dir, &format!("{variant}-arm64"), &out)
}

pub use crate::fixtures::spec_without_boot;

/// Reads a spec from text written by a test.
pub fn write_spec(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}
