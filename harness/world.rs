//! The shared world of the spec trials: one registry, the published-image fixtures pushed to
//! it under their GHCR names, a mirror `ghcr.io=http://127.0.0.1:PORT`, and one verify run per
//! spec whose outcomes the spec's trials read.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, Context, Result};
use libtest_mimic::{Failed, Trial};

use tdg::check::{plan, Plan, Status};
use tdg::oci::cache::BlobCache;
use tdg::oci::mirror::Mirrors;
use tdg::verify::{Env, SpecRun};

use crate::fixtures;
use crate::registry::Registry;

pub struct World {
    pub registry: Registry,
    pub env: Env,
    _tmp: tempfile::TempDir,
}

static WORLD: Mutex<Option<Arc<World>>> = Mutex::new(None);
static WORLD_ERR: OnceLock<String> = OnceLock::new();

/// The GHCR images the specs name, and the fixture variant that stands in for each.
const PUBLISHED: &[(&str, &str)] = &[
    ("urmanac/talos-cozystack-spin-only:v1.11.5", "spin-only"),
    (
        "urmanac/talos-cozystack-spin-tailscale:v1.11.5",
        "spin-tailscale",
    ),
];

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
    for (i, (name, variant)) in PUBLISHED.iter().enumerate() {
        let layout = tmp.path().join(variant);
        tdg::demo::write_asset_layout(&layout, variant, "v1.11.5", 1 << 20)?;
        let target = format!("{}/{name}", registry.addr);
        // One variant goes up through skopeo, the other through tdg's own push.
        if i % 2 == 0 {
            fixtures::push_with_skopeo(&layout, "v1.11.5", &target)?;
        } else {
            fixtures::push_with_tdg(&layout, "v1.11.5", &target)?;
        }
    }
    let mirrors = Mirrors::parse(None, [format!("ghcr.io=http://{}", registry.addr).as_str()])?;
    let env = Env::new(mirrors, BlobCache::open(tmp.path().join("cache"))?);
    Ok(World {
        registry,
        env,
        _tmp: tmp,
    })
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
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo_root().join("specs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    for path in paths {
        let spec = tdg::spec::load_file(&path).map_err(|e| anyhow!("{e}"))?;
        let plan = Arc::new(plan::plan(spec, None, None));
        let cell: RunCell = Arc::new(OnceLock::new());
        for check in &plan.checks {
            let (plan, cell, id) = (plan.clone(), cell.clone(), check.id.clone());
            let name = format!("{}::{}", plan.spec.name, check.id);
            trials.push(Trial::test(name, move || run_check(&plan, &cell, &id)).with_kind("spec"));
        }
    }
    Ok(trials)
}

fn run_check(plan: &Plan, cell: &RunCell, id: &str) -> Result<(), Failed> {
    let run = cell.get_or_init(|| {
        let w = world().map_err(|e| format!("{e:#}"))?;
        let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        Ok(rt.block_on(tdg::verify::run(&w.env, plan)))
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

/// Reads a spec from text written by a test.
pub fn write_spec(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}
