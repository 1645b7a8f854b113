//! Round trip: a tree tdg packages is the tree it flattens back. Once through the fixtures'
//! tar writer (modes, owners, symlinks, long names), once through the build's package stage
//! (a directory streamed through gzip into an OCI layout, read back by digest).
#![no_main]
use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tdg::layers::flatten::{Flattener, Wanted};
use tdg::layers::tree::Kind;
use tdg::oci::image::{tar_bytes, TarEntry};

#[derive(Arbitrary, Debug)]
struct Item {
    /// Directory components (from a small set, so paths share parents), then a leaf.
    dirs: Vec<u8>,
    leaf: Leaf,
    mode: u16,
    uid: u16,
    long: bool,
}

#[derive(Arbitrary, Debug)]
enum Leaf {
    File(Vec<u8>),
    Dir,
    Symlink(String),
}

const DIRS: [&str; 5] = [
    "etc",
    "usr",
    "lib",
    "a-directory-name-long-enough-to-need-a-gnu-long-name-when-repeated",
    "x",
];

/// The expected tree: path -> (kind, mode, uid, content).
type Model = BTreeMap<String, (Kind, u32, u64, Option<Vec<u8>>)>;

fn model(items: &[Item]) -> (Vec<TarEntry>, Model) {
    let mut entries = Vec::new();
    let mut want = Model::new();
    for (i, it) in items.iter().take(64).enumerate() {
        let mut parts: Vec<String> = it
            .dirs
            .iter()
            .take(8)
            .map(|d| DIRS[*d as usize % DIRS.len()].to_string())
            .collect();
        if it.long {
            parts.push("l".repeat(200));
        }
        // Leaves are named by index, so no leaf is ever another entry's directory.
        let (path, entry, kind, content) = match &it.leaf {
            Leaf::Dir if !parts.is_empty() => {
                let p = parts.join("/");
                (p.clone(), TarEntry::dir(&p, 0), Kind::Dir, None)
            }
            Leaf::Dir => continue,
            Leaf::File(data) => {
                parts.push(format!("f{i}"));
                let p = parts.join("/");
                (
                    p.clone(),
                    TarEntry::file(&p, data.clone(), 0),
                    Kind::File,
                    Some(data.clone()),
                )
            }
            Leaf::Symlink(t) if !t.is_empty() && !t.contains('\0') && t.len() < 1000 => {
                parts.push(format!("s{i}"));
                let p = parts.join("/");
                (
                    p.clone(),
                    TarEntry::symlink(&p, t),
                    Kind::Symlink,
                    Some(t.clone().into_bytes()),
                )
            }
            Leaf::Symlink(_) => continue,
        };
        if want.contains_key(&path) {
            continue;
        }
        let mode = (it.mode & 0o7777) as u32;
        let entry = TarEntry { mode, ..entry }.owned(it.uid as u64, 0);
        for (n, _) in path.match_indices('/') {
            want.entry(path[..n].to_string())
                .or_insert((Kind::Dir, 0o755, 0, None));
        }
        want.insert(path, (kind, mode, it.uid as u64, content));
        entries.push(entry);
    }
    (entries, want)
}

fn check(tree: &tdg::layers::tree::Tree, want: &Model, with_owner: bool) {
    let got: Vec<String> = tree.iter().map(|(p, _)| p).collect();
    let expected: Vec<String> = want.keys().cloned().collect();
    assert_eq!(got, expected);
    for (path, (kind, mode, uid, content)) in want {
        let e = tree.get(path).unwrap_or_else(|| panic!("{path} missing"));
        assert_eq!(e.kind, *kind, "{path}");
        if with_owner {
            assert_eq!((e.mode, e.uid), (*mode, *uid), "{path}");
        }
        match (kind, content) {
            (Kind::File, Some(c)) => {
                assert_eq!(e.size, Some(c.len() as u64), "{path}");
                assert_eq!(
                    e.sha256.as_ref(),
                    Some(&tdg::digest::Digest::of(c)),
                    "{path}"
                );
            }
            (Kind::Symlink, Some(t)) => {
                assert_eq!(e.link.as_deref().map(str::as_bytes), Some(&t[..]), "{path}")
            }
            _ => {}
        }
    }
}

fuzz_target!(|input: (Vec<Item>, bool)| {
    let (items, packaged) = input;
    let (entries, want) = model(&items);
    if !packaged {
        let tar = tar_bytes(&entries, 0).expect("tdg writes its own entries");
        let mut f = Flattener::new(Wanted::Nothing, None);
        f.apply_tar(&mut &tar[..], "layer")
            .expect("tdg reads what it writes");
        check(&f.finish().tree, &want, true);
        return;
    }
    // The package stage takes files and directories from disk (mode 0644/0755, owner 0).
    let want: Model = want
        .into_iter()
        .filter(|(_, (k, ..))| *k != Kind::Symlink)
        .map(|(p, (k, _, _, c))| (p, (k, if k == Kind::Dir { 0o755 } else { 0o644 }, 0, c)))
        .collect();
    let stage = tempfile::tempdir().unwrap();
    for (p, (k, _, _, c)) in &want {
        let at = stage.path().join(p);
        match k {
            Kind::Dir => std::fs::create_dir_all(&at).unwrap(),
            _ => {
                std::fs::create_dir_all(at.parent().unwrap()).unwrap();
                std::fs::write(&at, c.as_deref().unwrap_or_default()).unwrap();
            }
        }
    }
    let layout = tempfile::tempdir().unwrap();
    let out = tdg::oci::layout::LayoutWriter::create(layout.path()).unwrap();
    let (desc, diff_id) = tdg::build::package::layer(&out, stage.path(), 0).unwrap();
    let diff_id: tdg::digest::Digest = diff_id.parse().unwrap();
    let desc: tdg::oci::manifest::Descriptor = serde_json::from_value(desc).unwrap();
    let blob = layout.path().join("blobs/sha256").join(desc.digest.hex());
    let mut f = Flattener::new(Wanted::Nothing, None);
    f.apply_blob(&blob, &desc, false, Some(&diff_id))
        .expect("tdg reads the layer it packaged");
    check(&f.finish().tree, &want, true);
});
