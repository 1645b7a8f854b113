//! Extension manifests as Talos decodes them: generated `manifest.yaml` texts (missing, null,
//! empty and oddly typed values, unknown keys, second documents, anchors, duplicate keys), each
//! read by tdg and by Talos's own rule (`pkg/machinery/extensions/load.go`: go-yaml v4's
//! `Decoder.Decode` into Talos's `Manifest`, then `version` must be `v1alpha1`), run by the Go
//! reference. Both must accept the same texts with the same fields, and refuse the same ones.

use anyhow::{ensure, Result};

use super::schematic_gen::Rng;
use crate::factory;

/// Values a manifest field may take, as YAML text after `key:`.
const VALUES: &[&str] = &[
    " spin",
    " ~",
    "",
    " ''",
    " \"quoted\"",
    " 1.10",
    " 0x10",
    " true",
    " yes",
    " 2001-12-14",
    " -0",
    " v0.21.0",
    " |\n    two\n    lines",
    " [a]",
    " {a: b}",
    " &x anchored",
    " !local tagged",
];

const RANGES: &[&str] = &[
    " '>= v1.0.0'",
    " '>= v1.99.0'",
    " ~",
    "",
    " 1.5",
    " '<1.12.0 || >1.13'",
];

fn field(r: &mut Rng, key: &str, values: &[&str], indent: &str) -> String {
    format!(
        "{indent}{key}:{}\n",
        r.pick(values).replace("\n    ", &format!("\n{indent}  "))
    )
}

fn manifest(r: &mut Rng) -> String {
    let mut out = String::new();
    match r.below(8) {
        0 => {}
        1 => out += "version: ~\n",
        2 => out += "version: v1alpha2\n",
        _ => out += "version: v1alpha1\n",
    }
    match r.below(8) {
        0 => {}
        1 => out += "metadata: ~\n",
        2 => out += "metadata: {}\n",
        3 => out += "metadata: [a]\n",
        _ => {
            out += "metadata:\n";
            for key in ["name", "version", "author", "description", "extraInfo"] {
                if r.chance(0.8) {
                    out += &field(r, key, VALUES, "  ");
                }
            }
            match r.below(6) {
                0 => {}
                1 => out += "  compatibility:\n",
                2 => out += "  compatibility: {talos: ~}\n",
                _ => out += &field(r, "compatibility:\n    talos:\n      version", RANGES, "  "),
            }
            if r.chance(0.1) {
                out += "  name: again\n";
            }
            if r.chance(0.2) {
                out += "  maintainers: [someone]\n";
            }
        }
    }
    if r.chance(0.2) {
        out += "annotations: {a: b}\n";
    }
    if r.chance(0.1) {
        out += "version: v1alpha1\n";
    }
    match r.below(6) {
        0 => out += "---\n",
        1 => out += "---\n[: not yaml\n",
        2 => out += "...\n",
        3 => out = format!("---\n{out}"),
        _ => {}
    }
    out
}

pub fn manifests_decode_as_talos_decodes_them() -> Result<()> {
    let mut r = Rng(0x6d61_6e69);
    let texts: Vec<String> = (0..2000).map(|_| manifest(&mut r)).collect();
    let go = factory::manifests_batch(&texts)?;
    let (mut same, mut refused, mut differ) = (0, 0, Vec::new());
    for (text, want) in texts.iter().zip(&go) {
        let got = tdg::talos::extensions::parse_manifest(text).map(|m| {
            let md = m.metadata;
            vec![
                md.name,
                md.version,
                md.author,
                md.description,
                md.compatibility.talos.version,
                md.extra_info,
            ]
        });
        match (&got, want) {
            (Ok(a), Ok(b)) if a == b => same += 1,
            (Err(_), Err(_)) => refused += 1,
            _ => differ.push(format!(
                "--- {text:?}\n    tdg {:?}\n    talos {want:?}",
                got.map_err(|e| e.to_string())
            )),
        }
    }
    ensure!(
        differ.is_empty(),
        "{} of {} manifests read otherwise than Talos reads them:\n{}",
        differ.len(),
        texts.len(),
        differ[..differ.len().min(8)].join("\n")
    );
    ensure!(
        same > 500 && refused > 100,
        "{same} accepted alike, {refused} refused alike"
    );
    eprintln!(
        "manifests: {same} accepted alike, {refused} refused alike, of {}",
        texts.len()
    );
    Ok(())
}
