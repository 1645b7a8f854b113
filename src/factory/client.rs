//! The Image Factory's HTTP API: `POST /schematics` and asset downloads. The schematic is
//! sent as written, so the factory derives its ID from the same text tdg did, and an ID that
//! differs from the offline one is an error, never a silent switch.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::factory::urls::Factory;
use crate::http::{self, Fetched};

pub struct Client {
    http: reqwest::Client,
    factory: Factory,
}

#[derive(Deserialize)]
struct Created {
    id: Option<String>,
}

impl Client {
    pub fn new(factory: Factory) -> Result<Self> {
        Ok(Client {
            http: http::client()?,
            factory,
        })
    }

    pub fn host(&self) -> &str {
        &self.factory.registry
    }

    /// Submits a schematic and checks that the factory's ID is `expected`.
    pub async fn submit(&self, body: Vec<u8>, expected: &str, file: &Path) -> Result<()> {
        let url = format!("{}/schematics", self.factory.base);
        let host = self.host();
        let resp = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/yaml")
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(http::request_error("post to", &url, &e)))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("{host}: reading the answer to POST /schematics"))?;
        if !status.is_success() {
            bail!(
                "{host}: POST /schematics answered {status}: {}",
                text.trim().chars().take(300).collect::<String>()
            );
        }
        let created: Created = serde_json::from_str(&text).with_context(|| {
            format!("{host}: POST /schematics answered {status} with no JSON: {text:.200}")
        })?;
        let Some(id) = created.id.filter(|i| !i.is_empty()) else {
            bail!("{host}: POST /schematics answered {status} but returned no schematic ID");
        };
        if id != expected {
            bail!(
                "{host} computed schematic ID {id} for {}, but the schematic's ID is {expected}: \
                 the factory reads this schematic differently, so its assets are not the ones asked for; \
                 `tdg schematic canonical {}` shows what tdg hashed, to compare with the schematic the factory holds",
                file.display(),
                file.display()
            );
        }
        Ok(())
    }

    /// Downloads an asset to `dest` (or only hashes it, with `None`).
    pub async fn download(&self, url: &str, dest: Option<&Path>, label: &str) -> Result<Fetched> {
        let fetched = match dest {
            Some(d) => http::fetch_to(&self.http, url, d, label).await?,
            None => http::fetch(&self.http, url, &mut std::io::sink(), "", label).await?,
        };
        Ok(fetched)
    }
}
