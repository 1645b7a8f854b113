//! Standard output that a closed pipe ends quietly: `tdg tree … | head` stops when `head`
//! has read enough, with exit 0 and no panic (Rust's `print!` panics on EPIPE), as ripgrep does.

use std::io::Write as _;

use tdg::error::{Error, ErrorKind};

/// Writes `text` to standard output; a reader that went away becomes [`ErrorKind::ReaderGone`].
pub fn print(text: &str) -> anyhow::Result<()> {
    stream(|out| out.write_all(text.as_bytes()))
}

/// Lets `write` write to a buffered standard output, with `print`'s handling of a closed pipe.
pub fn stream(
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(Error::new(ErrorKind::ReaderGone, "standard output was closed").into())
        }
        Err(e) => Err(Error::new(ErrorKind::Io, format!("writing standard output: {e}")).into()),
    }
}

/// `print` with a line break after `text`.
pub fn println(text: impl std::fmt::Display) -> anyhow::Result<()> {
    print(&format!("{text}\n"))
}
