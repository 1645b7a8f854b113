//! Flattening checked against umoci: the same image, pushed by skopeo, listed by `tdg tree` and
//! unpacked by `umoci unpack`, must agree on every path, type, mode, owner, size and content.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};

use tdg::digest::Digest;
use tdg::layers::flatten::Wanted;
use tdg::oci::image::Flavor;

use crate::fixtures::{self, run};
use crate::registry::Registry;
use crate::world;

/// `tdg tree` lines with hardlinks written as the regular files they are on disk.
fn tdg_listing(tree: &str) -> BTreeMap<String, String> {
    tree.lines()
        .map(|l| {
            let l = match l.strip_prefix("h ") {
                Some(rest) => format!("f {}", rest.split(" => ").next().unwrap_or(rest)),
                None => l.to_string(),
            };
            let path = l.split(' ').nth(5).unwrap_or("").to_string();
            (path, l)
        })
        .collect()
}

/// The same format, read from a directory umoci unpacked.
fn disk_listing(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let p = e.path();
            let rel = p.strip_prefix(root)?.to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p)?;
            let ft = m.file_type();
            let (t, size, sha, suffix) = if ft.is_dir() {
                stack.push(p.clone());
                ('d', "-".to_string(), "-".to_string(), String::new())
            } else if ft.is_symlink() {
                (
                    'l',
                    "-".into(),
                    "-".into(),
                    format!(" -> {}", std::fs::read_link(&p)?.display()),
                )
            } else if ft.is_file() {
                (
                    'f',
                    m.len().to_string(),
                    Digest::of(&std::fs::read(&p)?).hex().to_string(),
                    String::new(),
                )
            } else if ft.is_char_device() || ft.is_block_device() {
                let rdev = m.rdev();
                let (ma, mi) = (libc::major(rdev), libc::minor(rdev));
                (
                    if ft.is_char_device() { 'c' } else { 'b' },
                    "-".into(),
                    "-".into(),
                    format!(" = {ma}:{mi}"),
                )
            } else {
                ('p', "-".into(), "-".into(), String::new())
            };
            let mode = if ft.is_symlink() {
                0o777
            } else {
                m.mode() & 0o7777
            };
            out.insert(
                rel.clone(),
                format!(
                    "{t} {mode:04o} {}:{} {size} {sha} {rel}{suffix}",
                    m.uid(),
                    m.gid()
                ),
            );
        }
    }
    Ok(out)
}

fn umoci_unpack(registry: &Registry, repo: &str, work: &Path) -> Result<BTreeMap<String, String>> {
    let layout = work.join("pulled");
    run(Command::new("skopeo")
        // Debian's umoci reads no zstd layers: skopeo recompresses them as gzip on the way,
        // which changes the blobs but not one byte of the tree they hold.
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-compress",
            "--dest-compress-format=gzip",
        ])
        .arg(format!("docker://{}/{repo}", registry.addr))
        .arg(format!("oci:{}:t", layout.display())))?;
    let bundle = work.join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle))?;
    disk_listing(&bundle.join("rootfs"))
}

fn tdg_tree(registry: &Registry, repo: &str) -> Result<String> {
    let tmp = tempfile::tempdir()?;
    let env = tdg::pull::Env::new(
        tdg::oci::mirror::Mirrors::default(),
        tdg::oci::cache::BlobCache::open(tmp.path())?,
    );
    let image = format!("{}/{repo}", registry.addr).parse()?;
    let pulled = tokio::runtime::Runtime::new()?.block_on(tdg::pull::pull(
        &env,
        &image,
        None,
        Wanted::Nothing,
    ))?;
    Ok(pulled.flat.tree.listing())
}

fn compare(ours: &BTreeMap<String, String>, theirs: &BTreeMap<String, String>) -> Result<()> {
    let mut diffs = Vec::new();
    for (p, l) in ours {
        match theirs.get(p) {
            Some(t) if t == l => {}
            Some(t) => diffs.push(format!("  tdg:   {l}\n  umoci: {t}")),
            None => diffs.push(format!("  only in tdg:   {l}")),
        }
    }
    for (p, t) in theirs {
        if !ours.contains_key(p) {
            diffs.push(format!("  only in umoci: {t}"));
        }
    }
    ensure!(
        diffs.is_empty(),
        "tdg tree and umoci unpack disagree:\n{}",
        diffs.join("\n")
    );
    Ok(())
}

/// The whiteout fixture as an OCI layout (tag `t`) under `dir`.
fn whiteout_layout(dir: &Path, platform: &str) -> Result<std::path::PathBuf> {
    let layout = dir.join("src");
    fixtures::layout_image(
        &layout,
        "t",
        &fixtures::whiteout_layers(),
        platform,
        &Default::default(),
        Flavor::Oci,
    )?;
    Ok(layout)
}

/// The whiteout fixture, pushed by skopeo, listed identically by tdg and umoci.
pub fn tree_matches_umoci_unpack_of_skopeo_pushed_image() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let layout = whiteout_layout(tmp.path(), "linux/amd64")?;
    fixtures::push_with_skopeo(
        &layout,
        "t",
        &format!("{}/fixtures/whiteouts:skopeo", w.registry.addr),
    )?;
    let tree = tdg_tree(&w.registry, "fixtures/whiteouts:skopeo")?;
    // The cases the fixture exists for, stated outright so a vacuous match cannot pass.
    for (present, path) in [
        (false, "etc/a"),
        (true, "etc/b"),
        (false, "opq/old"),
        (false, "opq/sub"),
        (true, "opq/new"),
        (false, "del"),
        (false, "recreate/old"),
        (true, "recreate/new"),
        (true, "dir2file/again"),
        (false, "dir2file/child"),
        (true, "file2dir/inner"),
        (true, "usr/lib/libx.so"),
        (false, "lib/libx.so"),
        (true, "dev/null"),
    ] {
        let found = tree.lines().any(|l| l.split(' ').nth(5) == Some(path));
        ensure!(
            found == present,
            "{path} should {}be in the tree:\n{tree}",
            if present { "" } else { "not " }
        );
    }
    ensure!(
        !tree.contains(".wh."),
        "a whiteout marker leaked into the tree:\n{tree}"
    );
    let theirs = umoci_unpack(&w.registry, "fixtures/whiteouts:skopeo", tmp.path())?;
    compare(&tdg_listing(&tree), &theirs)
}

/// An image tdg pushed reads back in skopeo and umoci exactly as tdg lists it.
pub fn tdg_pushed_image_reads_back_in_skopeo_and_umoci() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("src");
    let digest = fixtures::layout_image(
        &layout,
        "t",
        &fixtures::whiteout_layers(),
        "linux/arm64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let pushed = fixtures::push_with_tdg(
        &layout,
        "t",
        &format!("{}/fixtures/whiteouts:tdg", w.registry.addr),
    )?;
    ensure!(pushed == digest, "pushed {pushed}, layout has {digest}");
    let inspect = fixtures::output(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!(
                "docker://{}/fixtures/whiteouts:tdg",
                w.registry.addr
            )),
    )?;
    let v: serde_json::Value = serde_json::from_str(&inspect)?;
    ensure!(
        v["Digest"] == digest.to_string(),
        "skopeo sees digest {}, tdg pushed {digest}",
        v["Digest"]
    );
    ensure!(
        v["Architecture"] == "arm64",
        "skopeo sees architecture {}",
        v["Architecture"]
    );
    let tree = tdg_tree(&w.registry, "fixtures/whiteouts:tdg")?;
    compare(
        &tdg_listing(&tree),
        &umoci_unpack(&w.registry, "fixtures/whiteouts:tdg", tmp.path())?,
    )
}

/// `tdg export` writes the same tree umoci does, and a symlink pointing outside cannot carry a
/// later entry out of the target directory.
pub fn export_matches_tree_and_stays_inside_the_directory() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("src");
    let mut layers = fixtures::whiteout_layers();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside)?;
    layers.push((
        vec![
            tdg::oci::image::TarEntry::symlink("escape", outside.to_str().context("utf-8")?),
            tdg::oci::image::TarEntry::symlink("up", "../../../.."),
        ],
        tdg::oci::manifest::Compression::Gzip,
    ));
    layers.push((
        vec![
            tdg::oci::image::TarEntry::file("escape/pwned", "x", 0o644),
            tdg::oci::image::TarEntry::file("up/pwned2", "y", 0o644),
        ],
        tdg::oci::manifest::Compression::Gzip,
    ));
    fixtures::layout_image(
        &layout,
        "t",
        &layers,
        "linux/amd64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let dest = tmp.path().join("export");
    let out = Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", tmp.path().join("cache"))
        .arg("export")
        .arg(format!("oci:{}:t", layout.display()))
        .arg(&dest)
        .output()?;
    ensure!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        std::fs::read_dir(&outside)?.next().is_none(),
        "export wrote outside its directory"
    );
    ensure!(
        !tmp.path().join("pwned2").exists(),
        "export wrote outside its directory"
    );
    ensure!(
        dest.join(outside.strip_prefix("/")?)
            .join("pwned")
            .is_file(),
        "the entry should land under the export root"
    );
    let tree = Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", tmp.path().join("cache"))
        .arg("tree")
        .arg(format!("oci:{}:t", layout.display()))
        .output()?;
    compare(
        &tdg_listing(&String::from_utf8(tree.stdout)?),
        &disk_listing(&dest)?,
    )
}

/// A config whose `rootfs.diff_ids` do not match the layers is refused, as umoci refuses it
/// ("diffid mismatch"); so are whiteouts of `.` and `..`, which would empty the tree.
pub fn diff_id_mismatch_and_dot_whiteouts_are_refused_like_umoci() -> Result<()> {
    use tdg::oci::image::{Layer, TarEntry as E};
    use tdg::oci::manifest::Compression;
    let tmp = tempfile::tempdir()?;
    let tdg_tree_of = |layout: &Path| {
        Command::new(env!("CARGO_BIN_EXE_tdg"))
            .env("TDG_CACHE", tmp.path().join("cache"))
            .arg("tree")
            .arg(format!("oci:{}:t", layout.display()))
            .output()
    };
    // Zeroed diff_ids, written the way the fixtures write images; a plain tar layer too, whose
    // diff_id tdg reads as its (verified) blob digest rather than hashing it again.
    let zero: Digest = format!("sha256:{}", "0".repeat(64)).parse()?;
    for (name, c) in [("plain", Compression::None), ("diff", Compression::Gzip)] {
        let layout = tmp.path().join(name);
        let mut layer = Layer::new(&[E::file("a", "x", 0o644)], c, Flavor::Oci)?;
        layer.diff_id = zero.clone();
        fixtures::one_layer_layout(&layout, "t", layer)?;
        let err = super::cli::expect_exit(&tdg_tree_of(&layout)?, 2)?;
        ensure!(
            err.contains("is not the config's diff_id") && err.contains(&zero.to_string()),
            "{name}: {err}"
        );
    }
    let layout = tmp.path().join("diff");
    let bundle = tmp.path().join("bundle");
    let umoci = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle)
        .output()?;
    ensure!(!umoci.status.success(), "umoci accepted the zeroed diff_id");
    // `.wh..` at the root would have deleted everything below it.
    let layout = tmp.path().join("dots");
    fixtures::layout_image(
        &layout,
        "t",
        &[
            (
                vec![E::dir("etc", 0o755), E::file("etc/keep", "1", 0o644)],
                Compression::Gzip,
            ),
            (vec![E::file("etc/.wh...", "", 0o644)], Compression::Gzip),
        ],
        "linux/amd64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let err = super::cli::expect_exit(&tdg_tree_of(&layout)?, 2)?;
    ensure!(
        err.contains("etc/.wh...") && err.contains("names no file"),
        "{err}"
    );
    Ok(())
}

/// Which paths share an inode, as sorted groups of two or more.
fn inode_groups(root: &Path) -> Result<Vec<Vec<String>>> {
    let mut by_inode: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let p = e?.path();
            let m = std::fs::symlink_metadata(&p)?;
            if m.is_dir() {
                stack.push(p.clone());
                continue;
            }
            let rel = p.strip_prefix(root)?.to_string_lossy().into_owned();
            by_inode.entry(m.ino()).or_default().push(rel);
        }
    }
    let mut groups: Vec<Vec<String>> = by_inode
        .into_values()
        .filter(|g| g.len() > 1)
        .map(|mut g| {
            g.sort();
            g
        })
        .collect();
    groups.sort();
    Ok(groups)
}

/// Hard links as tar and umoci keep them: named before their target, chained across layers
/// (layer 1 `c`; layer 2 `a`, `c` → `a`, `x` → `c`), to a symlink and to a link to one. And an
/// export that fails partway leaves neither the directory nor a temporary beside it.
pub fn exports_keep_hard_links_as_umoci_does() -> Result<()> {
    use tdg::oci::image::TarEntry as E;
    use tdg::oci::manifest::Compression::Gzip;
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("src");
    let layers = vec![
        (
            vec![E::file("c", "old c", 0o644), E::file("z", "zz", 0o600)],
            Gzip,
        ),
        (
            vec![
                E::file("a", "new a", 0o644),
                E::hardlink("c", "a"),
                E::hardlink("x", "c"),
                E::hardlink("b", "z"),
                E::symlink("s", "a"),
                E::hardlink("hs", "s"),
                E::hardlink("hhs", "hs"),
            ],
            Gzip,
        ),
    ];
    fixtures::layout_image(
        &layout,
        "t",
        &layers,
        "linux/amd64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let dest = tmp.path().join("out/export");
    let tdg = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_tdg"))
            .env("TDG_CACHE", tmp.path().join("cache"))
            .args(args)
            .output()
    };
    let src = std::ffi::OsString::from(format!("oci:{}:t", layout.display()));
    let out = tdg(&["export".as_ref(), &src, dest.as_os_str()])?;
    ensure!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle))?;
    let theirs = bundle.join("rootfs");
    compare(&disk_listing(&dest)?, &disk_listing(&theirs)?)?;
    let (ours, umoci) = (inode_groups(&dest)?, inode_groups(&theirs)?);
    ensure!(
        ours == umoci,
        "shared inodes: tdg {ours:?}, umoci {umoci:?}"
    );
    ensure!(
        ours.iter().any(|g| g == &["a", "c", "x"]) && ours.iter().any(|g| g == &["hhs", "hs", "s"]),
        "{ours:?}"
    );

    // The destination changed under the export: `b` swapped for a symlink to a directory
    // outside, at a fixed point (the test hook pauses before `b/zz`). The write through it
    // fails instead of landing outside, and the failed export leaves nothing behind.
    let racy = tmp.path().join("racy");
    fixtures::layout_image(
        &racy,
        "t",
        &[(
            vec![
                E::file("a", "first", 0o644),
                E::dir("b", 0o755),
                E::file("b/zz", "must not escape", 0o644),
            ],
            Gzip,
        )],
        "linux/amd64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside)?;
    let fifo = tmp.path().join("go");
    run(Command::new("mkfifo").arg(&fifo))?;
    let parent = tmp.path().join("failed");
    let failed = parent.join("export");
    let child = Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", tmp.path().join("cache"))
        .env("TDG_TEST_EXPORT_PAUSE", format!("b/zz:{}", fifo.display()))
        .arg("export")
        .arg(format!("oci:{}:t", racy.display()))
        .arg(&failed)
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let start = std::time::Instant::now();
    let b = loop {
        let staged = std::fs::read_dir(&parent)
            .ok()
            .and_then(|mut d| d.find_map(|e| e.ok()))
            .map(|e| e.path().join("b"));
        if let Some(b) = staged.filter(|b| b.is_dir()) {
            break b;
        }
        ensure!(
            start.elapsed().as_secs() < 60,
            "the export never reached b/"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    std::fs::rename(&b, b.with_extension("orig"))?;
    std::os::unix::fs::symlink(&outside, &b)?;
    std::fs::write(&fifo, b"go")?;
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(2) && err.contains("/b"),
        "exit {:?}: {err}",
        out.status.code()
    );
    ensure!(
        std::fs::read_dir(&outside)?.next().is_none(),
        "the export wrote through the swapped directory"
    );
    let left: Vec<_> = std::fs::read_dir(&parent)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    ensure!(left.is_empty(), "a failed export left {left:?}");
    Ok(())
}

/// 2,000 nested directories and 20,000 files at depth 2,000 (paths of 4,000 bytes): `tdg tree`
/// lists them all. Each entry's path is resolved once, at the cost of its own length, so this
/// takes seconds; the old walk, quadratic in the depth, took ten minutes on it. The time is
/// measured in the benchmark; here it only has to finish.
pub fn a_deep_tree_is_listed_in_linear_time() -> Result<()> {
    use tdg::oci::image::TarEntry as E;
    let tmp = tempfile::tempdir()?;
    let mut entries = Vec::with_capacity(22_000);
    let mut dir = String::new();
    for _ in 0..2000 {
        if !dir.is_empty() {
            dir.push('/');
        }
        dir.push('d');
        entries.push(E::dir(&dir, 0o755));
    }
    for i in 0..20_000 {
        entries.push(E::file(&format!("{dir}/f{i}"), "", 0o644));
    }
    let layout = tmp.path().join("deep");
    fixtures::layout_image(
        &layout,
        "t",
        &[(entries, tdg::oci::manifest::Compression::Gzip)],
        "linux/amd64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", tmp.path().join("cache"))
        .arg("tree")
        .arg(format!("oci:{}:t", layout.display()))
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut out = child.stdout.take().context("stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
    });
    // A generous bound for a debug build on a busy machine: the point is that it ends.
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > std::time::Duration::from_secs(600) {
            child.kill()?;
            anyhow::bail!("tdg tree did not finish in 600 s on a 2,000-deep tree");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let listing = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    ensure!(status.success(), "exit {status:?}");
    ensure!(
        listing.lines().count() == 22_000,
        "{} lines",
        listing.lines().count()
    );
    Ok(())
}

/// Layers are read side by side, each judging what to keep by its paths as the tar writes
/// them. The whiteout fixture's second layer writes `lib/libx.so`, which lands on
/// `usr/lib/libx.so` through the first layer's `lib -> usr/lib`: `tdg verify` of a spec that
/// checks `usr/lib/libx.so`'s text passes (the pull reads the layers again one by one to keep
/// it), cold and then warm, and a wrong text fails.
pub fn a_file_reached_through_a_lower_layers_symlink_is_checked() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let layout = whiteout_layout(tmp.path(), "linux/amd64")?;
    let image = format!("{}/fixtures/through-symlink:t", w.registry.addr);
    fixtures::push_with_tdg(&layout, "t", &image)?;
    let verify = |text: &str| -> Result<std::process::Output> {
        let spec = tmp.path().join("spec.yaml");
        std::fs::write(
            &spec,
            format!("apiVersion: tdg/v1\nname: through-symlink\nimage: {image}\nexpect:\n  files:\n    - path: usr/lib/libx.so\n      contains: [\"{text}\"]\n"),
        )?;
        Ok(Command::new(env!("CARGO_BIN_EXE_tdg"))
            .env("TDG_CACHE", tmp.path().join("cache"))
            .env("DOCKER_CONFIG", tmp.path())
            .env_remove("TDG_MIRROR")
            .arg("verify")
            .arg(&spec)
            .output()?)
    };
    for run in ["cold", "warm"] {
        let out = verify("through the lib symlink")?;
        ensure!(
            out.status.code() == Some(0),
            "{run}: exit {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = verify("something else")?;
    ensure!(
        out.status.code() == Some(1),
        "a wrong text: exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
