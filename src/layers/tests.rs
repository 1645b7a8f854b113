//! The OCI layer rules, one behaviour per test, on in-memory tars.

use super::flatten::{Flattener, Wanted};
use super::tree::{Kind, Tree};
use crate::oci::image::{tar_bytes, TarEntry as E};

fn flatten(layers: &[Vec<E>]) -> anyhow::Result<Tree> {
    let mut f = Flattener::new(Wanted::Nothing, None);
    for l in layers {
        let tar = tar_bytes(l, 0)?;
        f.apply_tar(&mut &tar[..], "layer")?;
    }
    Ok(f.finish().tree)
}

fn paths(t: &Tree) -> Vec<String> {
    t.iter().map(|(p, _)| p).collect()
}

#[test]
fn whiteout_deletes_lower_file_and_marker_never_appears() {
    let t = flatten(&[
        vec![
            E::dir("etc", 0o755),
            E::file("etc/a", "1", 0o644),
            E::file("etc/b", "2", 0o644),
        ],
        vec![E::whiteout("etc/a")],
    ])
    .unwrap();
    assert_eq!(paths(&t), ["etc", "etc/b"]);
}

#[test]
fn whiteout_of_directory_removes_its_subtree() {
    let t = flatten(&[
        vec![
            E::dir("d", 0o755),
            E::dir("d/s", 0o755),
            E::file("d/s/x", "x", 0o644),
        ],
        vec![E::whiteout("d")],
    ])
    .unwrap();
    assert!(t.is_empty(), "{:?}", paths(&t));
}

#[test]
fn whiteout_applies_to_lower_layers_only() {
    // The same layer recreates the path after deleting the lower one.
    let t = flatten(&[
        vec![E::file("f", "old", 0o644)],
        vec![E::file("f", "new", 0o600), E::whiteout("f")],
    ])
    .unwrap();
    assert_eq!(t.get("f").unwrap().mode, 0o600);
}

#[test]
fn opaque_marker_after_sibling_keeps_sibling() {
    let t = flatten(&[
        vec![
            E::dir("o", 0o755),
            E::file("o/old", "1", 0o644),
            E::dir("o/sub", 0o755),
            E::file("o/sub/old2", "2", 0o644),
        ],
        vec![
            E::dir("o", 0o700),
            E::file("o/new", "3", 0o644),
            E::opaque("o"),
        ],
    ])
    .unwrap();
    assert_eq!(paths(&t), ["o", "o/new"]);
    assert_eq!(t.get("o").unwrap().mode, 0o700);
}

#[test]
fn opaque_marker_without_directory_entry_keeps_lower_attributes() {
    let t = flatten(&[
        vec![E::dir("o", 0o751), E::file("o/old", "1", 0o644)],
        vec![E::opaque("o")],
    ])
    .unwrap();
    assert_eq!(paths(&t), ["o"]);
    assert_eq!(t.get("o").unwrap().mode, 0o751);
}

#[test]
fn deleted_then_recreated_directory_does_not_bring_back_old_children() {
    let t = flatten(&[
        vec![E::dir("r", 0o755), E::file("r/old", "1", 0o644)],
        vec![
            E::whiteout("r"),
            E::dir("r", 0o755),
            E::file("r/new", "2", 0o644),
        ],
    ])
    .unwrap();
    assert_eq!(paths(&t), ["r", "r/new"]);
}

#[test]
fn directory_replaced_by_file_and_back() {
    let t = flatten(&[
        vec![E::dir("x", 0o755), E::file("x/child", "1", 0o644)],
        vec![E::file("x", "now a file", 0o644)],
        vec![E::dir("x", 0o755), E::file("x/new", "2", 0o644)],
    ])
    .unwrap();
    assert_eq!(paths(&t), ["x", "x/new"]);
    assert_eq!(t.get("x").unwrap().kind, Kind::Dir);
}

#[test]
fn directory_over_directory_keeps_children_and_takes_new_attributes() {
    let t = flatten(&[
        vec![E::dir("d", 0o755), E::file("d/a", "1", 0o644)],
        vec![E::dir("d", 0o700).owned(5, 6)],
    ])
    .unwrap();
    let d = t.get("d").unwrap();
    assert_eq!((d.mode, d.uid, d.gid), (0o700, 5, 6));
    assert!(t.get("d/a").is_some());
}

#[test]
fn file_written_through_symlinked_parent_lands_at_the_target() {
    let t = flatten(&[
        vec![
            E::dir("usr", 0o755),
            E::dir("usr/lib", 0o755),
            E::symlink("lib", "usr/lib"),
        ],
        vec![E::file("lib/x.so", "so", 0o755)],
    ])
    .unwrap();
    assert!(t.get("usr/lib/x.so").is_some());
    assert!(t.get("lib/x.so").is_none());
}

#[test]
fn absolute_and_dotdot_symlinks_stay_inside_the_root() {
    let t = flatten(&[
        vec![
            E::symlink("evil", "/../../tmp/outside"),
            E::symlink("up", "../../.."),
        ],
        vec![E::file("evil/x", "1", 0o644), E::file("up/y", "2", 0o644)],
    ])
    .unwrap();
    assert!(t.get("tmp/outside/x").is_some(), "{:?}", paths(&t));
    assert!(t.get("y").is_some(), "{:?}", paths(&t));
}

#[test]
fn dotdot_entry_names_are_refused() {
    let err = flatten(&[vec![E::file("../x", "1", 0o644)]]).unwrap_err();
    assert!(
        format!("{err:#}").contains("escape the image root"),
        "{err:#}"
    );
}

#[test]
fn hardlink_shares_content_and_survives_target_replacement() {
    let t = flatten(&[
        vec![E::file("a", "data", 0o640), E::hardlink("b", "a")],
        vec![E::file("a", "changed", 0o644)],
    ])
    .unwrap();
    let b = t.get("b").unwrap();
    assert_eq!((b.kind, b.size, b.mode), (Kind::Hardlink, Some(4), 0o640));
    assert_eq!(b.link.as_deref(), Some("a"));
    assert_eq!(t.get("a").unwrap().size, Some(7));
}

#[test]
fn hardlink_to_missing_target_is_an_error() {
    let err = flatten(&[vec![E::hardlink("b", "nope")]]).unwrap_err();
    assert!(format!("{err:#}").contains("not in the image"), "{err:#}");
}

#[test]
fn same_path_twice_in_a_layer_is_an_error() {
    let err = flatten(&[vec![E::file("a", "1", 0o644), E::file("a", "2", 0o644)]]).unwrap_err();
    assert!(format!("{err:#}").contains("twice"), "{err:#}");
}

#[test]
fn bare_whiteout_is_an_error() {
    let err = flatten(&[vec![E::file("d/.wh.", "", 0o644)]]).unwrap_err();
    assert!(format!("{err:#}").contains("bare whiteout"), "{err:#}");
}

#[test]
fn missing_parents_are_created_as_directories() {
    let t = flatten(&[vec![E::file("a/b/c", "1", 0o644)]]).unwrap();
    assert_eq!(paths(&t), ["a", "a/b", "a/b/c"]);
    assert_eq!(t.get("a/b").unwrap().kind, Kind::Dir);
}

#[test]
fn listing_format() {
    let t = flatten(&[vec![
        E::dir("d", 0o755),
        E::file("d/f", "hello", 0o644).owned(1000, 100),
        E::symlink("d/l", "f"),
        E::hardlink("d/h", "d/f"),
        E {
            path: "d/null".into(),
            body: crate::oci::image::Body::Char(1, 3),
            mode: 0o644,
            uid: 0,
            gid: 0,
        },
    ]])
    .unwrap();
    let out = t.listing();
    let lines: Vec<&str> = out.lines().collect();
    let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    assert_eq!(lines[0], "d 0755 0:0 - - d");
    assert_eq!(lines[1], format!("f 0644 1000:100 5 {sha} d/f"));
    assert_eq!(lines[2], format!("h 0644 1000:100 5 {sha} d/h => d/f"));
    assert_eq!(lines[3], "l 0777 0:0 - - d/l -> f");
    assert_eq!(lines[4], "c 0644 0:0 - - d/null = 1:3");
}

#[test]
fn empty_numeric_fields_read_as_zero_like_go() {
    let mut h = tar::Header::new_gnu();
    h.set_path("f").unwrap();
    h.set_size(1);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.as_old_mut().uid = [0; 8];
    h.as_old_mut().gid = [0; 8];
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let mut f = Flattener::new(Wanted::Nothing, None);
    f.apply_tar(&mut &tar[..], "layer").unwrap();
    let e = f.finish().tree.get("f").unwrap().clone();
    assert_eq!((e.uid, e.gid, e.mode), (0, 0, 0o644));
}

#[test]
fn garbage_numeric_fields_are_errors() {
    let mut h = tar::Header::new_gnu();
    h.set_path("f").unwrap();
    h.set_size(0);
    h.set_mode(0o644);
    h.as_old_mut().uid = *b"zz\0\0\0\0\0\0";
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b""[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let mut f = Flattener::new(Wanted::Nothing, None);
    let err = f.apply_tar(&mut &tar[..], "layer").unwrap_err();
    assert!(format!("{err:#}").contains("bad uid"), "{err:#}");
}

#[test]
fn whiteouts_of_dot_and_dotdot_are_refused_not_applied() {
    // `.wh..`, `.wh...` and `etc/.wh...` emptied the whole lower tree (issue 15).
    for marker in [".wh..", ".wh...", "etc/.wh...", "etc/.wh.."] {
        let err = flatten(&[
            vec![E::dir("etc", 0o755), E::file("etc/a", "1", 0o644)],
            vec![E::file(marker, "", 0o644)],
        ])
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("names no file") && msg.contains(marker),
            "{msg}"
        );
    }
}

/// One raw 512-byte header block of `kind` for `name` with `size` bytes, then its data.
fn raw_member(kind: u8, name: &str, data: &[u8], claimed: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_size(claimed);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend(data);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

/// PAX records, each `<len> <key>=<value>\n` with `len` counting itself.
fn pax(recs: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in recs {
        let body = format!(" {k}={v}\n");
        let mut n = body.len() + 1;
        while format!("{n}{body}").len() != n {
            n += 1;
        }
        b.extend(format!("{n}{body}").bytes());
    }
    b
}

fn apply_raw(tar: Vec<u8>) -> anyhow::Result<Tree> {
    let mut tar = tar;
    tar.extend([0u8; 1024]);
    let mut f = Flattener::new(Wanted::Nothing, None);
    f.apply_tar(&mut &tar[..], "layer")?;
    Ok(f.finish().tree)
}

#[test]
fn special_records_over_a_mebibyte_are_refused_before_reading_them() {
    // A 1 GiB GNU long name took 6.4 GB; the size is refused from the header alone.
    for kind in [b'L', b'K', b'x', b'g'] {
        let err = apply_raw(raw_member(kind, "././@LongLink", b"", 1 << 30)).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("over the 1048576-byte limit"), "{msg}");
    }
}

#[test]
fn long_names_and_pax_records_apply_with_pax_winning() {
    let long = format!("{}/f", "d".repeat(200));
    let mut tar = raw_member(
        b'L',
        "././@LongLink",
        format!("{long}\0").as_bytes(),
        long.len() as u64 + 1,
    );
    tar.extend(raw_member(b'0', "short", b"x", 1));
    let recs = pax(&[("path", "p/real"), ("uid", "1234")]);
    tar.extend(raw_member(b'L', "././@LongLink", b"gnu-name\0", 9));
    tar.extend(raw_member(b'x', "PaxHeader", &recs, recs.len() as u64));
    tar.extend(raw_member(b'0', "header-name", b"y", 1));
    // A global header is skipped, as moby's and containerd's appliers do.
    let global = pax(&[("comment", "git archive")]);
    tar.extend(raw_member(
        b'g',
        "pax_global_header",
        &global,
        global.len() as u64,
    ));
    let t = apply_raw(tar).unwrap();
    assert_eq!(paths(&t), ["d".repeat(200).as_str(), &long, "p", "p/real"]);
    assert_eq!(t.get("p/real").unwrap().uid, 1234);
}

#[test]
fn paths_longer_than_linux_allows_and_dangling_headers_are_refused() {
    let deep = "a/".repeat(3000) + "f";
    let recs = pax(&[("path", &deep)]);
    let mut tar = raw_member(b'x', "PaxHeader", &recs, recs.len() as u64);
    tar.extend(raw_member(b'0', "f", b"", 0));
    let msg = format!("{:#}", apply_raw(tar).unwrap_err());
    assert!(msg.contains("PATH_MAX") && msg.contains("bytes)"), "{msg}");
    let name = "n".repeat(300);
    let mut tar = raw_member(b'L', "././@LongLink", name.as_bytes(), 300);
    tar.extend(raw_member(b'0', "f", b"", 0));
    let msg = format!("{:#}", apply_raw(tar).unwrap_err());
    assert!(msg.contains("NAME_MAX"), "{msg}");
    let msg = format!(
        "{:#}",
        apply_raw(raw_member(b'L', "././@LongLink", b"x\0", 2)).unwrap_err()
    );
    assert!(msg.contains("describes no entry"), "{msg}");
}

#[test]
fn symlink_targets_round_trip_byte_for_byte() {
    // Found by the layers_roundtrip fuzz target: the tar crate wrote a target of `/` as `//`.
    let long = format!("/{}/x", "t".repeat(150));
    let targets = ["/", "a//b/", "../..", long.as_str()];
    let entries: Vec<E> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| E::symlink(&format!("s{i}"), t))
        .collect();
    let t = flatten(&[entries]).unwrap();
    for (i, want) in targets.iter().enumerate() {
        assert_eq!(
            t.get(&format!("s{i}")).unwrap().link.as_deref(),
            Some(*want)
        );
    }
}

#[test]
fn hardlink_chains_name_the_first_file_and_keep_their_content_across_layers() {
    let dir = tempfile::tempdir().unwrap();
    let spool = super::flatten::Spool::new(dir.path().to_path_buf()).unwrap();
    let mut f = Flattener::new(Wanted::Everything, Some(&spool));
    for l in [
        vec![E::file("c", "old c", 0o644)],
        vec![
            E::file("a", "new a", 0o644),
            E::hardlink("c", "a"),
            E::hardlink("x", "c"),
        ],
    ] {
        f.apply_tar(&mut &tar_bytes(&l, 0).unwrap()[..], "layer")
            .unwrap();
    }
    let flat = f.finish();
    for p in ["c", "x"] {
        let e = flat.tree.get(p).unwrap();
        assert_eq!(
            (e.kind, e.link.as_deref()),
            (Kind::Hardlink, Some("a")),
            "{p}"
        );
        assert_eq!(e.sha256, flat.tree.get("a").unwrap().sha256, "{p}");
        assert!(flat.tree.captured(p), "{p}: no content");
    }
}

#[test]
fn a_hardlink_to_a_symlink_is_that_symlink_again() {
    let t = flatten(&[vec![
        E::symlink("s", "target"),
        E::hardlink("h", "s"),
        E::hardlink("hh", "h"),
    ]])
    .unwrap();
    for p in ["h", "hh"] {
        let e = t.get(p).unwrap();
        assert_eq!((e.kind, e.link.as_deref()), (Kind::Symlink, Some("target")));
        assert_eq!(t.symlink_links.get(p).map(String::as_str), Some("s"));
    }
}

/// A layer blob read by two threads (decompressing, and tar): a sound blob of more chunks than
/// the channel holds applies whole; a flipped byte is a digest mismatch even where the tar
/// stops early; a wrong diff_id and a truncated stream are named.
#[test]
fn a_blob_is_applied_through_the_decompressing_thread_and_every_byte_checked() {
    use crate::digest::Digest;
    use crate::oci::image::compress;
    use crate::oci::manifest::{Compression, Descriptor, OCI_LAYER_GZIP, OCI_LAYER_ZSTD};
    let dir = tempfile::tempdir().unwrap();
    // Incompressible content, several MiB: many chunks in flight.
    let mut x = 0x9e3779b97f4a7c15u64;
    let big: Vec<u8> = (0..6 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let tar = tar_bytes(
        &[
            E::file("big", big.clone(), 0o644),
            E::file("z", "zz", 0o600),
        ],
        0,
    )
    .unwrap();
    let diff_id = Digest::of(&tar);
    for (c, media) in [
        (Compression::Gzip, OCI_LAYER_GZIP),
        (Compression::Zstd, OCI_LAYER_ZSTD),
    ] {
        let blob = compress(&tar, c).unwrap();
        let apply = |bytes: &[u8], id: &Digest| {
            let path = dir.path().join("blob");
            std::fs::write(&path, bytes).unwrap();
            let desc = Descriptor {
                media_type: media.into(),
                digest: Digest::of(&blob),
                size: blob.len() as u64,
                platform: None,
                annotations: Default::default(),
            };
            let mut f = Flattener::new(Wanted::Nothing, None);
            f.apply_blob(&path, &desc, false, Some(id))
                .map(|()| f.finish().tree)
        };
        let t = apply(&blob, &diff_id).unwrap();
        assert_eq!(t.get("big").unwrap().sha256, Some(Digest::of(&big)));
        assert_eq!(t.get("z").unwrap().size, Some(2));

        let mut flipped = blob.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 0x40;
        let err = apply(&flipped, &diff_id).unwrap_err().to_string();
        assert!(
            err.contains("digest") || err.contains("sha256"),
            "{c:?}: {err}"
        );

        let other = Digest::of(b"other");
        let err = apply(&blob, &other).unwrap_err().to_string();
        assert!(err.contains("is not the config's diff_id"), "{c:?}: {err}");
    }
}

/// Layer blobs in a directory, every other one gzip, each with its diff_id.
fn blobs(dir: &std::path::Path, layers: &[Vec<E>]) -> Vec<super::flatten::LayerBlob> {
    use crate::digest::Digest;
    use crate::oci::image::compress;
    use crate::oci::manifest::{Compression, Descriptor, OCI_LAYER_GZIP, OCI_LAYER_TAR};
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let tar = tar_bytes(l, 0).unwrap();
            let (c, media) = match i % 2 {
                0 => (Compression::Gzip, OCI_LAYER_GZIP),
                _ => (Compression::None, OCI_LAYER_TAR),
            };
            let blob = compress(&tar, c).unwrap();
            let path = dir.join(format!("layer{i}"));
            std::fs::write(&path, &blob).unwrap();
            super::flatten::LayerBlob {
                path,
                desc: Descriptor {
                    media_type: media.into(),
                    digest: Digest::of(&blob),
                    size: blob.len() as u64,
                    platform: None,
                    annotations: Default::default(),
                },
                verified: false,
                diff_id: Some(Digest::of(&tar)),
            }
        })
        .collect()
}

/// The tree listing and which paths have content captured.
fn flattened_view(f: Flattener<'_>) -> (String, Vec<String>) {
    let t = f.finish().tree;
    let captured = t.iter().map(|(p, _)| p).filter(|p| t.captured(p)).collect();
    (t.listing(), captured)
}

/// Layers read side by side and applied in order give the tree that reading them one by one
/// gives, across every rule where a layer depends on the ones below: whiteouts, opaque
/// directories, hardlinks to lower files, a symlinked directory, and a file over a directory.
#[test]
fn layers_read_side_by_side_flatten_as_read_one_by_one() {
    let layers = vec![
        vec![
            E::dir("etc", 0o755),
            E::file("etc/a", "a", 0o644),
            E::file("etc/b", "b", 0o644),
            E::dir("opt/d", 0o755),
            E::file("opt/d/x", "x", 0o600),
            E::dir("real", 0o755),
            E::symlink("link", "real"),
        ],
        vec![E::whiteout("etc/a"), E::hardlink("etc/h", "etc/b")],
        vec![
            E::opaque("opt/d"),
            E::file("opt/d/y", "y", 0o644),
            E::file("link/z", "behind a link", 0o644),
        ],
        vec![
            E::file("opt/d", "now a file", 0o644),
            E::file("etc/b", "b2", 0o644),
        ],
        vec![E::file("big", vec![7u8; 200 << 10], 0o644)],
    ];
    let dir = tempfile::tempdir().unwrap();
    let blobs = blobs(dir.path(), &layers);
    let spooled = |side_by_side: bool| {
        let spool_dir = tempfile::tempdir().unwrap();
        let spool = super::flatten::Spool::new(spool_dir.path().to_path_buf()).unwrap();
        let mut f = Flattener::new(Wanted::Everything, Some(&spool));
        if side_by_side {
            f.apply_blobs(blobs.clone()).map_err(|(_, e)| e).unwrap();
        } else {
            for b in &blobs {
                f.apply_blob(&b.path, &b.desc, false, b.diff_id.as_ref())
                    .unwrap();
            }
        }
        assert!(!f.missed());
        flattened_view(f)
    };
    let (listing, captured) = spooled(true);
    assert_eq!((listing.clone(), captured.clone()), spooled(false));
    assert!(listing.contains(" real/z\n"), "{listing}");
    assert!(!listing.contains("etc/a"), "{listing}");
    assert!(!listing.contains("opt/d/"), "{listing}");
    assert!(captured.contains(&"etc/h".to_string()), "{captured:?}");
}

/// The first failure bottom up is the one reported, whatever finished first: a flipped byte
/// in layer 1 wins over a layer 3 that names a path twice.
#[test]
fn side_by_side_the_lowest_failing_layer_is_the_one_named() {
    let layers = vec![
        vec![E::file("a", "a", 0o644)],
        vec![E::file("b", vec![1u8; 300 << 10], 0o644)],
        vec![E::file("c", "c", 0o644)],
        vec![E::file("d", "d", 0o644), E::file("d", "again", 0o644)],
    ];
    let dir = tempfile::tempdir().unwrap();
    let blobs = blobs(dir.path(), &layers);
    let mut bytes = std::fs::read(&blobs[1].path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&blobs[1].path, bytes).unwrap();
    let mut f = Flattener::new(Wanted::Nothing, None);
    let (i, e) = f.apply_blobs(blobs.clone()).unwrap_err();
    assert_eq!(i, 1, "{e}");
    assert!(e.is_integrity(), "{e}");
    // Alone, layer 3's fault is named.
    let mut f = Flattener::new(Wanted::Nothing, None);
    let (i, e) = f.apply_blobs(vec![blobs[3].clone()]).unwrap_err();
    assert_eq!(i, 0);
    assert!(format!("{e:#}").contains("holds 'd' twice"), "{e:#}");
}

/// A layer read on its own sees `link/x` as the tar writes it; that it lands on the wanted
/// `real/x` through a lower layer's symlink only the tree below shows. Side by side it is
/// reported missed; one by one it is kept.
#[test]
fn a_wanted_file_behind_a_lower_symlink_is_missed_side_by_side_and_kept_one_by_one() {
    let layers = vec![
        vec![E::dir("real", 0o755), E::symlink("link", "real")],
        vec![E::file("link/x", "content", 0o644)],
    ];
    let dir = tempfile::tempdir().unwrap();
    let blobs = blobs(dir.path(), &layers);
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = super::flatten::Spool::new(spool_dir.path().to_path_buf()).unwrap();
    let wanted = || Wanted::Paths(["real/x".to_string()].into());
    let mut f = Flattener::new(wanted(), Some(&spool));
    f.apply_blobs(blobs.clone()).map_err(|(_, e)| e).unwrap();
    assert!(f.missed());
    assert!(!f.finish().tree.captured("real/x"));
    let mut f = Flattener::new(wanted(), Some(&spool));
    for b in &blobs {
        f.apply_blob(&b.path, &b.desc, false, b.diff_id.as_ref())
            .unwrap();
    }
    assert!(!f.missed());
    assert!(f.finish().tree.captured("real/x"));
}

/// Layers read at once share one spool budget: each alone fits, together they do not.
#[test]
fn layers_read_at_once_share_the_spool_budget() {
    let layers: Vec<Vec<E>> = (0..3)
        .map(|i| vec![E::file(&format!("f{i}"), vec![i as u8; 100 << 10], 0o644)])
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let blobs = blobs(dir.path(), &layers);
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = super::flatten::Spool::new(spool_dir.path().to_path_buf()).unwrap();
    let run = |max: u64| {
        let limits = super::flatten::Limits {
            max_spooled: max,
            ..Default::default()
        };
        let mut f = Flattener::new(Wanted::Everything, Some(&spool)).with_limits(limits);
        f.apply_blobs(blobs.clone())
            .map_err(|(_, e)| format!("{e:#}"))
    };
    let err = run(250 << 10).unwrap_err();
    assert!(err.contains("--max-export-size"), "{err}");
    run(300 << 10).unwrap();
}
