//! Registry credentials from the Docker config (`DOCKER_CONFIG` or `~/.docker/config.json`),
//! including `credsStore` and `credHelpers`. No config, or no entry for the host, means
//! anonymous access, which is what GHCR's public bearer-token flow needs.

use crate::error::{Error, ErrorKind, Result};
use docker_credential::{CredentialRetrievalError as E, DockerCredential};
use oci_client::secrets::RegistryAuth;

pub fn for_host(host: &str) -> Result<RegistryAuth> {
    let refused = |m: String| Err(Error::new(ErrorKind::Auth { host: host.into() }, m));
    // Docker Hub credentials are stored under the legacy index URL.
    let key = if host == crate::reference::DOCKER_HUB || host == "index.docker.io" {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    match docker_credential::get_credential(key) {
        Ok(DockerCredential::UsernamePassword(u, p)) => Ok(RegistryAuth::Basic(u, p)),
        Ok(DockerCredential::IdentityToken(_)) => {
            refused(format!("credentials for {host}: the Docker config holds an identity token, which tdg cannot exchange; log in with a username and password or token"))
        }
        Err(E::NoCredentialConfigured | E::ConfigNotFound | E::ConfigReadError) => {
            Ok(RegistryAuth::Anonymous)
        }
        // Helpers answer "credentials not found" for hosts they hold nothing for.
        Err(E::HelperFailure { stdout, .. }) if stdout.contains("credentials not found") => {
            Ok(RegistryAuth::Anonymous)
        }
        Err(E::HelperFailure { helper, stderr, .. }) => {
            refused(format!("credentials for {host}: credential helper docker-credential-{helper} failed: {}",
                stderr.trim()))
        }
        Err(e) => refused(format!("credentials for {host}: {e}")),
    }
}
