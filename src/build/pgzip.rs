//! Gzip in parallel blocks, as pigz does for speed: the input is cut into 1 MiB blocks, each
//! compressed on its own thread into a complete gzip member, and the members are written in
//! order. RFC 1952 §2.2: "A gzip file consists of a series of members"; every reader of gzip
//! layers reads them all (Go's `compress/gzip` in its default multistream mode, which
//! containerd, skopeo and umoci use; zlib's gunzip; flate2's `MultiGzDecoder`, which tdg uses),
//! and the consumer-matrix trial checks that. The output depends only on the input, the level
//! and the block size, never on the thread count, so builds stay reproducible.
//!
//! A block that deflate cannot shrink (a zboot kernel, an xz or zstd initramfs: most of a Talos
//! asset layer) is written as stored deflate blocks (RFC 1951 §3.2.4, `BTYPE=00`) instead of
//! being searched for matches at the full level. zlib makes the same choice per deflate block,
//! but only after the search; [`incompressible`] decides first, from the block alone.

use std::io::{self, Write};

/// Bytes per member: large enough that the per-member header and the fresh dictionary cost
/// nothing measurable, small enough that a few per thread stay in memory.
pub const BLOCK: usize = 1 << 20;

pub struct ParallelGz<W: Write> {
    inner: W,
    level: u32,
    threads: usize,
    block: Vec<u8>,
    /// Full blocks waiting to be compressed, at most `threads` of them.
    pending: Vec<Vec<u8>>,
    /// The batch being compressed while the next one fills: members, in order.
    in_flight: Option<std::thread::JoinHandle<Vec<io::Result<Vec<u8>>>>>,
    members: u64,
}

impl<W: Write> ParallelGz<W> {
    pub fn new(inner: W, level: u32) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(inner, level, threads)
    }

    pub fn with_threads(inner: W, level: u32, threads: usize) -> Self {
        ParallelGz {
            inner,
            level,
            threads: threads.max(1),
            block: Vec::with_capacity(BLOCK),
            pending: Vec::new(),
            in_flight: None,
            members: 0,
        }
    }

    /// Starts compressing what is pending, a block per thread, while the next batch fills;
    /// first writes the batch before it, in order.
    fn drain(&mut self) -> io::Result<()> {
        self.land()?;
        let level = self.level;
        let blocks = std::mem::take(&mut self.pending);
        self.in_flight = Some(std::thread::spawn(move || {
            std::thread::scope(|s| {
                let handles: Vec<_> = blocks
                    .iter()
                    .map(|b| s.spawn(move || member(b, level)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(io::Error::other("a gzip thread panicked")))
                    })
                    .collect()
            })
        }));
        Ok(())
    }

    /// Waits for the batch in flight and writes its members.
    fn land(&mut self) -> io::Result<()> {
        let Some(batch) = self.in_flight.take() else {
            return Ok(());
        };
        let members = batch
            .join()
            .map_err(|_| io::Error::other("a gzip thread panicked"))?;
        for m in members {
            self.inner.write_all(&m?)?;
            self.members += 1;
        }
        Ok(())
    }

    /// Writes what is left and returns the inner writer. An empty input is one empty member,
    /// a valid gzip file.
    pub fn finish(mut self) -> io::Result<W> {
        let nothing = self.members == 0 && self.in_flight.is_none() && self.pending.is_empty();
        if !self.block.is_empty() || nothing {
            let last = std::mem::take(&mut self.block);
            self.pending.push(last);
        }
        self.drain()?;
        self.land()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// One complete gzip member of `data` (mtime 0, no name: reproducible).
fn member(data: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let stored = level > 0 && incompressible(data);
    let (level, room) = match stored {
        // Stored blocks: the data, 5 bytes of framing per block, the gzip header and trailer.
        true => (0, data.len() + data.len() / 1024 + 64),
        false => (level, data.len() / 2 + 64),
    };
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::with_capacity(room), flate2::Compression::new(level));
    gz.write_all(data)?;
    gz.finish()
}

/// Whether deflate would save about 1% of `data` or less. Deflate saves in two ways (RFC 1951
/// §2-3): Huffman codes for literals, which can save no more than the bytes' order-0 entropy
/// leaves (at 7.95 bits a byte, 0.6%), and back-references of 3 to 258 bytes within 32 KiB. The
/// second is measured as a fast LZ77 scan (a 4-byte hash of the last position, as zlib's
/// `deflate_fast` and LZ4 find matches): under 0.5% of the block matched, it is stored. The scan
/// is about 20 times faster than deflating at level 1 to find out.
pub fn incompressible(data: &[u8]) -> bool {
    const WINDOW: usize = 32 << 10;
    const MAX_MATCH: usize = 258;
    if data.len() < 4096 {
        return false;
    }
    let mut counts = [0u64; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    if bits < 7.95 {
        return false;
    }
    // By the hash of 4 bytes: the last position + 1 they started at (0: none) and the bytes
    // themselves, so a miss is decided without reading the block at the old position.
    let mut last = vec![(0u32, 0u32); 1 << 12];
    let (mut i, mut matched) = (0, 0);
    while let Some(four) = data.get(i..i + 4) {
        let q = u32::from_le_bytes([four[0], four[1], four[2], four[3]]);
        let slot = &mut last[(q.wrapping_mul(0x9E37_79B1) >> 20) as usize];
        let (prev, seen) = *slot;
        *slot = ((i + 1) as u32, q);
        let prev = prev as usize;
        if seen == q && prev > 0 && i + 1 - prev <= WINDOW {
            let (from, at) = (&data[prev - 1..], &data[i..]);
            let len = 4 + from[4..]
                .iter()
                .zip(&at[4..at.len().min(MAX_MATCH)])
                .take_while(|(a, b)| a == b)
                .count();
            matched += len;
            i += len;
        } else {
            i += 1;
        }
    }
    matched * 200 < data.len()
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK {
            let full = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
            self.pending.push(full);
            if self.pending.len() >= self.threads {
                self.drain()?;
            }
        }
        Ok(n)
    }

    /// Members are whole or not written: flushing writes nothing partial.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn members_read_back_whole_and_do_not_depend_on_threads() {
        let data: Vec<u8> = (0..(3 * BLOCK + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut outs = Vec::new();
        for threads in [1, 2, 5] {
            let mut w = ParallelGz::with_threads(Vec::new(), 6, threads);
            for chunk in data.chunks(70_000) {
                w.write_all(chunk).unwrap();
            }
            outs.push(w.finish().unwrap());
        }
        assert!(
            outs.windows(2).all(|w| w[0] == w[1]),
            "thread count changed the bytes"
        );
        assert_eq!(gunzip(&outs[0]), data);
        // Four members: 3 full blocks and the rest.
        let headers = outs[0]
            .windows(4)
            .filter(|w| *w == [0x1f, 0x8b, 8, 0])
            .count();
        assert!(headers >= 4, "{headers} member headers");
        let empty = ParallelGz::new(Vec::new(), 6).finish().unwrap();
        assert!(gunzip(&empty).is_empty() && !empty.is_empty());
    }

    /// Compressed-looking blocks are stored (the member is the block plus a few bytes of
    /// framing); a block of repeats, even of random bytes, is still compressed.
    #[test]
    fn incompressible_blocks_are_stored_and_repeats_are_not() {
        let random = crate::demo::filler(BLOCK, 11);
        assert!(incompressible(&random));
        let stored = member(&random, 6).unwrap();
        // Stored blocks cost 5 bytes each (zlib-rs cuts them at its buffer's size), plus the
        // gzip header and trailer: 178 bytes here. Level 6 writes more than it was given.
        assert!(stored.len() <= BLOCK + 256, "{}", stored.len());
        assert_eq!(gunzip(&stored), random);
        let repeated: Vec<u8> = random[..4096].repeat(BLOCK / 4096);
        assert!(
            !incompressible(&repeated),
            "repeats of random bytes compress"
        );
        assert!(member(&repeated, 6).unwrap().len() < BLOCK / 50);
        let text = "Talos Build Report\n".repeat(BLOCK / 19);
        assert!(!incompressible(text.as_bytes()));
        // Random bytes with a repeat every 64 bytes: high entropy, yet deflate finds matches.
        let mut sparse = random.clone();
        for i in (0..BLOCK - 128).step_by(64) {
            sparse.copy_within(i..i + 8, i + 32);
        }
        assert!(!incompressible(&sparse));
        // What is stored, deflate itself at level 9 would not have shrunk by more than 1%
        // (`member` would store it: ask flate2 directly).
        let mut nine = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
        nine.write_all(&random).unwrap();
        let nine = nine.finish().unwrap();
        assert!(nine.len() as f64 > 0.99 * random.len() as f64);
        assert!(!incompressible(&random[..100]), "too short to judge");
    }
}
