//! Gzip in parallel blocks, as pigz does for speed: the input is cut into 1 MiB blocks, each
//! compressed on its own thread into a complete gzip member, and the members are written in
//! order. RFC 1952 §2.2: "A gzip file consists of a series of members"; every reader of gzip
//! layers reads them all (Go's `compress/gzip` in its default multistream mode, which
//! containerd, skopeo and umoci use; zlib's gunzip; flate2's `MultiGzDecoder`, which tdg uses),
//! and the consumer-matrix trial checks that. The output depends only on the input, the level
//! and the block size, never on the thread count, so builds stay reproducible.

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
    let mut gz = flate2::GzBuilder::new().mtime(0).write(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    gz.write_all(data)?;
    gz.finish()
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
}
