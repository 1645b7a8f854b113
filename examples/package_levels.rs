//! Times the package stage's gzip at several levels on a boot-asset tree like the published
//! ones (Debian's arm64 cloud kernel as vmlinuz, 96 MiB of incompressible filler as
//! initramfs.xz): `cargo run --release --example package_levels [KERNEL]`.

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let kernel = std::env::args().nth(1).unwrap_or_else(|| {
        "target/debian/linux-image-cloud-arm64/boot/vmlinuz-6.1.0-57-cloud-arm64".into()
    });
    let stage = tempfile::tempdir()?;
    let root = stage.path().join("assets/talos/arm64");
    std::fs::create_dir_all(root.join("boot"))?;
    std::fs::create_dir_all(root.join("validation"))?;
    std::fs::copy(&kernel, root.join("boot/vmlinuz"))?;
    std::fs::write(
        root.join("boot/initramfs.xz"),
        tdg::demo::filler(96 << 20, 7),
    )?;
    std::fs::write(
        root.join("validation/build-report.txt"),
        "Talos Build Report\n",
    )?;
    let total: u64 = ["boot/vmlinuz", "boot/initramfs.xz"]
        .iter()
        .map(|p| {
            std::fs::metadata(root.join(p))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    println!("tree: {:.1} MiB", total as f64 / (1 << 20) as f64);
    for level in [6, 1, 0] {
        let out_dir = tempfile::tempdir()?;
        let out = tdg::oci::layout::LayoutWriter::create(out_dir.path())?;
        let start = Instant::now();
        let (desc, _) = tdg::build::package::layer_at(&out, stage.path(), 0, level)?;
        let took = start.elapsed();
        let size = desc["size"].as_u64().unwrap_or(0);
        println!(
            "gzip level {level}: {:.2} s, layer {:.1} MiB",
            took.as_secs_f64(),
            size as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}
