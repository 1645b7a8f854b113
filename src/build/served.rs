//! `tdg verify-served`: the bastion check. Every asset a `checksums.sha256` lists is fetched
//! over HTTP from where it is served and hashed as it streams; a missing or different asset
//! fails.

use anyhow::{Context, Result};

use crate::error::Reason;
use crate::exit::Exit;
use crate::http::{self, FetchError};
use crate::talos::checksums;

pub struct Served {
    pub lines: Vec<(String, Result<(), Reason>)>,
    /// A transport failure: the server could not be asked at all.
    pub error: Option<String>,
}

impl Served {
    pub fn exit(&self) -> Exit {
        if self.error.is_some() {
            Exit::Unevaluated
        } else if self.lines.iter().any(|(_, r)| r.is_err()) {
            Exit::Failed
        } else {
            Exit::Passed
        }
    }
    pub fn human(&self) -> String {
        let mut s = String::new();
        for (p, r) in &self.lines {
            match r {
                Ok(()) => s += &format!("ok   {p}\n"),
                Err(m) => s += &format!("FAIL {p}: {m}\n"),
            }
        }
        if let Some(e) = &self.error {
            s += &format!("error: {e}\n");
        }
        let failed = self.lines.iter().filter(|(_, r)| r.is_err()).count();
        s += &format!("{} passed, {failed} failed\n", self.lines.len() - failed);
        s
    }
}

pub async fn verify(base: &str, checksums_text: &str) -> Result<Served> {
    let lines = checksums::parse(checksums_text)
        .map_err(anyhow::Error::msg)
        .context("the checksums file")?;
    let client = http::client()?;
    let base = base.trim_end_matches('/');
    let mut out = Served {
        lines: Vec::new(),
        error: None,
    };
    for l in lines {
        let url = format!("{base}/{}", l.path);
        let result = match http::fetch(&client, &url, &mut std::io::sink(), "", &l.written).await {
            // The server could not be asked at all: nothing after this can be checked either.
            Err(FetchError::Request(m)) => {
                out.error = Some(m);
                break;
            }
            Err(FetchError::Status { status, .. }) => {
                Err(Reason(format!("{url} answered {status}")))
            }
            Err(e) => Err(Reason(e.to_string())),
            Ok(f) if f.digest == l.digest => Ok(()),
            Ok(f) => Err(Reason(format!(
                "expected {}, served {} ({} bytes)",
                l.digest.short(),
                f.digest.short(),
                f.size
            ))),
        };
        out.lines.push((l.written.clone(), result));
    }
    Ok(out)
}
