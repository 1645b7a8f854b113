//! The Image Factory path: schematic IDs against Go's own yaml.v3 on generated schematics,
//! URLs, and `tdg factory release` and `build.source.factory` against a stand-in factory on
//! loopback (Go, computing IDs with yaml.v3) and a real registry for the installer image.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use tdg::talos::schematic::Schematic;

use super::cli::{expect_exit, text, Tdg};
use crate::factory::{self, Behaviour, FakeFactory, WELL};
use crate::fixtures::{output, push_with_skopeo};
use crate::{upstream, world};

/// SplitMix64: the same schematics on every run, no crate needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// Strings YAML and the emitter treat specially: indicators, YAML 1.1 booleans, Go number
/// syntax, timestamps, quotes, control and non-BMP characters, line breaks, long keys.
const ATOMS: &[&str] = &[
    "",
    " ",
    "a",
    "noapic",
    "console=ttyS0,115200",
    "a: b",
    "a:b",
    "a #b",
    "a#b",
    "#x",
    "- x",
    "-x",
    "-",
    "?",
    "? x",
    ":",
    ": x",
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "true",
    "False",
    "null",
    "~",
    "NULL",
    "10",
    "0x1F",
    "0o17",
    "017",
    "08",
    "1_000",
    "1e3",
    "1e400",
    ".5",
    ".inf",
    "-.inf",
    ".nan",
    "+1",
    "-0",
    "1:20",
    "1:70",
    "2001-12-14",
    "2001-12-14T21:59:43Z",
    "2001-12-14 21:59:43.10",
    "2001-2-30",
    "2001-12-14t01:02:03+05:00",
    "2001-12-14T01:02:03",
    "'q'",
    "\"dq\"",
    "it's",
    "tab\there",
    "line1\nline2",
    "line1\nline2\n",
    "line1\nline2\n\n",
    "\nlead",
    " lead",
    "trail ",
    "trail \nx",
    "x\n y",
    "café",
    "日本語",
    "😀",
    "\u{a0}nbsp",
    "\u{feff}bom",
    "\u{1}ctl",
    "\u{7f}",
    "back\\slash",
    "{}",
    "[]",
    "{a}",
    "&a",
    "*a",
    "!tag",
    "|",
    ">",
    "%",
    "@",
    "`",
    "---",
    "...",
    "--- x",
    "a,b",
    "[x",
    "x]",
    "=",
    "siderolabs/gvisor",
    "\r\n",
    "a\rb",
    "\t",
    "\ttab",
    "0",
    "0.0",
    "1.0",
    "-1",
    "3.14159",
    "1e-7",
    "123456789",
    "1234567.0",
    "a10",
    "a9",
    "a010",
    "x1y",
];

/// Atoms a YAML writer may leave unquoted: they exercise the plain-scalar rules on input.
const PLAIN: &[&str] = &[
    "noapic",
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "true",
    "False",
    "null",
    "~",
    "10",
    "0x1F",
    "0o17",
    "017",
    "08",
    "1_000",
    "1e3",
    "1e400",
    ".5",
    ".inf",
    "+1",
    "-0",
    "1:20",
    "2001-12-14",
    "2001-12-14 21:59:43.10",
    "a:b",
    "a#b",
    "console=ttyS0,115200",
    "siderolabs/gvisor",
    "café",
    "0",
    "1.0",
    "-1",
    "3.14159",
    "123456789",
    "a10",
];

fn atom(r: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..if r.chance(0.75) { 1 } else { 2 + r.below(2) } {
        s += r.pick(ATOMS);
    }
    if r.chance(0.02) {
        s = "k".repeat(120 + r.below(20)); // around the 128-byte simple-key limit
    }
    s
}

fn scalar(r: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    match r.below(10) {
        0 => json!(r
            .pick(&["0", "1", "-1", "255", "256", "9223372036854775807"])
            .parse::<i64>()
            .unwrap()),
        1 => json!([1.5, 1e21, 1e-5, 1.0, 0.1, 100.0, 1e6, 123456789012.0][r.below(8)]),
        2 => json!(r.chance(0.5)),
        3 => serde_json::Value::Null,
        _ => json!(atom(r)),
    }
}

fn any(r: &mut Rng, depth: usize) -> serde_json::Value {
    match r.below(10) {
        _ if depth > 2 => scalar(r),
        0 | 1 => serde_json::Value::Array((0..r.below(4)).map(|_| any(r, depth + 1)).collect()),
        2 | 3 => serde_json::Value::Object(
            (0..r.below(4))
                .map(|_| (atom(r), any(r, depth + 1)))
                .collect(),
        ),
        _ => scalar(r),
    }
}

fn strings(r: &mut Rng) -> serde_json::Value {
    (0..r.below(4))
        .map(|_| serde_json::Value::from(atom(r)))
        .collect()
}

fn schematic(r: &mut Rng) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut c = Map::new();
    if r.chance(0.5) {
        c.insert("extraKernelArgs".into(), strings(r));
    }
    if r.chance(0.4) {
        let meta: Vec<Value> = (0..r.below(3))
            .map(|_| json!({"key": ([0, 1, 10, 12, 255][r.below(5)]), "value": atom(r)}))
            .collect();
        c.insert("meta".into(), meta.into());
    }
    if r.chance(0.4) {
        c.insert(
            "systemExtensions".into(),
            json!({"officialExtensions": strings(r)}),
        );
    }
    if r.chance(0.2) {
        c.insert(
            "bootloader".into(),
            r.pick(&["sd-boot", "GRUB", "Dual-Boot", "none", "None"])
                .into(),
        );
    }
    if r.chance(0.3) {
        let mut sb = Map::new();
        if r.chance(0.5) {
            sb.insert("enrollKeys".into(), atom(r).into());
        }
        if r.chance(0.5) {
            sb.insert("includeWellKnownCertificates".into(), r.chance(0.5).into());
        }
        c.insert("secureboot".into(), sb.into());
    }
    if r.chance(0.2) {
        c.insert(
            "diskImage".into(),
            json!({"sectorSize": ([0, 512, 4096][r.below(3)])}),
        );
    }
    if r.chance(0.3) {
        c.insert("embeddedMachineConfiguration".into(), atom(r).into());
    }
    let mut top = Map::new();
    if r.chance(0.4) {
        let mut o = Map::new();
        o.insert("image".into(), atom(r).into());
        o.insert("name".into(), atom(r).into());
        if r.chance(0.7) {
            let opts: Map<String, Value> = (0..r.below(5)).map(|_| (atom(r), any(r, 0))).collect();
            o.insert("options".into(), opts.into());
        }
        top.insert("overlay".into(), o.into());
    }
    if !c.is_empty() || r.chance(0.5) {
        top.insert("customization".into(), c.into());
    }
    top.into()
}

/// Block YAML, leaving the [`PLAIN`] atoms unquoted and quoting the rest as JSON strings.
fn yaml(v: &serde_json::Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    let scalar = |v: &serde_json::Value| match v.as_str() {
        Some(s) if PLAIN.contains(&s) => s.to_string(),
        _ => v.to_string(),
    };
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                out.push_str(&format!("{pad}{}:", serde_json::Value::from(k.as_str())));
                match v {
                    serde_json::Value::Object(x) if !x.is_empty() => {
                        out.push('\n');
                        yaml(v, indent + 2, out);
                    }
                    serde_json::Value::Array(x) if !x.is_empty() => {
                        out.push('\n');
                        yaml(v, indent + 2, out);
                    }
                    _ => out.push_str(&format!(" {}\n", scalar(v))),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for i in items {
                out.push_str(&format!("{pad}- {}\n", scalar(i)));
            }
        }
        _ => out.push_str(&format!("{pad}{}\n", scalar(v))),
    }
}

/// YAML a generator does not write: Go number and boolean spellings in typed fields, block
/// scalars, anchors and aliases, flow collections, comments, null items, tags, nested maps
/// with non-string keys, and values yaml.v3 refuses.
const HAND_WRITTEN: &[&str] = &[
    "customization:\n  meta:\n    - key: 0x0A\n      value: 10\n",
    "customization:\n  extraKernelArgs: [yes, 0x10, 1_0, ~, '', \"\"]\n",
    "customization:\n  secureboot:\n    includeWellKnownCertificates: yes # YAML 1.1\n",
    "customization:\n  secureboot:\n    includeWellKnownCertificates: \"on\"\n",
    "customization:\n  diskImage: {sectorSize: 4096.9}\n",
    "customization:\n  diskImage: {sectorSize: 1e3}\n",
    "customization:\n  meta: [{key: 256, value: x}]\n",
    "customization:\n  meta: [{key: -1, value: x}]\n",
    "customization:\n  meta: [{key: '1', value: x}]\n",
    "customization:\n  embeddedMachineConfiguration: |\n    version: v1alpha1\n    machine:\n      type: worker\n",
    "customization:\n  embeddedMachineConfiguration: |+\n    a\n\n\n",
    "customization:\n  embeddedMachineConfiguration: >\n    folded\n    text\n",
    "overlay:\n  image: x\n  name: y\n  options: &o {a: 1}\ncustomization: {extraKernelArgs: [*o]}\n",
    "overlay: {image: x, name: y, options: {a: &x [1, 2], b: *x}}\n",
    "customization: {}\ncustomization: {}\n",
    "customization:\n  bootloader: \"\"\n",
    "customization:\n  bootloader: ~\n",
    "customization:\n  bootloader: 1\n",
    "customization: ~\n",
    "~\n",
    "---\n",
    "[]\n",
    "x\n",
    "overlay: {options: {1: a, '1': b}}\n",
    "overlay: {options: {~: a, b: c}}\n",
    "overlay: {options: {a: {1: x, true: y, 1.5: z, b: w, ~: n, 10: t, 2: u}}}\n",
    "overlay: {options: {a: {0x1: x, 1: y}}}\n",
    "overlay: {options: {a: 2001-12-14, b: !!str 10, c: !!float 1, d: !!int '7'}}\n",
    "customization: {extraKernelArgs: !!seq [a]}\n",
    "customization: {extraKernelArgs: [!!int x]}\n",
    "overlay: {options: {a10: 1, a9: 2, a010: 3, a01: 4, b: 5, B: 6, '': 7, x1y: 8, x01y: 9, x1: 10}}\n",
    "customization:\n  extraKernelArgs: a\n",
    "customization:\n  extraKernelArgs: {a: b}\n",
    "customization: {meta: [~]}\n",
    "customization: {meta: [{}]}\n",
    "customization: {systemExtensions: ~}\n",
    "customization: {systemExtensions: {officialExtensions: ~}}\n",
    "overlay: {}\n",
    "overlay: {image: ''}\n",
    "overlay: {name: x}\n",
    "customization: {secureboot: {includeWellKnownCertificates: 1}}\n",
    "customization: {secureboot: {includeWellKnownCertificates: 'true'}}\n",
    "customization: {diskImage: {sectorSize: -0.5}}\n",
    "customization: {diskImage: {sectorSize: 0x1000}}\n",
    "customization: {diskImage: {sectorSize: 18446744073709551615}}\n",
    "customization: {meta: [{key: 255.9, value: x}]}\n",
    "customization: {meta: [{key: 08, value: x}]}\n",
    "customization: {meta: [{key: 0b11, value: x}]}\n",
    "customization: {meta: [{key: +5, value: x}]}\n",
    "# a comment\ncustomization: # another\n  extraKernelArgs:\n  - 'single ''quoted'''\n  - \"tab\\there\"\n",
    "{\"customization\": {\"extraKernelArgs\": [\"\\u00e9\", \"\\t\", \"\\/\"]}}",
];

/// Characters YAML 1.1 reads as line breaks and YAML 1.2 as text: tdg refuses them raw.
fn has_yaml11_break(s: &str) -> bool {
    s.contains(['\u{85}', '\u{2028}', '\u{2029}'])
}

/// Thousands of generated schematics, as JSON and as block YAML: tdg's canonical bytes are
/// yaml.v3's, byte for byte, and tdg refuses exactly what yaml.v3 refuses.
pub fn schematic_ids_match_go_yaml_v3_on_generated_schematics() -> Result<()> {
    let mut r = Rng(0x7d9_5eed);
    // The project's own schematics first, then the generated ones.
    let mut docs = Vec::new();
    for e in std::fs::read_dir(world::repo_root().join("schematics"))? {
        docs.push(std::fs::read_to_string(e?.path())?);
    }
    ensure!(docs.len() >= 2, "schematics/ holds the two variants");
    docs.extend(HAND_WRITTEN.iter().map(|d| d.to_string()));
    for i in 0..3000 {
        let v = schematic(&mut r);
        if i % 2 == 0 {
            docs.push(v.to_string());
        } else {
            let mut y = String::new();
            yaml(&v, 0, &mut y);
            docs.push(y);
        }
    }
    let go = factory::canonical_batch(&docs)?;
    let (mut same, mut both_refuse, mut mismatches) = (0, 0, Vec::new());
    for (doc, want) in docs.iter().zip(&go) {
        let got = Schematic::parse(Path::new("gen.yaml"), doc).map(|s| s.canonical());
        match (&got, want) {
            (Ok(a), Ok(b)) if a == b => same += 1,
            (Err(_), Err(_)) => both_refuse += 1,
            (Err(e), Ok(_)) if has_yaml11_break(doc) && e.message.contains("line break") => {}
            _ => mismatches.push(format!(
                "--- input {doc:?}\n    tdg {:?}\n    go  {want:?}",
                got.map_err(|e| e.to_string())
            )),
        }
    }
    ensure!(
        mismatches.is_empty(),
        "{} of {} differ from yaml.v3:\n{}",
        mismatches.len(),
        docs.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
    ensure!(
        same > 2500 && both_refuse > 0,
        "too few comparisons: {same} same, {both_refuse} refused by both"
    );
    Ok(())
}

/// The published IDs through the CLI, the canonical bytes, and errors at file:line:col.
pub fn schematic_cli_prints_ids_and_located_errors() -> Result<()> {
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    let cases = [
        ("customization: {}\n", "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"),
        ("customization:\n  extraKernelArgs:\n    - noapic\n    - nolapic\n", "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"),
        ("{\"customization\": {\"systemExtensions\": {\"officialExtensions\": [\"siderolabs/gvisor\"]}}}", "d9ff89777e246792e7642abd3220a616afb4e49822382e4213a2e528ab826fe5"),
    ];
    for (i, (body, id)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("s{i}.yaml"));
        std::fs::write(&f, body)?;
        let out = tdg.run(["schematic".as_ref(), "id".as_ref(), f.as_os_str()])?;
        ensure!(
            expect_exit(&out, 0)?.trim() == *id,
            "{body}: {}",
            text(&out)
        );
        let out = tdg.run(["schematic".as_ref(), "canonical".as_ref(), f.as_os_str()])?;
        let canonical = expect_exit(&out, 0)?;
        ensure!(
            output(std::process::Command::new("sh").arg("-c").arg(format!(
                "printf '%s' '{}' | sha256sum",
                canonical.replace('\'', "'\\''")
            )))?
            .starts_with(id),
            "sha256sum of the canonical bytes is the ID"
        );
    }
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "customization:\n  systemExtension:\n    officialExtensions: [siderolabs/spin]\n",
    )?;
    let out = tdg.run(["schematic".as_ref(), "id".as_ref(), bad.as_os_str()])?;
    let t = expect_exit(&out, 2)?;
    ensure!(
        t.contains(&format!(
            "{}:2:3: field systemExtension not found",
            bad.display()
        )) && t.contains("2 |   systemExtension:"),
        "{t}"
    );
    let out = tdg.run(["schematic", "id", "/nonexistent/schematic.yaml"])?;
    ensure!(
        expect_exit(&out, 2)?.contains("cannot read schematic"),
        "{}",
        text(&out)
    );
    Ok(())
}

fn write_schematic(dir: &Path) -> Result<PathBuf> {
    let f = dir.join("schematic.yaml");
    std::fs::write(
        &f,
        "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/spin\n",
    )?;
    Ok(f)
}

pub fn factory_urls_in_human_and_json() -> Result<()> {
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    let s = write_schematic(dir.path())?;
    let id = Schematic::load(&s)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .id();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "factory",
            "urls",
            "--schematic",
            s.to_str().unwrap(),
            "--talos",
            "v1.11.5",
            "--arch",
            "arm64",
            "--platform",
            "metal",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let human = expect_exit(&tdg.run(args(&[]))?, 0)?;
    ensure!(
        human.contains(&format!(
            "installer           factory.talos.dev/metal-installer/{id}:v1.11.5"
        )),
        "{human}"
    );
    let out = tdg.run(args(&["--secureboot", "--format", "json"]))?;
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let img = format!("https://factory.talos.dev/image/{id}/v1.11.5");
    for (k, v) in [
        ("kernel", format!("{img}/kernel-arm64")),
        ("initramfs", format!("{img}/initramfs-arm64.xz")),
        ("cmdline", format!("{img}/cmdline-metal-arm64-secureboot")),
        ("iso", format!("{img}/metal-arm64-secureboot.iso")),
        ("uki", format!("{img}/metal-arm64-secureboot-uki.efi")),
        ("diskImage", format!("{img}/metal-arm64-secureboot.raw.xz")),
        (
            "installerTarball",
            format!("{img}/installer-arm64-secureboot.tar"),
        ),
        (
            "pxe",
            format!("https://factory.talos.dev/pxe/{id}/v1.11.5/metal-arm64-secureboot"),
        ),
        (
            "installer",
            format!("factory.talos.dev/metal-installer-secureboot/{id}:v1.11.5"),
        ),
        (
            "installerLegacy",
            format!("factory.talos.dev/installer-secureboot/{id}:v1.11.5"),
        ),
    ] {
        ensure!(j[k] == v.as_str(), "{k}: {} != {v}", j[k]);
    }
    let out = tdg.run([
        "factory",
        "urls",
        "--schematic",
        s.to_str().unwrap(),
        "--talos",
        "1.11.5",
    ])?;
    ensure!(
        expect_exit(&out, 2)?.contains("must start with 'v'"),
        "{}",
        text(&out)
    );
    Ok(())
}

fn release_args<'a>(schematic: &'a str, factory: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "factory",
        "release",
        "--schematic",
        schematic,
        "--talos",
        "v1.11.5",
        "--arch",
        "arm64",
        "--platform",
        "metal",
        "--version",
        "v0.3.0",
        "--channel",
        "stable",
        "--kubernetes",
        "v1.34.1",
        "--factory",
        factory,
    ];
    a.extend_from_slice(extra);
    a
}

fn release_schema() -> Result<jsonschema::Validator> {
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        world::repo_root().join("schema/release-v1.schema.json"),
    )?)?;
    jsonschema::validator_for(&schema).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A dry run needs no network (the factory named is unreachable) and its manifest validates
/// against the shipped schema; the same manifest missing a field does not.
pub fn release_dry_run_validates_offline() -> Result<()> {
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    let s = write_schematic(dir.path())?;
    let out = tdg.run(release_args(
        s.to_str().unwrap(),
        "http://127.0.0.1:1",
        &["--dry-run"],
    ))?;
    expect_exit(&out, 0)?;
    let m: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let v = release_schema()?;
    ensure!(v.is_valid(&m), "{m}");
    ensure!(
        m["dryRun"] == true && m["os"]["iso"]["sha256"].is_null(),
        "{m}"
    );
    ensure!(
        m["os"]["installer"]["image"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:1/metal-installer/"),
        "{m}"
    );
    let mut broken = m.clone();
    broken["os"].as_object_mut().unwrap().remove("installer");
    ensure!(
        !v.is_valid(&broken),
        "a manifest without os.installer must not validate"
    );
    let printed = expect_exit(&tdg.run(["schema", "--release"])?, 0)?;
    ensure!(
        printed
            == std::fs::read_to_string(world::repo_root().join("schema/release-v1.schema.json"))?
    );
    Ok(())
}

fn iso_root() -> Result<(tempfile::TempDir, String)> {
    let root = tempfile::tempdir()?;
    let iso = root.path().join("metal-arm64.iso");
    std::fs::write(&iso, tdg::demo::filler(3 << 20, 7))?;
    let sum = output(std::process::Command::new("sha256sum").arg(&iso))?;
    Ok((
        root,
        sum.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    ))
}

/// The online path: the schematic is submitted and the factory's ID checked, the ISO streamed
/// to disk and hashed (sha256sum agrees), the installer digest resolved from a registry
/// (skopeo agrees), and the manifest written and valid.
pub fn release_online_against_a_loopback_factory() -> Result<()> {
    let w = world::world()?;
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    let s = write_schematic(dir.path())?;
    let id = Schematic::load(&s)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .id();
    let (root, iso_sum) = iso_root()?;
    let f = FakeFactory::start(root.path(), WELL)?;
    // The installer the factory would build, in a real registry under the factory's name.
    let layout = dir.path().join("installer");
    upstream::layout_multi(&layout, "v1.11.5", upstream::installer_entries)?;
    let repo = format!("{}/metal-installer/{id}:v1.11.5", w.registry.addr);
    push_with_skopeo(&layout, "v1.11.5", &repo)?;
    let raw = dir.path().join("installer.json");
    let skopeo_digest = output(std::process::Command::new("sh").arg("-c").arg(format!(
        "skopeo inspect --raw --tls-verify=false docker://{repo} > {raw} && skopeo manifest-digest {raw}",
        raw = raw.display()
    )))?;
    let skopeo_digest = skopeo_digest.trim();
    let mirror = format!("{}=http://{}", f.host(), w.registry.addr);
    let manifest = dir.path().join("out/release.json");
    std::fs::create_dir_all(manifest.parent().unwrap())?;
    let dl = dir.path().join("dist");
    let out = tdg.run(release_args(
        s.to_str().unwrap(),
        &f.url,
        &[
            "--download",
            dl.to_str().unwrap(),
            "--output",
            manifest.to_str().unwrap(),
            "--mirror",
            &mirror,
        ],
    ))?;
    expect_exit(&out, 0)?;
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest)?)?;
    ensure!(release_schema()?.is_valid(&m), "{m}");
    ensure!(
        m["dryRun"] == false && m["talos"]["schematicId"] == id.as_str(),
        "{m}"
    );
    ensure!(
        m["os"]["iso"]["sha256"] == iso_sum.as_str(),
        "sha256sum says {iso_sum}: {m}"
    );
    let local = m["os"]["iso"]["localPath"].as_str().context("localPath")?;
    let kept = output(std::process::Command::new("sha256sum").arg(local))?;
    ensure!(
        kept.starts_with(&iso_sum),
        "the kept ISO is the served one: {kept}"
    );
    ensure!(
        m["os"]["installer"]["digest"] == skopeo_digest,
        "skopeo says {skopeo_digest}: {m}"
    );
    let reqs = f.requests();
    ensure!(
        reqs.first().map(String::as_str) == Some("POST /schematics")
            && reqs
                .iter()
                .any(|r| r == &format!("GET /image/{id}/v1.11.5/metal-arm64.iso")),
        "{reqs:?}"
    );
    Ok(())
}

/// Each failure is a clear error, exit 2, and leaves no manifest and no ISO behind.
pub fn release_failures_write_nothing() -> Result<()> {
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    let s = write_schematic(dir.path())?;
    let s = s.to_str().unwrap();
    let (root, _) = iso_root()?;
    let cases: [(&str, Behaviour<'_>, &str); 6] = [
        (
            "no ID",
            Behaviour {
                post: "no-id",
                download: "ok",
            },
            "returned no schematic ID",
        ),
        (
            "another ID",
            Behaviour {
                post: "wrong-id",
                download: "ok",
            },
            "but the schematic's ID is",
        ),
        (
            "503",
            Behaviour {
                post: "fail",
                download: "ok",
            },
            "POST /schematics answered 503",
        ),
        (
            "truncated",
            Behaviour {
                post: "ok",
                download: "truncate",
            },
            "was cut short: 1572864 of the 3145728 bytes promised",
        ),
        (
            "broken off",
            Behaviour {
                post: "ok",
                download: "abort",
            },
            "so its SHA-256 cannot be computed",
        ),
        (
            "404",
            Behaviour {
                post: "ok",
                download: "missing",
            },
            "metal-arm64.iso answered 404",
        ),
    ];
    let manifest = dir.path().join("release.json");
    let dl = dir.path().join("dist");
    let extra = [
        "--download",
        dl.to_str().unwrap(),
        "--output",
        manifest.to_str().unwrap(),
    ];
    for (what, b, want) in cases {
        let f = FakeFactory::start(root.path(), b)?;
        let out = tdg.run(release_args(s, &f.url, &extra))?;
        let t = expect_exit(&out, 2).with_context(|| what.to_string())?;
        ensure!(t.contains(want) && t.contains(f.host()), "{what}: {t}");
        ensure!(!manifest.exists(), "{what}: a manifest was written");
        let left: Vec<_> = std::fs::read_dir(&dl)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        ensure!(left.is_empty(), "{what}: left behind {left:?}");
    }
    let f = FakeFactory::start(root.path(), WELL)?;
    let missing = dir.path().join("missing.yaml");
    let out = tdg.run(release_args(missing.to_str().unwrap(), &f.url, &extra))?;
    ensure!(
        expect_exit(&out, 2)?.contains("cannot read the schematic"),
        "{}",
        text(&out)
    );
    // The installer reference cannot be derived from a platform or version it cannot name.
    for (flag, bad, want) in [
        ("--platform", "Metal/x", "platform 'Metal/x'"),
        ("--talos", "v1.11", "not vMAJOR.MINOR.PATCH"),
    ] {
        let mut args = release_args(s, &f.url, &["--output", manifest.to_str().unwrap()]);
        let at = args.iter().position(|a| *a == flag).context("flag")? + 1;
        args[at] = bad;
        let out = tdg.run(args)?;
        ensure!(expect_exit(&out, 2)?.contains(want), "{}", text(&out));
    }
    ensure!(
        !manifest.exists() && f.requests().is_empty(),
        "nothing asked of the factory: {:?}",
        f.requests()
    );
    Ok(())
}

/// `build.source.factory`: kernel and initramfs come from the factory, the other stages are
/// the same, and the result passes its spec; a factory that disagrees on the ID stops the
/// build before anything is written.
pub fn build_takes_kernel_and_initramfs_from_the_factory() -> Result<()> {
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    write_schematic(dir.path())?;
    let root = tempfile::tempdir()?;
    std::fs::write(
        root.path().join("kernel-arm64"),
        tdg::demo::kernel("arm64", 700 << 10),
    )?;
    let initramfs = tdg::demo::initramfs(
        "arm64",
        &[tdg::demo::spin()],
        tdg::talos::initramfs::Compression::Zstd,
    )?;
    std::fs::write(root.path().join("initramfs-arm64.xz"), initramfs)?;
    for (b, code) in [
        (
            Behaviour {
                post: "wrong-id",
                download: "ok",
            },
            2,
        ),
        (WELL, 0),
    ] {
        let f = FakeFactory::start(root.path(), b)?;
        let spec = world::write_spec(dir.path(), "factory-spin", &format!(
            "apiVersion: tdg/v1\nname: factory-spin\nimage: oci:{out}:spin\nplatform: linux/arm64\ntalos: v1.11.5\n\
             expect:\n  files:\n    - path: assets/talos/arm64/boot/vmlinuz\n      kernel: {{arch: arm64}}\n\
             \x20   - path: assets/talos/arm64/boot/initramfs.xz\n      initramfs: {{compression: zstd, extensions: {{exact: [spin]}}}}\n\
             \x20   - path: assets/talos/arm64/validation/build-report.txt\n      report: {{fields: {{Base Source: Image Factory kernel + initramfs}}}}\n\
             \x20   - path: assets/talos/arm64/checksums.sha256\n      checksums: {{root: assets/talos/arm64, complete: true}}\n\
             build:\n  arch: arm64\n  source:\n    factory: {{url: '{url}', schematic: schematic.yaml}}\n",
            out = dir.path().join("oci").display(),
            url = f.url
        ))?;
        let out_arg = format!("oci:{}:spin", dir.path().join("oci").display());
        let out = tdg.run([
            "build".as_ref(),
            spec.as_os_str(),
            "--output".as_ref(),
            out_arg.as_ref(),
            "--verify".as_ref(),
        ])?;
        let t = expect_exit(&out, code)?;
        if code == 2 {
            ensure!(t.contains("but the schematic's ID is"), "{t}");
            ensure!(
                !dir.path().join("oci").exists(),
                "a refused build wrote its output"
            );
            ensure!(
                !f.requests().iter().any(|r| r.starts_with("GET")),
                "{:?}",
                f.requests()
            );
        } else {
            ensure!(
                t.contains("submit schematic") && t.contains("0 failed"),
                "{t}"
            );
            let reqs = f.requests();
            ensure!(reqs.len() == 3 && reqs[0] == "POST /schematics", "{reqs:?}");
        }
    }
    Ok(())
}
