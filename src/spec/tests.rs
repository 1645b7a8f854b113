//! Strict loading: each kind of bad input is an error that names file:line:col.

use std::path::Path;

use super::load_str;

const GOOD: &str = "apiVersion: tdg/v1
name: x
image: ghcr.io/a/b:v1
expect:
  files:
    - path: a/b
";

fn err(src: &str) -> String {
    load_str(Path::new("specs/x.yaml"), src)
        .unwrap_err()
        .to_string()
}

#[test]
fn good_spec_loads() {
    let s = load_str(Path::new("specs/x.yaml"), GOOD).unwrap();
    assert_eq!(s.name, "x");
    assert_eq!(s.expect.files[0].path, "a/b");
}

#[test]
fn unknown_key_names_line_and_column() {
    let e = err(&GOOD.replace("    - path: a/b\n", "    - path: a/b\n      sha265: abc\n"));
    assert!(
        e.starts_with("specs/x.yaml:7:7: unknown field `sha265`, expected one of"),
        "{e}"
    );
}

#[test]
fn duplicate_key_is_an_error() {
    let e = err(&GOOD.replace("name: x\n", "name: x\nname: y\n"));
    assert!(e.starts_with("specs/x.yaml:3:1: duplicate key"), "{e}");
}

#[test]
fn wrong_type_is_an_error() {
    let e = err(&GOOD.replace("  files:\n    - path: a/b\n", "  files: {path: a}\n"));
    assert!(e.starts_with("specs/x.yaml:5:"), "{e}");
}

#[test]
fn wrong_api_version_is_an_error() {
    let e = err(&GOOD.replace("tdg/v1", "tdg/v2"));
    assert!(
        e.starts_with("specs/x.yaml:1:13: unknown value `tdg/v2`, expected one of tdg/v1"),
        "{e}"
    );
}

#[test]
fn spec_that_checks_nothing_is_an_error() {
    let e = err("apiVersion: tdg/v1\nname: x\nimage: ghcr.io/a/b:v1\nexpect: {}\n");
    assert!(
        e.starts_with("specs/x.yaml:4:9: the spec checks nothing"),
        "{e}"
    );
}

#[test]
fn invalid_values_name_their_position() {
    let cases = [
        (
            "    - path: a/b\n",
            "    - path: a/b\n      mode: \"999\"\n",
            "specs/x.yaml:7:13: invalid mode",
        ),
        (
            "    - path: a/b\n",
            "    - path: a/b\n      matches: [\"(\"]\n",
            "specs/x.yaml:7:17: invalid regex",
        ),
        (
            "    - path: a/b\n",
            "    - path: a/b\n      size: {min: 2MiB, max: 1MiB}\n",
            "specs/x.yaml:7:13: size min",
        ),
        (
            "    - path: a/b\n",
            "    - path: a/b\n      size: {min: 5 parsecs}\n",
            "specs/x.yaml:7:",
        ),
        (
            "    - path: a/b\n",
            "    - path: a/b\n      sha256: xyz\n",
            "specs/x.yaml:7:15: invalid sha256",
        ),
        (
            "    - path: a/b\n",
            "    - path: ../b\n",
            "specs/x.yaml:6:7: '../b' has a '..' component",
        ),
        (
            "    - path: a/b\n",
            "    - path: a/b\n    - path: ./a/b\n",
            "specs/x.yaml:7:7: 'a/b' is listed twice",
        ),
        (
            "image: ghcr.io/a/b:v1",
            "image: ghcr.io/A/b:v1",
            "specs/x.yaml:3:8: invalid image reference",
        ),
        (
            "image: ghcr.io/a/b:v1",
            "image: ghcr.io/a/b:v1\nplatform: linux",
            "specs/x.yaml:4:11: invalid platform",
        ),
        (
            "image: ghcr.io/a/b:v1",
            "image: ghcr.io/a/b:v1\ndigest: sha256:12",
            "specs/x.yaml:4:9: invalid digest",
        ),
        (
            "name: x",
            "name: Bad Name",
            "specs/x.yaml:2:7: invalid name",
        ),
        ("name: x", "name: '..'", "specs/x.yaml:2:7: invalid name"),
        ("name: x", "name: .", "specs/x.yaml:2:7: invalid name"),
        (
            "    - path: a/b\n",
            "    - path: a/b\n      type: dir\n      size: {min: 1}\n",
            "specs/x.yaml:6:7: 'a/b': size",
        ),
        (
            "  files:\n",
            "  absent: [a]\n  files:\n",
            "specs/x.yaml:5:12: 'a' is expected both present",
        ),
        (
            "  files:\n",
            "  labels: {k: \"^(x$\"}\n  files:\n",
            "specs/x.yaml:5:15: invalid regex",
        ),
    ];
    for (from, to, want) in cases {
        let e = err(&GOOD.replace(from, to));
        assert!(e.starts_with(want), "{to:?}: got {e}");
    }
}

#[test]
fn yes_is_not_a_boolean_and_leading_zero_modes_stay_strings() {
    let s = load_str(
        Path::new("x.yaml"),
        &GOOD.replace("    - path: a/b\n", "    - path: a/b\n      mode: 0755\n"),
    )
    .unwrap();
    assert_eq!(s.expect.files[0].mode, Some(0o755));
}

#[test]
fn committed_schema_is_current() {
    let committed = include_str!("../../schema/spec-v1.schema.json");
    assert_eq!(
        committed,
        super::json_schema(),
        "run `cargo run -- schema > schema/spec-v1.schema.json`"
    );
}

#[test]
fn build_source_factory_reads_its_schematic_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("x.yaml");
    let with_build = |build: &str| format!("{GOOD}talos: v1.11.5\nbuild:\n  arch: arm64\n{build}");
    let load = |text: &str| load_str(&spec, text);
    std::fs::write(
        dir.path().join("s.yaml"),
        "customization:\n  systemExtensions: {officialExtensions: [siderolabs/spin]}\n",
    )
    .unwrap();
    let s = load(&with_build("  source:\n    factory: {schematic: s.yaml}\n")).unwrap();
    match s.build.unwrap().base {
        super::BaseSource::Factory {
            factory,
            schematic_id,
            ..
        } => {
            assert_eq!(factory.base, "https://factory.talos.dev");
            assert_eq!(
                schematic_id,
                "9dbbf9df608019b1a6b5a9ecc22fb2604fcbafce9d39ead8e934cd12ae3a8a01"
            );
        }
        other => panic!("{other:?}"),
    }
    let e = load(&with_build(
        "  base: ghcr.io/siderolabs/imager:v1.11.5\n  source:\n    factory: {schematic: s.yaml}\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(":12:5: build has both `base` and `source`"),
        "{e}"
    );
    let e = load(&with_build("")).unwrap_err().to_string();
    assert!(e.contains("build needs `base`"), "{e}");
    let e = load(&with_build(
        "  source:\n    factory: {schematic: missing.yaml}\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(":11:26: source.factory.schematic:")
            && e.contains("missing.yaml: cannot read schematic"),
        "{e}"
    );
    std::fs::write(dir.path().join("bad.yaml"), "customization:\n  extra: 1\n").unwrap();
    let e = load(&with_build(
        "  source:\n    factory: {schematic: bad.yaml}\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("bad.yaml:2:3: field extra not found"), "{e}");
    let e = load(&with_build(
        "  source:\n    factory: {url: 'ftp://x', schematic: s.yaml}\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("must start with https:// or http://"), "{e}");
}

#[test]
fn signature_takes_a_key_beside_the_spec_or_a_keyless_signer() {
    use super::SignatureExpectation as S;
    let with = |sig: &str| format!("{GOOD}  signature:\n{sig}");
    let s = load_str(
        Path::new("specs/x.yaml"),
        &with("    key: keys/cosign.pub\n"),
    )
    .unwrap();
    match s.expect.signature.unwrap() {
        S::Key { key, written, tlog } => {
            assert_eq!(key, Path::new("specs/keys/cosign.pub"));
            assert_eq!(written, "keys/cosign.pub");
            assert!(
                tlog,
                "a log entry is required unless the spec says otherwise"
            );
        }
        other => panic!("{other:?}"),
    }
    let s = load_str(
        Path::new("specs/x.yaml"),
        &with("    key: keys/cosign.pub\n    tlog: false\n"),
    )
    .unwrap();
    assert!(matches!(
        s.expect.signature.unwrap(),
        S::Key { tlog: false, .. }
    ));
    // `tlog` is a key's: a keyless signature is always logged.
    let e = err(&with(
        "    identity: a@b.c\n    issuer: https://accounts.google.com\n    tlog: false\n",
    ));
    assert!(e.contains("signature.tlog applies to a key"), "{e}");
    // Provenance by a key, without a log.
    let s = load_str(
        Path::new("specs/x.yaml"),
        &format!("{GOOD}  provenance:\n    key: cosign.pub\n    tlog: false\n"),
    )
    .unwrap();
    assert!(matches!(
        s.expect.provenance.unwrap().signer,
        S::Key { tlog: false, .. }
    ));
    let e = err(&format!(
        "{GOOD}  provenance:\n    key: cosign.pub\n    identity: x\n"
    ));
    assert!(e.contains("provenance needs identity"), "{e}");
    let s = load_str(
        Path::new("specs/x.yaml"),
        &with("    identity: '^.*@siderolabs\\.com$'\n    issuer: https://accounts.google.com\n"),
    )
    .unwrap();
    match s.expect.signature.unwrap() {
        S::Keyless { identity, issuer } => {
            assert!(
                identity.matches("release@siderolabs.com") && !identity.matches("x@example.com")
            );
            assert_eq!(issuer, "https://accounts.google.com");
        }
        other => panic!("{other:?}"),
    }
    for bad in [
        "    key: ''\n",
        "    identity: a@b\n",
        "    key: k.pub\n    identity: a@b\n    issuer: https://i\n",
    ] {
        let e = err(&with(bad));
        assert!(
            e.contains("specs/x.yaml:8:") && e.contains("signature needs key"),
            "{bad}: {e}"
        );
    }
    let e = err(&with(
        "    identity: '^(unclosed$'\n    issuer: https://i\n",
    ));
    assert!(e.contains("signature.identity: invalid regex"), "{e}");
}

#[test]
fn an_installer_talos_no_longer_publishes_is_refused_at_its_place() {
    let spec = |base: &str| {
        format!("apiVersion: tdg/v1\nname: x\nimage: ghcr.io/a/b:v1\ntalos: v1.14.0\nexpect:\n  files:\n    - path: a/b\nbuild:\n  arch: arm64\n  base: {base}\n")
    };
    let e = err(&spec("ghcr.io/siderolabs/installer:v1.14.0"));
    assert!(
        e.starts_with(
            "specs/x.yaml:10:9: ghcr.io/siderolabs/installer is not published for Talos v1.14.0"
        ),
        "{e}"
    );
    for ok in [
        "ghcr.io/siderolabs/installer:v1.13.6",
        "ghcr.io/siderolabs/installer-base:v1.14.0",
        "ghcr.io/siderolabs/imager:v1.14.0",
    ] {
        load_str(Path::new("specs/x.yaml"), &spec(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn paths_with_a_nul_or_a_trailing_slash_and_ids_out_of_range_are_refused_at_their_place() {
    let e = err(&GOOD.replace("path: a/b", "path: \"a/b\\0c\""));
    assert!(
        e.starts_with("specs/x.yaml:6:7: path \"a/b\\0c\" holds a NUL byte"),
        "{e}"
    );
    let e = err(&GOOD.replace("path: a/b", "path: a/b/"));
    assert!(
        e.starts_with("specs/x.yaml:6:7: path 'a/b/' ends with '/'"),
        "{e}"
    );
    let e = err(&GOOD.replace("path: a/b", "path: a/b\n      owner: \"4294967296:0\""));
    assert!(
        e.starts_with("specs/x.yaml:7:14: invalid owner '4294967296:0'"),
        "{e}"
    );
    let e = err(&GOOD.replace("path: a/b", "path: a/b\n      owner: \"0:4294967295\""));
    assert!(e.contains("invalid owner"), "{e}");
    load_str(
        Path::new("specs/x.yaml"),
        &GOOD.replace("path: a/b", "path: a/b\n      owner: \"4294967294:0\""),
    )
    .unwrap();
}

/// The error catalogue, walked: every key the schema knows, at every depth, given each wrong
/// shape of value. Whatever the loader says, it says in YAML's words: never a Rust type name
/// (the schema's own `$defs` names included) nor serde's vocabulary.
#[test]
fn no_error_speaks_rust() {
    use serde_json::{json, Value};
    let schema: Value = serde_json::from_str(&super::json_schema()).unwrap();
    let defs = schema["$defs"].as_object().unwrap();
    let mut banned: Vec<String> = defs.keys().cloned().collect();
    banned.extend(
        [
            "enum",
            "struct",
            "untagged",
            "Option",
            "Vec",
            "String",
            "u64",
            "u32",
            "i64",
            "usize",
            "f64",
            "serde",
            "scalar",
            "newtype",
            "DuplicateKeyPolicy",
        ]
        .map(String::from),
    );
    let words = regex::Regex::new(r"[A-Za-z0-9_]+").unwrap();
    let resolve = |s: &Value| -> Value {
        let mut s = s.clone();
        // `$ref`, possibly under `allOf`/`anyOf`/`oneOf` (Option<T> and friends).
        for _ in 0..4 {
            if let Some(r) = s["$ref"].as_str() {
                s = defs[r.trim_start_matches("#/$defs/")].clone();
                continue;
            }
            let alt = ["allOf", "anyOf", "oneOf"].iter().find_map(|k| {
                s[*k].as_array().and_then(|a| {
                    a.iter()
                        .find(|x| x["$ref"].is_string() || x["properties"].is_object())
                        .cloned()
                })
            });
            match alt {
                Some(a) => s = a,
                None => break,
            }
        }
        s
    };
    // ("variant" stays allowed: it is OCI's word, `os/arch/variant`.)
    // Every key path, with `[]` for "the first item of this list".
    fn walk(
        s: &Value,
        path: &mut Vec<String>,
        out: &mut Vec<Vec<String>>,
        resolve: &dyn Fn(&Value) -> Value,
    ) {
        if path.len() > 8 {
            return;
        }
        let s = resolve(s);
        if let Some(props) = s["properties"].as_object() {
            for (k, v) in props {
                path.push(k.clone());
                out.push(path.clone());
                walk(v, path, out, resolve);
                path.pop();
            }
        }
        if s["items"].is_object() {
            path.push("[]".into());
            walk(&s["items"], path, out, resolve);
            path.pop();
        }
    }
    let mut paths = Vec::new();
    walk(&schema, &mut Vec::new(), &mut paths, &resolve);
    assert!(paths.len() > 80, "only {} key paths", paths.len());
    let base = json!({
        "apiVersion": "tdg/v1", "name": "x", "image": "ghcr.io/a/b:v1",
        "expect": {"files": [{"path": "a/b"}]}
    });
    fn set(v: &mut Value, path: &[String], to: Value) {
        let Some((first, rest)) = path.split_first() else {
            *v = to;
            return;
        };
        if first == "[]" {
            if !v.is_array() || v.as_array().unwrap().is_empty() {
                *v = json!([{}]);
            }
            set(&mut v[0], rest, to);
        } else {
            if !v.is_object() {
                *v = json!({});
            }
            set(
                v.as_object_mut()
                    .unwrap()
                    .entry(first.clone())
                    .or_insert(json!({})),
                rest,
                to,
            );
        }
    }
    let wrong = [
        json!("big"),
        json!(5),
        json!(-1),
        json!(true),
        json!([1]),
        json!({"zz": 1}),
        json!(null),
        json!(1.5),
    ];
    let mut said = 0;
    let mut bad = Vec::new();
    for p in &paths {
        for w in &wrong {
            let mut doc = base.clone();
            set(&mut doc, p, w.clone());
            let text = serde_json::to_string_pretty(&doc).unwrap();
            let Err(e) = load_str(Path::new("specs/x.yaml"), &text) else {
                continue;
            };
            said += 1;
            let m = e.message;
            for word in words.find_iter(&m).map(|w| w.as_str()) {
                if banned.iter().any(|b| b == word) {
                    bad.push(format!("{}: {w}: `{word}` in: {m}", p.join(".")));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} errors speak Rust:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(said > 300, "only {said} errors walked");
}

/// `signature: siderolabs` (and `build.signatures: siderolabs`) is the Image Factory's policy for
/// Sidero Labs' images, in one word.
#[test]
fn the_siderolabs_preset_is_the_image_factorys_policy() {
    use super::SignatureExpectation as S;
    let s = load_str(
        Path::new("specs/x.yaml"),
        &format!("{GOOD}  signature: siderolabs\n"),
    )
    .unwrap();
    let S::Keyless { identity, issuer } = s.expect.signature.unwrap() else {
        panic!("not keyless");
    };
    assert_eq!(issuer, "https://accounts.google.com");
    for (who, ok) in [
        ("albert.kostusev@siderolabs.com", true),
        (
            "releasemgr-svc@talos-production.iam.gserviceaccount.com",
            true,
        ),
        ("x@siderolabs.com.evil.example", false),
        (
            "releasemgr-svc@talos-production.iam.gserviceaccount.com.evil",
            false,
        ),
        (
            "evil-releasemgr-svc@talos-production.iam.gserviceaccount.com",
            false,
        ),
        ("someone@example.com", false),
    ] {
        assert_eq!(identity.matches(who), ok, "{who}");
    }
    let e = err(&format!("{GOOD}  signature: sidero\n"));
    assert!(e.contains("unknown value `sidero`"), "{e}");
}

/// "Checks nothing" is judged from `Expectations::sections`: every `expect` key the schema
/// knows is there, and the error names them all.
#[test]
fn checks_nothing_knows_every_expect_section() {
    let schema: serde_json::Value = serde_json::from_str(&crate::spec::json_schema()).unwrap();
    let mut keys: Vec<String> = schema["$defs"]["Expect"]["properties"]
        .as_object()
        .expect("Expect's properties")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    let e = err("apiVersion: tdg/v1\nname: x\nimage: ghcr.io/a/b:v1\nexpect: {}\n");
    for k in &keys {
        assert!(e.contains(k.as_str()), "the error does not name {k}: {e}");
    }
    let spec = crate::spec::load::load_str(
        std::path::Path::new("specs/x.yaml"),
        "apiVersion: tdg/v1\nname: x\nimage: ghcr.io/a/b:v1\nexpect: {absent: [a]}\n",
    )
    .unwrap();
    let mut listed: Vec<&str> = spec.expect.sections().iter().map(|(k, _)| *k).collect();
    listed.sort();
    assert_eq!(listed, keys);
}
