//! Every cap tdg puts on what it reads, in one place: a hostile image or spec ends in a short
//! error at one of these, never in unbounded memory. docs/cli.md's limits table lists them.

/// A manifest, index or config document (distribution's own limit is 4 MiB).
pub const MAX_DOCUMENT: u64 = 4 << 20;
/// A text file a check reads whole: a checksums listing or a build report.
pub const MAX_REPORT_TEXT: u64 = 16 << 20;
/// A text input read whole: a spec, schematic, golden, fleet file or Docker config.
pub const MAX_TEXT_INPUT: u64 = 16 << 20;
/// An extension image's `/manifest.yaml`.
pub const MAX_MANIFEST: u64 = 1 << 20;
/// What `contains` and `matches` read of a file.
pub const MAX_CONTENT_TEXT: u64 = 64 << 20;
/// A UKI's text section (`.cmdline`, `.osrel`, `.uname`).
pub const MAX_TEXT_SECTION: u64 = 1 << 20;
/// `extensions.yaml` inside an initramfs.
pub const MAX_EXTENSIONS_YAML: u64 = 1 << 20;
/// One kernel module, read whole to find its vermagic.
pub const MAX_MODULE_BYTES: u64 = 256 << 20;
/// What a boot keeps of its serial console.
pub const MAX_CONSOLE_BYTES: usize = 4 << 20;
/// Entries of one flattened image.
pub const MAX_TREE_ENTRIES: usize = 2_000_000;
/// Default cap on the decompressed bytes of one initramfs segment (`--max-decompressed`).
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 4 << 30;
/// Default cap on the cpio entries of one initramfs (`--max-entries`).
pub const DEFAULT_MAX_INITRAMFS_ENTRIES: u64 = 1_000_000;
