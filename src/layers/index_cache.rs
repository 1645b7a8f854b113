//! The warm-run cache: a flattened image's tree index, kept by manifest digest, so a second
//! `tdg verify` or `tdg tree` of the same image reads no layer again.
//!
//! `<cache>/trees/sha256/<hex>` holds an index document named by its own sha256;
//! `<cache>/trees/manifests/<manifest hex>` names the document for a manifest. A document is
//! written only after a flatten that read and verified every layer (digest and diff_id); one
//! whose bytes miss their name, or that names another manifest, is removed and rebuilt.
//! A manifest digest pins its layers, and the layers pin the tree, so the key is sufficient.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::tree::{Entry, Kind, Tree};
use crate::digest::Digest;

/// The document's format; a change makes older documents misses, never misreads.
const FORMAT: &str = "tdg-tree-index/1";

/// A tree index is bounded by the tree's own entry cap; this bounds the read before parsing.
const MAX_DOCUMENT: u64 = 1 << 30;

pub struct TreeCache {
    root: PathBuf,
}

/// The document as read back: records go straight into the tree as they are parsed, so the
/// whole document is never in memory twice (bytes and records) beside the tree.
#[derive(serde::Deserialize)]
struct Document {
    format: String,
    manifest: String,
    #[serde(deserialize_with = "read_entries")]
    entries: Tree,
    /// `Tree::symlink_links`; absent in indexes written before it existed.
    #[serde(default)]
    symlink_links: BTreeMap<String, String>,
}

/// The document as written, borrowing the tree: records are made one at a time.
#[derive(serde::Serialize)]
struct Written<'a> {
    format: &'static str,
    manifest: String,
    entries: Records<'a>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    symlink_links: &'a BTreeMap<String, String>,
}

struct Records<'a>(&'a Tree);

impl serde::Serialize for Records<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(p, e)| Record {
            p: p.into(),
            k: e.kind.letter(),
            m: e.mode,
            u: e.uid,
            g: e.gid,
            s: e.size,
            d: e.sha256.as_ref().map(|d| d.to_string()),
            l: e.link.map(Into::into),
            v: e.device,
        }))
    }
}

/// One entry, in short keys: a tree of a million entries stays a reasonable file.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    p: std::borrow::Cow<'a, str>,
    k: char,
    m: u32,
    u: u64,
    g: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    l: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<(u32, u32)>,
}

fn read_entries<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Tree;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("tree records")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut tree = Tree::default();
            while let Some(r) = seq.next_element::<Record<'_>>()? {
                let (path, entry) =
                    entry_of(r).ok_or_else(|| serde::de::Error::custom("an unsound record"))?;
                tree.insert(&path, entry);
            }
            Ok(tree)
        }
    }
    d.deserialize_seq(V)
}

fn entry_of(r: Record<'_>) -> Option<(String, Entry)> {
    let kind = Kind::from_letter(r.k)?;
    let sha256 = r.d.map(|d| d.parse::<Digest>()).transpose().ok()?;
    if kind.has_content() != (sha256.is_some() && r.s.is_some()) {
        return None;
    }
    let entry = Entry {
        kind,
        mode: r.m,
        uid: r.u,
        gid: r.g,
        size: r.s,
        sha256,
        link: r.l.map(|l| l.into_owned()),
        device: r.v,
    };
    Some((r.p.into_owned(), entry))
}

impl TreeCache {
    pub fn new(cache_root: &Path) -> Self {
        TreeCache {
            root: cache_root.join("trees"),
        }
    }

    fn pointer(&self, manifest: &Digest) -> PathBuf {
        self.root.join("manifests").join(manifest.hex())
    }

    fn document(&self, d: &Digest) -> PathBuf {
        self.root.join("sha256").join(d.hex())
    }

    /// The tree of `manifest`, when a sound index of it is cached. Anything unsound (a
    /// missing or corrupt document, a pointer to another manifest's) is removed and is a miss.
    pub fn load(&self, manifest: &Digest) -> Option<Tree> {
        let pointer = self.pointer(manifest);
        let named = crate::located::read_bounded(&pointer, 100).ok()?;
        let tree = std::str::from_utf8(&named)
            .ok()
            .and_then(|s| s.trim().parse::<Digest>().ok())
            .and_then(|d| self.read(&d, manifest));
        if tree.is_none() {
            let _ = std::fs::remove_file(&pointer);
        }
        tree
    }

    fn read(&self, d: &Digest, manifest: &Digest) -> Option<Tree> {
        let path = self.document(d);
        let tree = crate::located::open_regular(&path)
            .ok()
            .and_then(|f| decode(f, d, manifest));
        if tree.is_none() {
            let _ = std::fs::remove_file(&path);
        }
        tree
    }

    /// Keeps `tree` as the index of `manifest`. Best effort: a cache that cannot be written
    /// costs the next run time, never correctness.
    pub fn store(&self, manifest: &Digest, tree: &Tree, tmp: &Path) {
        let _ = self.try_store(manifest, tree, tmp);
    }

    fn try_store(&self, manifest: &Digest, tree: &Tree, tmp: &Path) -> std::io::Result<()> {
        // Written as it is encoded, named by the digest of what was written.
        let doc = tempfile::NamedTempFile::new_in(tmp)?;
        let mut w = crate::digest::HashingWriter::new(std::io::BufWriter::new(doc));
        encode(manifest, tree, &mut w)?;
        std::io::Write::flush(&mut w)?;
        let (d, _) = w.hasher.finish();
        let doc = w.inner.into_inner().map_err(|e| e.into_error())?;
        let pointer = {
            let mut f = tempfile::NamedTempFile::new_in(tmp)?;
            std::io::Write::write_all(&mut f, format!("{d}\n").as_bytes())?;
            f
        };
        for (dir, name, file) in [
            (self.root.join("sha256"), d.hex().to_string(), doc),
            (
                self.root.join("manifests"),
                manifest.hex().to_string(),
                pointer,
            ),
        ] {
            std::fs::create_dir_all(&dir)?;
            file.persist(dir.join(name)).map_err(|e| e.error)?;
        }
        Ok(())
    }
}

fn encode(manifest: &Digest, tree: &Tree, w: &mut impl std::io::Write) -> std::io::Result<()> {
    let doc = Written {
        format: FORMAT,
        manifest: manifest.to_string(),
        entries: Records(tree),
        symlink_links: &tree.symlink_links,
    };
    serde_json::to_writer(w, &doc).map_err(std::io::Error::other)
}

/// The tree `file` holds, when it is sound: at most [`MAX_DOCUMENT`] bytes hashing to `name`,
/// of this format and for `manifest`. Parsed as it is read, and verified as it is read.
fn decode(file: std::fs::File, name: &Digest, manifest: &Digest) -> Option<Tree> {
    let len = file.metadata().ok()?.len();
    if len > MAX_DOCUMENT {
        return None;
    }
    let mut reader = crate::digest::VerifyingReader::new(
        std::io::BufReader::with_capacity(256 << 10, file),
        name.clone(),
        len,
        "tree index",
    );
    let doc: Document = serde_json::from_reader(&mut reader).ok()?;
    // The name is the whole file's digest: what follows the document counts too.
    reader.finish().ok()?;
    if doc.format != FORMAT || doc.manifest != manifest.to_string() {
        return None;
    }
    let mut tree = doc.entries;
    tree.symlink_links = doc.symlink_links;
    Some(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::default();
        t.insert("etc", Entry::implicit_dir());
        t.insert(
            "etc/motd",
            Entry {
                kind: Kind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: Some(2),
                sha256: Some(Digest::of(b"hi")),
                link: None,
                device: None,
            },
        );
        t.insert(
            "etc/link",
            Entry {
                kind: Kind::Symlink,
                mode: 0o777,
                uid: 1,
                gid: 2,
                size: None,
                sha256: None,
                link: Some("/motd\n".into()),
                device: None,
            },
        );
        t.insert(
            "dev/null",
            Entry {
                kind: Kind::Char,
                mode: 0o666,
                uid: 0,
                gid: 0,
                size: None,
                sha256: None,
                link: None,
                device: Some((1, 3)),
            },
        );
        t
    }

    #[test]
    fn an_index_reads_back_as_stored_and_only_for_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TreeCache::new(dir.path());
        let m = Digest::of(b"manifest");
        cache.store(&m, &sample(), dir.path());
        assert_eq!(cache.load(&m), Some(sample()));
        assert_eq!(cache.load(&Digest::of(b"other")), None);
    }

    #[test]
    fn a_corrupt_or_misnamed_index_is_a_miss_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TreeCache::new(dir.path());
        let m = Digest::of(b"manifest");
        cache.store(&m, &sample(), dir.path());
        let named = std::fs::read_to_string(cache.pointer(&m)).unwrap();
        let doc = cache.document(&named.trim().parse().unwrap());
        // One byte changed: the document no longer hashes to its name.
        let mut bytes = std::fs::read(&doc).unwrap();
        let at = bytes.iter().position(|b| *b == b'6').unwrap();
        bytes[at] = b'7';
        std::fs::write(&doc, &bytes).unwrap();
        assert_eq!(cache.load(&m), None);
        assert!(!doc.exists() && !cache.pointer(&m).exists());

        // A sound document of another manifest, pointed at by this one's pointer.
        let other = Digest::of(b"other");
        cache.store(&other, &sample(), dir.path());
        std::fs::copy(cache.pointer(&other), cache.pointer(&m)).unwrap();
        assert_eq!(cache.load(&m), None);
        assert_eq!(cache.load(&other), None, "the misused document is gone too");
    }
}
