//! What the terminal shows while work runs: byte progress bars for downloads on a TTY, nothing
//! off a TTY or under CI (logs stay line-oriented), and colour only where it can be seen.

use std::io::IsTerminal;
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Bars draw only on an interactive stderr outside CI.
pub fn bars_enabled() -> bool {
    std::io::stderr().is_terminal() && !ci() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// Whether to paint: `choice` is `--color` (`Some(true)` always, `Some(false)` never); on
/// `None` (auto), only on a terminal and never with NO_COLOR set (no-color.org).
pub fn colour(choice: Option<bool>) -> bool {
    if let Some(c) = choice {
        return c;
    }
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

fn multi() -> &'static MultiProgress {
    static M: OnceLock<MultiProgress> = OnceLock::new();
    M.get_or_init(|| {
        let target = if bars_enabled() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        MultiProgress::with_draw_target(target)
    })
}

/// A byte-count bar, hidden when bars are off.
pub fn bytes(total: u64, message: String) -> ProgressBar {
    if !bars_enabled() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{msg:40!} {bar:30} {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    multi().add(
        ProgressBar::new(total)
            .with_style(style)
            .with_message(message),
    )
}

/// Wraps `text` in an ANSI colour when `on`.
pub fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A one-line status that redraws in place (a boot's elapsed time and last console line),
/// hidden when bars are off.
pub fn status(message: String) -> ProgressBar {
    if !bars_enabled() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{spinner} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    multi().add(
        ProgressBar::new_spinner()
            .with_style(style)
            .with_message(message),
    )
}
