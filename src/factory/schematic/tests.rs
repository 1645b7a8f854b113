//! The IDs the factory's own tests and the Talos docs publish, and one derived case for every
//! field (canonical bytes checked against go-yaml v4's output for the same input; the harness
//! compares many more with the Go library itself).

use std::path::Path;

use super::{Bootloader, Schematic, EMPTY_ID};

fn parse(text: &str) -> Schematic {
    Schematic::parse(Path::new("s.yaml"), text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn id(text: &str) -> String {
    parse(text).id()
}

fn error(text: &str) -> String {
    let e = Schematic::parse(Path::new("s.yaml"), text).expect_err(text);
    format!("{}:{}: {}", e.line, e.column, e.message)
}

#[test]
fn published_ids() {
    // From the facts file, image-factory's pkg/schematic tests and its integration tests.
    let cases = [
        ("customization: {}", EMPTY_ID),
        ("{}", EMPTY_ID),
        ("customization: {\"extraKernelArgs\": []}", EMPTY_ID),
        (
            "customization:\n  extraKernelArgs: [noapic, nolapic]",
            "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c",
        ),
        (
            r#"{"customization": {"extraKernelArgs": ["noapic", "nolapic"], "systemExtensions": {}}}"#,
            "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c",
        ),
        (
            "customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/gvisor]",
            "d9ff89777e246792e7642abd3220a616afb4e49822382e4213a2e528ab826fe5",
        ),
        (
            r#"{"customization": {"meta": [{"key": 10, "value": "foo"}], "extraKernelArgs": [], "systemExtensions": {}}}"#,
            "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f",
        ),
        (
            r#"{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"}}"#,
            "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9",
        ),
        (
            r#"{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"},"customization":{}}"#,
            "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9",
        ),
        (
            r#"{"customization":{"secureboot": {"includeWellKnownCertificates": true}}}"#,
            "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6",
        ),
        (
            r#"{"customization":{"diskImage": {"sectorSize": 4096}}}"#,
            "92833e9ddd9bb9e11b2464fa5525429f01866306d52ebd882ee08d7918f6d1ea",
        ),
        (
            "customization:\n  extraKernelArgs:\n    - nolapic\n    - nomodeset\n",
            "e0fb1129bbbdfb5d002e94af4cdce712a8370e850950a33a242d4c3f178c532d",
        ),
        (
            "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/amd-ucode\n      - siderolabs/gvisor\n      - siderolabs/gasket-driver\n",
            "51ff3e49313773332729a5c04e57af0dbe2e6d3f65ff638e6d4c3a05065fefff",
        ),
        (
            "customization:\n  meta:\n    - key: 0xa\n      value: '{\"externalIPs\":[\"1.2.3.4\"]}'\n",
            "fe866116408a5a13dab7d5003eb57a00954ea81ebeec3fbbcd1a6d4462a00036",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(id(text), want, "{text}");
    }
}

#[test]
fn the_empty_schematic_is_18_bytes() {
    assert_eq!(
        parse("customization: {}").canonical(),
        "customization: {}\n"
    );
    assert_eq!(parse("~").canonical(), "customization: {}\n");
    assert_eq!(parse("---\n").canonical(), "customization: {}\n");
}

#[test]
fn extension_order_is_kept() {
    let a = id("customization: {systemExtensions: {officialExtensions: [siderolabs/spin, siderolabs/tailscale]}}");
    let b = id("customization: {systemExtensions: {officialExtensions: [siderolabs/tailscale, siderolabs/spin]}}");
    assert_ne!(a, b, "the factory does not sort, so neither may tdg");
}

/// Each field once, with the bytes go-yaml v4 writes for it.
#[test]
fn every_field_in_canonical_form() {
    let text = r#"
overlay:
  name: rpi_generic
  image: ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0
  options: {b: [1, 1.0, 1e6, "yes", ~], a: {"10": x, "9": "y"}, c: 2001-12-14}
owner: alice
customization:
  embeddedMachineConfiguration: |
    version: v1alpha1
    machine: {type: worker}
  diskImage: {sectorSize: 4096}
  secureboot: {includeWellKnownCertificates: yes, enrollKeys: if-safe}
  bootloader: SD-Boot
  systemExtensions: {officialExtensions: [siderolabs/spin]}
  meta: [{key: 0x0a, value: "{}"}]
  extraKernelArgs: [console=ttyS0, "talos.platform=metal", 10]
"#;
    // The factory's field order (image-factory pkg/schematic/schematic.go): owner first, and
    // embeddedMachineConfiguration first in customization.
    let want = r#"owner: alice
overlay:
    image: ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0
    name: rpi_generic
    options:
        a:
            "9": 'y'
            "10": x
        b:
            - 1
            - 1
            - 1e+06
            - 'yes'
            - null
        c: 2001-12-14T00:00:00Z
customization:
    embeddedMachineConfiguration: |
        version: v1alpha1
        machine: {type: worker}
    extraKernelArgs:
        - console=ttyS0
        - talos.platform=metal
        - "10"
    meta:
        - key: 10
          value: '{}'
    systemExtensions:
        officialExtensions:
            - siderolabs/spin
    bootloader: sd-boot
    secureboot:
        enrollKeys: if-safe
        includeWellKnownCertificates: true
    diskImage:
        sectorSize: 4096
"#;
    assert_eq!(parse(text).canonical(), want);
}

#[test]
fn strings_are_quoted_as_go_yaml_v4_quotes_them() {
    let args = |list: &str| {
        let c = parse(&format!("customization: {{extraKernelArgs: {list}}}")).canonical();
        c.lines()
            .skip(2)
            .map(|l| l.trim_start()[2..].to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        args(
            r##"["", " x", "a: b", "a #b", "#x", "-", "- x", "true", "~", "on", "1:20", "0x1F", "1e400", "it's", "tab\tx", "😀", "\u0001"]"##
        ),
        [
            r#""""#,
            "' x'",
            "'a: b'",
            "'a #b'",
            "'#x'",
            "'-'",
            "'- x'",
            r#""true""#,
            r#""~""#,
            // YAML 1.1 booleans and base-60 numbers: single quotes (v4 `stringv`).
            r#"'on'"#,
            r#"'1:20'"#,
            r#""0x1F""#,
            "1e400",
            "it's",
            r#""tab\tx""#,
            r#""\U0001F600""#,
            r#""\x01""#,
        ]
    );
    let c = parse(r#"customization: {extraKernelArgs: ["a\nb", "a\nb\n", "a\n\n", "\nx"]}"#)
        .canonical();
    assert_eq!(
        c,
        "customization:\n    extraKernelArgs:\n        - |-\n          a\n          b\n        - |\n          a\n          b\n        - |+\n          a\n\n        - |-\n\n          x\n",
        "go-yaml v4 writes a leading newline as the empty first line it is"
    );
}

#[test]
fn go_decoding_rules() {
    // Null items are dropped from typed lists; null fields are zero; `yes` is a bool.
    assert_eq!(
        id("customization: {meta: [~], extraKernelArgs: [~]}"),
        EMPTY_ID
    );
    assert_eq!(
        id("customization: {secureboot: {includeWellKnownCertificates: no}}"),
        EMPTY_ID
    );
    assert_eq!(
        id("customization: {secureboot: {includeWellKnownCertificates: yes}}"),
        "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6"
    );
    // `none` is the bootloader's zero value; names match in any case.
    assert_eq!(id("customization: {bootloader: None}"), EMPTY_ID);
    assert_eq!(
        parse("customization: {bootloader: GRUB}")
            .customization
            .bootloader,
        Bootloader::Grub
    );
    // Go's integer syntax, and whole floats into integers (go-yaml v4 refuses 10.9).
    for key in ["10", "0xa", "0o12", "012", "0b1010", "1_0", "10.0", "1e1"] {
        let s = parse(&format!(
            "customization: {{meta: [{{key: {key}, value: foo}}]}}"
        ));
        assert_eq!(s.customization.meta[0].key, 10, "{key}");
    }
    assert!(error("customization: {meta: [{key: 10.9, value: foo}]}").contains("`10.9` into uint8"));
    // A string field takes the scalar's text as written, and a local tag's; not a timestamp.
    let s = parse("customization: {extraKernelArgs: [0x10, 1_0, true, !x 1.5]}");
    assert_eq!(
        s.customization.extra_kernel_args,
        ["0x10", "1_0", "true", "1.5"]
    );
    assert!(error("customization: {extraKernelArgs: [2001-12-14]}").contains("!!timestamp"));
    // The first document only, as `Decoder.Decode` reads; `%YAML 1.1` only.
    assert_eq!(
        id("customization: {}\n---\ncustomization: {extraKernelArgs: [a]}"),
        EMPTY_ID
    );
    assert_eq!(id("%YAML 1.1\n---\ncustomization: {}"), EMPTY_ID);
    assert!(error("%YAML 1.2\n---\ncustomization: {}").contains("incompatible YAML document"));
    // A local tag on a collection is ignored; negative zero is a float.
    assert_eq!(
        id("customization: !x {extraKernelArgs: !y [noapic, nolapic]}"),
        "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"
    );
    assert!(parse("overlay: {options: {z: -0}}")
        .canonical()
        .contains("z: -0\n"));
    // DEL and C1 controls are characters to go-yaml's reader.
    assert!(
        parse("customization: {extraKernelArgs: [\"a\u{7f}\u{9b}\"]}")
            .canonical()
            .contains(r#""a\x7F\x9B""#)
    );
}

#[test]
fn bad_input_is_an_error_at_its_place() {
    assert_eq!(
        error("something:"),
        "1:1: field something not found in type schematic.Schematic"
    );
    assert_eq!(
        error("customization:\n  systemExtension:\n    officialExtensions: [x]"),
        "2:3: field systemExtension not found in type schematic.Customization"
    );
    assert!(error("customization: {}\ncustomization: {}")
        .starts_with("2:1: mapping key \"customization\" already defined at line 1"));
    assert!(error("customization: {meta: [{key: 256, value: x}]}")
        .contains("cannot unmarshal !!int `256` into uint8"));
    assert!(error("customization: {meta: [{key: '1', value: x}]}")
        .contains("cannot unmarshal !!str `1` into uint8"));
    assert!(error("customization: {bootloader: lilo}")
        .contains("bootloader 'lilo' is not one of none, dual-boot, sd-boot, grub"));
    assert!(error("customization: {extraKernelArgs: a}")
        .contains("cannot unmarshal !!str `a` into []string"));
    assert!(
        error("customization: {secureboot: {includeWellKnownCertificates: 1}}")
            .contains("into bool")
    );
    assert!(error("customization: [").contains("1:"));
    assert!(error("").contains("empty schematic"));
    assert!(error("a: &a [*a]").contains("1:"));
    assert!(error("customization: {extraKernelArgs: !!set {a}}").contains("tag"));
    assert!(error("customization: {extraKernelArgs: [\"\\ud83d\\ude00\"]}").contains("surrogate"));
    assert!(error("customization: {extraKernelArgs: [\"a\u{2028}b\"]}").contains("U+2028"));
    assert!(error(r#"{"customization": {"extraKernelArgs": ["a\/b"]}}"#).contains("not an escape"));
    assert!(error("overlay: {options: {<<: {a: 1}}}").contains("merge keys"));
}

#[test]
fn aliases_expand_and_bombs_stop() {
    assert_eq!(
        id("overlay: {image: &i x, name: *i}\ncustomization: {extraKernelArgs: [*i]}"),
        id("overlay: {image: x, name: x}\ncustomization: {extraKernelArgs: [x]}")
    );
    let mut bomb =
        String::from("overlay:\n  options:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..6 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb += &format!("    a{i}: &a{i} [{refs}]\n");
    }
    assert!(
        error(&bomb).contains("more than 100000 YAML nodes"),
        "{}",
        error(&bomb)
    );
}
