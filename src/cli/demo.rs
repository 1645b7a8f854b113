//! `tdg demo`: the embedded sample image and spec, written and verified offline.

use std::path::PathBuf;

use anyhow::Result;

use super::{outcomes, runtime, Global};
use tdg::check::golden::Mode;
use tdg::check::plan;
use tdg::exit::Exit;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where to write the layout and the spec.
    #[arg(default_value = "tdg-demo")]
    dir: PathBuf,
}

pub fn demo(g: &Global, a: &DemoArgs) -> Result<Exit> {
    let spec_path = tdg::demo::write(&a.dir)?;
    eprintln!(
        "wrote {} and an OCI layout beside it; verifying:",
        spec_path.display()
    );
    let plans = [plan::plan(
        tdg::spec::load_file(&spec_path, None)?,
        None,
        None,
    )];
    let v = runtime()?.block_on(tdg::run::run(&g.env()?, &plans, Mode::from_env(), None))?;
    outcomes::present(&v, None, None, g.style())
}
