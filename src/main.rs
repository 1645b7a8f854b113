//! The `tdg` command line: parse, run the command, exit. Exit codes: 0 every check passed,
//! 1 a check failed, 2 the run could not be evaluated (bad spec, registry fault, integrity);
//! [`tdg::error::Error::exit`] decides the last ([`tdg::exit`] names them).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before any thread: a signal then removes the run's temporaries before tdg exits.
    tdg::temps::handle_signals();
    match cli::Cli::parse().run() {
        Ok(exit) => exit.into(),
        Err(e) if *e.kind() == tdg::error::ErrorKind::ReaderGone => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tdg: error: {e}");
            if tdg::report::in_github_actions() {
                // The annotation points at the spec line, as a failed check's does.
                let (file, at, message) = match e.located() {
                    Some(l) => (
                        l.file.display().to_string(),
                        Some((l.line, l.column)),
                        l.message.clone(),
                    ),
                    None => (String::new(), None, e.to_string()),
                };
                print!(
                    "{}",
                    tdg::report::github::command("error", &file, at, "tdg", &message)
                );
            }
            e.exit().into()
        }
    }
}
