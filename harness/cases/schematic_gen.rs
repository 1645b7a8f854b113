//! Schematics for the go-yaml v4 comparison: generated ones (a fixed seed, so every run compares
//! the same 3000) and hand-written ones for the syntax a generator does not write.

/// SplitMix64: the same schematics on every run, no crate needed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
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
    if r.chance(0.1) {
        top.insert("owner".into(), atom(r).into());
    }
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
/// with non-string keys, and values go-yaml v4 refuses.
pub const HAND_WRITTEN: &[&str] = &[
    // Found by the schematic fuzz target: `\L` (U+2028) escapes, which go-yaml v4 writes raw
    // into a single-quoted scalar. tdg's canonical bytes are Go's; tdg refuses the raw form
    // when read back (its known strictness on YAML 1.1 breaks, allowed for below).
    "{\"customization\":{\"systemExtensions\":{\"officialExtensions\":[\"siderolabs/zfs\"]},\"extraKernelArgs\":[\"'onsole=t\\L\\\\officiq\\L\\\\offiaic otyS066666666666\"]}}",
    "customization:\n    extraKernelArgs:\n        - '''onsole=t\u{2028}          \\officiq\u{2028}          \\offiaic otyS066666666666'\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/zfs\n",
    // Found by the schematic fuzz target: a string of line breaks loses one on each pass
    // through go-yaml v4 (a literal block with keep chomping), so canonical bytes read back to
    // other bytes; tdg matches go-yaml v4 on the input and on its canonical form.
    "{\"customization\":{\"systemExtensions\":{\"officialExtensions\":[\"siderola-  \n-\n  - \r\r- -  \n\n&#ata\r\rbs/zfs\"]},\"extraKernelArgs\":[\"\n\n\n\n\n\"]}}",
    "customization:\n    extraKernelArgs:\n        - |4+\n\n\n\n    systemExtensions:\n        officialExtensions:\n            - |-\n              siderola- - -\n              - -\n              &#ata\n              bs/zfs\n",
    // Found by the schematic fuzz target: CRs inside quoted scalars. go-yaml v4's canonical form
    // of it cannot be read back (by go-yaml v4 either); the ID must still be go-yaml v4's.
    "{\"customization\":{\"systemExtensions\":{\"officialExtensions\":[\"\r\nderola-  \n-\n  - \r\r- -  \n-\n  - \n-\n  - \r\r- -0 \n-\n  -   \r\r\r\r\r- -\r\r\r\r-   \r\r\rbs/zfs\"]},\"extraKernelArgs\":[\"console=\r\r- -\r\r\r\r-ttyS -)\n^-\n-\"]}}",
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
    // Where go-yaml v4 (the factory's pin) reads or writes otherwise than yaml.v3 did.
    "%YAML 1.2\n---\ncustomization: {}\n",
    "%YAML 1.1\n---\ncustomization: {}\n",
    "{}\n---\ncustomization: {extraKernelArgs: [a]}\n",
    "customization: {}\n---\n[: not yaml\n",
    "customization: {}\n...\n",
    "customization: {extraKernelArgs: [!x a, !x 1, !local true]}\n",
    "customization: !x {extraKernelArgs: !y [a]}\n",
    "customization: {meta: [{key: !x 3, value: x}]}\n",
    "customization: {secureboot: {includeWellKnownCertificates: !x yes}}\n",
    "overlay: {options: {a: !x 1, b: !x true, c: !x [1]}}\n",
    "customization: {extraKernelArgs: [y, n, off, On, 'yes', \"NO\", '1:20', '<<']}\n",
    "customization: {extraKernelArgs: [\"\\nlead\", \"\\n\", \"\\n\\n\", \" \\n \", \"\\n\\nx\\n\"]}\n",
    "customization: {diskImage: {sectorSize: 512.5}}\n",
    "customization: {diskImage: {sectorSize: 512.0}}\n",
    "customization: {diskImage: {sectorSize: -0}}\n",
    "customization: {extraKernelArgs: [2001-12-14]}\n",
    "customization: {extraKernelArgs: ['2001-12-14', 1.5, .inf, -0]}\n",
    "overlay: {options: {z: -0, y: -0.0, x: 0}}\n",
    "customization: {extraKernelArgs: [\"a\u{7f}b\", \"\u{9b}\"]}\n",
    "customization:\u{85}  extraKernelArgs: [a\u{85}  , b]\n",
    "customization: {extraKernelArgs: [\"a\u{85}b\", 'c\u{85}d']}\n",
];

/// Characters YAML 1.1 reads as line breaks and YAML 1.2 as text: tdg refuses them raw.
pub fn has_yaml11_break(s: &str) -> bool {
    s.contains(['\u{2028}', '\u{2029}'])
}

/// `n` schematics, alternately as JSON and as block YAML.
pub fn generate(n: usize) -> Vec<String> {
    let mut r = Rng(0x7d9_5eed);
    (0..n)
        .map(|i| {
            let v = schematic(&mut r);
            if i % 2 == 0 {
                v.to_string()
            } else {
                let mut y = String::new();
                yaml(&v, 0, &mut y);
                y
            }
        })
        .collect()
}
