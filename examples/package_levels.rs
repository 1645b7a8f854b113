//! Times the package stage's gzip at several levels on a boot-asset tree like the published
//! ones (Debian's arm64 cloud kernel as vmlinuz, 96 MiB of incompressible filler as
//! initramfs.xz): `cargo run --release --example package_levels [KERNEL]`. Then the same bytes
//! at level 6 as one gzip stream (what the stage did before) and as parallel members on 1 and
//! on every core (`build::pgzip`, what it does now).

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
    let mut data = std::fs::read(root.join("boot/vmlinuz"))?;
    data.extend(std::fs::read(root.join("boot/initramfs.xz"))?);
    let time = |what: &str, f: &dyn Fn() -> std::io::Result<Vec<u8>>| -> std::io::Result<()> {
        let start = Instant::now();
        let out = f()?;
        println!(
            "{what}: {:.2} s, {:.1} MiB",
            start.elapsed().as_secs_f64(),
            out.len() as f64 / (1 << 20) as f64
        );
        Ok(())
    };
    use std::io::Write as _;
    time("one gzip stream, level 6", &|| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(&data)?;
        gz.finish()
    })?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, cores] {
        time(
            &format!("parallel members, level 6, {threads} threads"),
            &|| {
                let mut gz = tdg::build::pgzip::ParallelGz::with_threads(Vec::new(), 6, threads);
                gz.write_all(&data)?;
                gz.finish()
            },
        )?;
    }
    Ok(())
}
