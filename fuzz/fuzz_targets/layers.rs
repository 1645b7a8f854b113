//! Tar layer streams through flattening: several layers, whiteouts, opaque markers, links,
//! GNU long names and PAX records. Members are built with valid checksums so mutations reach
//! the layer rules rather than stopping at the tar header; raw bytes are tried as well.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tdg::layers::flatten::{Flattener, Wanted};

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<Vec<u8>>),
    Built(Vec<Vec<Member>>),
}

#[derive(Arbitrary, Debug)]
struct Member {
    /// `0` file, `5` dir, `2` symlink, `1` hardlink, `L`/`K` GNU long names, `x`/`g` PAX, ...
    kind: u8,
    name: Name,
    link: Name,
    mode: u16,
    uid: u8,
    data: Vec<u8>,
}

/// Names from a small alphabet, so layers meet each other's paths.
#[derive(Arbitrary, Debug)]
enum Name {
    Pick(Vec<u8>),
    Bytes(Vec<u8>),
}

const PARTS: [&str; 12] = [
    "etc",
    "a",
    "b",
    ".wh.a",
    ".wh..wh..opq",
    "..",
    ".",
    ".wh.",
    "usr",
    "lib",
    ".wh.etc",
    "",
];

impl Name {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Name::Pick(p) => p
                .iter()
                .take(6)
                .map(|i| PARTS[*i as usize % PARTS.len()])
                .collect::<Vec<_>>()
                .join("/")
                .into_bytes(),
            Name::Bytes(b) => b.clone(),
        }
    }
}

fn member(m: &Member, out: &mut Vec<u8>) {
    let mut h = tar::Header::new_gnu();
    let name = m.name.bytes();
    let link = m.link.bytes();
    h.as_old_mut().name[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    h.as_old_mut().linkname[..link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    h.set_mode(m.mode as u32);
    h.set_uid(m.uid as u64);
    h.set_entry_type(tar::EntryType::new(m.kind));
    // Special members carry their payload: a long name, or PAX records.
    let data = match m.kind {
        b'L' | b'K' if m.data.is_empty() => name.clone(),
        b'x' if m.data.is_empty() => format!(
            "{} path={}\n",
            8 + name.len(),
            String::from_utf8_lossy(&name)
        )
        .into_bytes(),
        _ => m.data.clone(),
    };
    h.set_size(data.len() as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(&data);
    out.resize(out.len().next_multiple_of(512), 0);
}

fuzz_target!(|input: Input| {
    let layers: Vec<Vec<u8>> = match input {
        Input::Raw(l) => l,
        Input::Built(l) => l
            .iter()
            .map(|ms| {
                let mut t = Vec::new();
                ms.iter().for_each(|m| member(m, &mut t));
                t.extend([0u8; 1024]);
                t
            })
            .collect(),
    };
    let mut f = Flattener::new(Wanted::Nothing, None);
    for (i, l) in layers.iter().take(8).enumerate() {
        if f.apply_tar(&mut &l[..], &format!("layer {i}")).is_err() {
            return;
        }
    }
    // Whatever flattened is a tree: clean relative paths, every entry's parents directories.
    // (A `.wh.` name may survive as a parent directory: containerd and umoci read only an
    // entry's last component as a whiteout, and create `a/.wh.b/c` as it is.)
    let tree = f.finish().tree;
    for (path, _) in tree.iter() {
        assert!(
            !path.is_empty() && !path.starts_with('/') && !path.ends_with('/'),
            "{path:?}"
        );
        assert!(
            !path
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty()),
            "{path:?}"
        );
        if let Some((parent, _)) = path.rsplit_once('/') {
            let p = tree
                .get(parent)
                .unwrap_or_else(|| panic!("{path:?} has no parent"));
            assert_eq!(p.kind, tdg::layers::tree::Kind::Dir, "parent of {path:?}");
        }
    }
});
