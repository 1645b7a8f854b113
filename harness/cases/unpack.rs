//! tdg's initramfs reader against the kernel's own unpacker (`init/initramfs.c`): hostile
//! cpio archives (hard links in either order, symlinked directories, duplicate names, `070702`
//! checksums good and bad, trailers, replaced and removed files, broken padding, truncated
//! segments) and seeded random mixes of them, each appended to a busybox base and booted on
//! the real zboot kernel `.ci/build-zboot` builds from Debian's `linux-source-6.1`. Its init
//! prints the `/extensions.yaml` and layer files the kernel left; `tdg inspect initramfs` must
//! see the same extensions, the same layer files, and stop where the kernel stops.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use tdg::imager::assemble::{compress, newc, FileSpec};
use tdg::talos::initramfs::Compression;
use tdg::talos::newc;

use super::cli::Tdg;
use crate::debian;

/// Prints what the kernel unpacked, then Talos's last line so `tdg boot` ends at once.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec >/dev/console 2>&1
echo TDG-UNPACK-BEGIN
if [ -f /extensions.yaml ]; then /bin/busybox cat /extensions.yaml; else echo TDG-NO-EXTENSIONS; fi
echo TDG-UNPACK-END
for n in spin tailscale zfs; do [ -f /$n.sqsh ] && echo "TDG-LAYER $n.sqsh"; done
echo "[talos] entering maintenance service"
/bin/busybox poweroff -f
"#;

const NAMES: [&str; 3] = ["spin", "tailscale", "zfs"];
const REG: u32 = 0o100644;

/// One newc entry with every field chosen.
fn entry(
    magic: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    name: &str,
    body: &[u8],
    check: u32,
) -> Vec<u8> {
    let h = newc::Header {
        crc: magic == "070702",
        ino,
        mode,
        nlink,
        check,
        ..Default::default()
    };
    newc::write_entry(&h, name.as_bytes(), body)
}

fn pad4(v: &mut Vec<u8>) {
    v.resize(v.len().next_multiple_of(4), 0);
}

fn file(name: &str, body: &[u8]) -> Vec<u8> {
    entry("070701", 0, REG, 1, name, body, 0)
}

fn crc(name: &str, body: &[u8], good: bool) -> Vec<u8> {
    let sum = newc::checksum(body);
    entry(
        "070702",
        0,
        REG,
        1,
        name,
        body,
        if good { sum } else { sum + 1 },
    )
}

fn trailer() -> Vec<u8> {
    entry("070701", 0, 0, 1, "TRAILER!!!", b"", 0)
}

/// `extensions.yaml` listing `names`, each layer at `/<name>.sqsh`.
fn yaml(names: &[&str]) -> Vec<u8> {
    let mut y = "layers:\n".to_string();
    for n in names {
        y += &format!(
            "  - image: {n}.sqsh\n    metadata:\n      name: {n}\n      version: v1.0.0\n"
        );
    }
    y.into_bytes()
}

/// A segment: entries, raw or compressed; `cut` drops that many bytes off its end.
struct Seg {
    entries: Vec<u8>,
    compression: Compression,
    cut: usize,
}

fn raw(entries: Vec<Vec<u8>>) -> Seg {
    Seg {
        entries: entries.concat(),
        compression: Compression::None,
        cut: 0,
    }
}

fn zst(entries: Vec<Vec<u8>>) -> Seg {
    Seg {
        compression: Compression::Zstd,
        ..raw(entries)
    }
}

fn base() -> Result<Vec<u8>> {
    let files = vec![
        FileSpec::dir("bin"),
        FileSpec::dir("dev"),
        FileSpec::file("bin/busybox", debian::busybox("arm64")?, 0o755),
        FileSpec::file("init", INIT, 0o755),
    ];
    compress(&newc(&files)?, Compression::Zstd, 3)
}

fn initrd(base: &[u8], segs: &[Seg]) -> Result<Vec<u8>> {
    let mut out = base.to_vec();
    for s in segs {
        // An uncompressed cpio starts on a 4-byte boundary of the whole initrd.
        pad4(&mut out);
        let mut bytes = match s.compression {
            Compression::None => s.entries.clone(),
            c => compress(&s.entries, c, 3)?,
        };
        bytes.truncate(bytes.len() - s.cut);
        out.extend(bytes);
    }
    Ok(out)
}

/// The named hostile cases.
fn hostile() -> Vec<(String, Vec<Seg>)> {
    let spin = yaml(&["spin"]);
    let both = yaml(&["spin", "tailscale"]);
    let c = |n: &str, segs: Vec<Seg>| (n.to_string(), segs);
    vec![
        c(
            "hard link, data in the later entry",
            vec![raw(vec![
                entry("070701", 101, REG, 2, "extensions.yaml", &spin, 0),
                entry("070701", 101, REG, 2, "zz", &both, 0),
            ])],
        ),
        c(
            "hard link, data first under another name",
            vec![raw(vec![
                entry("070701", 7, REG, 2, "zz", &both, 0),
                entry("070701", 7, REG, 2, "extensions.yaml", b"", 0),
            ])],
        ),
        c(
            "a trailer ends the link table",
            vec![raw(vec![
                entry("070701", 7, REG, 2, "zz", &both, 0),
                trailer(),
                entry("070701", 7, REG, 2, "extensions.yaml", &spin, 0),
            ])],
        ),
        c(
            "symlinked directory",
            vec![raw(vec![
                file("extensions.yaml", &spin),
                entry("070701", 0, 0o120777, 1, "d", b".", 0),
                file("d/extensions.yaml", &both),
            ])],
        ),
        c(
            "symlinked file",
            vec![zst(vec![
                file("real.yaml", &both),
                entry("070701", 0, 0o120777, 1, "extensions.yaml", b"real.yaml", 0),
            ])],
        ),
        c(
            "bad crc checksum",
            vec![raw(vec![
                crc("extensions.yaml", &spin, true),
                crc("extensions.yaml", &both, false),
                crc("spin.sqsh", b"x", true),
            ])],
        ),
        c(
            "good crc checksums",
            vec![raw(vec![
                crc("extensions.yaml", &both, true),
                crc("tailscale.sqsh", b"x", true),
            ])],
        ),
        c(
            "a later segment replaces the file",
            vec![
                zst(vec![
                    file("extensions.yaml", &spin),
                    file("spin.sqsh", b"s"),
                ]),
                zst(vec![file("extensions.yaml", &both)]),
            ],
        ),
        c(
            "a directory replaces the file",
            vec![raw(vec![
                file("extensions.yaml", &both),
                entry("070701", 0, 0o040755, 1, "extensions.yaml", b"", 0),
            ])],
        ),
        c(
            "a mode-0 entry removes the file",
            vec![raw(vec![
                file("extensions.yaml", &both),
                entry("070701", 0, 0, 1, "extensions.yaml", b"", 0),
            ])],
        ),
        c(
            "dot-dot stays at the root",
            vec![zst(vec![file("../../extensions.yaml", &both)])],
        ),
        c(
            "broken padding",
            vec![Seg {
                entries: [
                    file("extensions.yaml", &spin),
                    vec![0, 0],
                    file("extensions.yaml", &both),
                ]
                .concat(),
                compression: Compression::Zstd,
                cut: 0,
            }],
        ),
        c(
            "a listed layer that is not there",
            vec![raw(vec![
                file("extensions.yaml", &both),
                file("spin.sqsh", b"s"),
            ])],
        ),
        c(
            "a truncated compressed segment",
            vec![
                zst(vec![file("extensions.yaml", &spin)]),
                Seg {
                    entries: [file("extensions.yaml", &both), file("pad", &[7u8; 20000])].concat(),
                    compression: Compression::Zstd,
                    cut: 40,
                },
            ],
        ),
    ]
}

/// xorshift64*: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn set(&mut self) -> Vec<&'static str> {
        NAMES
            .iter()
            .copied()
            .filter(|_| self.below(2) == 1)
            .collect()
    }
}

/// Seeded mixes of the same moves.
fn generated(n: usize) -> Vec<(String, Vec<Seg>)> {
    let mut rng = Rng(0x7d6_1e5_u64.wrapping_mul(2_654_435_761));
    (0..n)
        .map(|i| {
            let mut segs = Vec::new();
            let mut moves = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let mut entries = Vec::new();
                for _ in 0..1 + rng.below(4) {
                    let y = yaml(&rng.set());
                    let ino = 50 + rng.below(3) as u32;
                    let (name, e) = match rng.below(9) {
                        0 => (
                            "link-first",
                            entry("070701", ino, REG, 2, "extensions.yaml", &y, 0),
                        ),
                        1 => (
                            "link-other",
                            entry("070701", ino, REG, 2, &format!("h{}", rng.below(2)), &y, 0),
                        ),
                        2 => (
                            "link-empty",
                            entry("070701", ino, REG, 2, "extensions.yaml", b"", 0),
                        ),
                        3 => ("dir-link", entry("070701", 0, 0o120777, 1, "d", b".", 0)),
                        4 => ("through-d", file("d/extensions.yaml", &y)),
                        5 => ("crc", crc("extensions.yaml", &y, rng.below(3) != 0)),
                        6 => ("trailer", trailer()),
                        7 => (
                            "layer",
                            file(&format!("{}.sqsh", NAMES[rng.below(3) as usize]), b"l"),
                        ),
                        _ => ("plain", file("extensions.yaml", &y)),
                    };
                    moves.push(name);
                    entries.push(e);
                }
                let compression = match rng.below(3) {
                    0 => Compression::None,
                    1 => Compression::Zstd,
                    _ => Compression::Gzip,
                };
                segs.push(Seg {
                    entries: entries.concat(),
                    compression,
                    cut: 0,
                });
            }
            (format!("generated {i}: {}", moves.join(" ")), segs)
        })
        .collect()
}

/// What one side saw: the extensions listed (`None`: no `/extensions.yaml`), the listed layers
/// present, and whether the unpack stopped early.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    extensions: Option<Vec<String>>,
    layers: Vec<String>,
    stopped: bool,
}

fn kernel_saw(log: &str) -> Result<Seen> {
    let (_, rest) = log
        .split_once("TDG-UNPACK-BEGIN")
        .context("no TDG-UNPACK-BEGIN")?;
    let (yaml, after) = rest
        .split_once("TDG-UNPACK-END")
        .context("no TDG-UNPACK-END")?;
    let yaml = yaml.replace('\r', "");
    let yaml = yaml.trim_start_matches('\n');
    let extensions = if yaml.trim() == "TDG-NO-EXTENSIONS" {
        None
    } else {
        let c = tdg::talos::extensions::parse_config(yaml)
            .with_context(|| format!("the kernel's extensions.yaml: {yaml:?}"))?;
        Some(c.layers.into_iter().map(|l| l.metadata.name).collect())
    };
    let listed: Vec<String> = extensions
        .iter()
        .flatten()
        .map(|n| format!("{n}.sqsh"))
        .collect();
    let layers = after
        .lines()
        .filter_map(|l| l.trim().strip_prefix("TDG-LAYER "))
        .map(String::from)
        .filter(|l| listed.contains(l))
        .collect();
    Ok(Seen {
        extensions,
        layers,
        stopped: log.contains("Initramfs unpacking failed"),
    })
}

fn tdg_saw(tdg: &Tdg, initrd: &Path) -> Result<Seen> {
    let out = tdg.run([
        "inspect",
        "initramfs",
        initrd.to_str().context("utf-8")?,
        "--format",
        "json",
    ])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("no JSON: {}", super::cli::text(&out)))?;
    let extensions = v["extensions"].as_object().map(|c| {
        c["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["metadata"]["name"].as_str().map(String::from))
            .collect()
    });
    let layers = v["layer_images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["problem"].as_str() != Some("is not in the initramfs"))
        .filter_map(|l| l["image"].as_str().map(String::from))
        .collect();
    Ok(Seen {
        extensions,
        layers,
        stopped: v.get("stopped").is_some(),
    })
}

fn boot(tdg: &Tdg, kernel: &Path, initrd: &Path, console: &Path) -> Result<String> {
    let out = tdg.run([
        "boot",
        "--kernel",
        kernel.to_str().context("utf-8")?,
        "--initrd",
        initrd.to_str().context("utf-8")?,
        "--arch",
        "arm64",
        "--timeout",
        "120s",
        "--console",
        console.to_str().context("utf-8")?,
    ])?;
    let log = std::fs::read_to_string(console).unwrap_or_default();
    ensure!(
        log.contains("TDG-UNPACK-END"),
        "the init printed nothing (exit {:?}): {}\n{log}",
        out.status.code(),
        super::cli::text(&out)
    );
    Ok(log)
}

pub fn tdg_reads_the_initramfs_the_kernel_unpacks() -> Result<()> {
    let (kernel, _) = debian::zboot_kernel()?;
    let base = base()?;
    let tmp = tempfile::tempdir()?;
    let cases: Vec<(String, Vec<Seg>)> = hostile().into_iter().chain(generated(16)).collect();
    let total = cases.len();
    let files: Vec<(String, PathBuf)> = cases
        .iter()
        .enumerate()
        .map(|(i, (name, segs))| {
            let p = tmp.path().join(format!("case{i}.img"));
            std::fs::write(&p, initrd(&base, segs)?)?;
            Ok((name.clone(), p))
        })
        .collect::<Result<_>>()?;
    // Two boots at a time: one per core.
    let results: Vec<Result<String>> = std::thread::scope(|scope| {
        let chunks: Vec<Vec<(usize, &(String, PathBuf))>> = (0..2)
            .map(|w| {
                files
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 2 == w)
                    .collect()
            })
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let kernel = kernel.clone();
                scope.spawn(move || -> Vec<(usize, Result<String>)> {
                    let tdg = match Tdg::new() {
                        Ok(t) => t,
                        Err(e) => return vec![(0, Err(e))],
                    };
                    chunk
                        .into_iter()
                        .map(|(i, (name, img))| {
                            let r = (|| {
                                let console = img.with_extension("log");
                                let log = boot(&tdg, &kernel, img, &console)?;
                                let k = kernel_saw(&log)?;
                                let t = tdg_saw(&tdg, img)?;
                                ensure!(k == t, "kernel {k:?}, tdg {t:?}");
                                Ok(format!("{name}: {k:?}"))
                            })();
                            (i, r.with_context(|| name.clone()))
                        })
                        .collect()
                })
            })
            .collect();
        let mut all: Vec<(usize, Result<String>)> = handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![(0, Err(anyhow::anyhow!("a boot thread panicked")))])
            })
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| format!("{e:#}")))
        .collect();
    ensure!(
        failed.is_empty(),
        "tdg and the kernel disagree on {} of {total} initramfs cases:\n{}",
        failed.len(),
        failed.join("\n")
    );
    ensure!(
        results.len() == total,
        "{} results for {total} cases",
        results.len()
    );
    Ok(())
}
