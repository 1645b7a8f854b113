//! `tdg verify-served`: the bastion check. Every asset a `checksums.sha256` lists is fetched
//! over HTTP from where it is served and hashed as it streams; a missing or different asset
//! fails.

use anyhow::{Context, Result};
use futures_util::StreamExt;

use crate::digest::Hasher;
use crate::talos::checksums;

pub struct Served {
    pub lines: Vec<(String, Result<(), String>)>,
    /// A transport failure: the server could not be asked at all.
    pub error: Option<String>,
}

impl Served {
    pub fn exit_code(&self) -> i32 {
        if self.error.is_some() {
            2
        } else if self.lines.iter().any(|(_, r)| r.is_err()) {
            1
        } else {
            0
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
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()?;
    let base = base.trim_end_matches('/');
    let mut out = Served {
        lines: Vec::new(),
        error: None,
    };
    for l in lines {
        let url = format!("{base}/{}", l.path);
        let resp = match client.get(&url).send().await {
            Ok(r) => r,
            Err(e) => {
                let host = reqwest::Url::parse(&url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default();
                out.error = Some(format!(
                    "{host}: cannot fetch {url}: {}",
                    if e.is_connect() {
                        "cannot connect".to_string()
                    } else {
                        e.to_string()
                    }
                ));
                break;
            }
        };
        if !resp.status().is_success() {
            out.lines.push((
                l.written.clone(),
                Err(format!("{url} answered {}", resp.status())),
            ));
            continue;
        }
        let mut h = Hasher::default();
        let bar = crate::progress::bytes(resp.content_length().unwrap_or(0), l.written.clone());
        let mut stream = resp.bytes_stream();
        let mut failed = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => {
                    h.update(&c);
                    bar.inc(c.len() as u64);
                }
                Err(e) => {
                    failed = Some(format!("download failed after {} bytes: {e}", h.len()));
                    break;
                }
            }
        }
        bar.finish_and_clear();
        let result = match failed {
            Some(m) => Err(m),
            None => {
                let (got, n) = h.finish();
                if got == l.digest {
                    Ok(())
                } else {
                    Err(format!(
                        "expected {}, served {} ({n} bytes)",
                        l.digest.short(),
                        got.short()
                    ))
                }
            }
        };
        out.lines.push((l.written.clone(), result));
    }
    Ok(out)
}
