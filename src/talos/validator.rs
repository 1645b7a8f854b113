//! Strict mode: siderolabs/extensions' validator, which that repository's CI runs on every
//! official extension (siderolabs/extensions-validator `cmd/validate.go`): after Talos's `Load`,
//! the manifest version must have one of five shapes, every
//! `rootfs/usr/local/etc/containers/*.yaml` must decode as a `services.Spec` and pass its
//! `Validate`, and then `Validate(WithValidateConstraints(), WithValidateContents())` enforces
//! the allowed paths and refuses special files (`pkg/machinery/extensions/validate.go`; tdg
//! applies that through `PathRules::strict`). The imager (tdg's default) runs none of this but
//! the constraints.

use std::sync::OnceLock;

use regex::Regex;

use super::services::{self, CONFIG_DIR};
use crate::error::Reason;
use crate::layers::tree::Tree;

/// The validator's version shapes, in its order: semver (`v1.2.3[-pre]`), `yyyymmdd[.N]`,
/// `X.Y.Z-vTALOS[-N-gSHA[-dirty]]`, `SHA-vTALOS[-N-gSHA[-dirty]]`, `X.Y`.
fn shapes() -> &'static [Regex; 5] {
    static RE: OnceLock<[Regex; 5]> = OnceLock::new();
    RE.get_or_init(|| {
        let pre = r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?";
        let talos = format!(r"-v(\d+\.\d+\.\d+{pre})(-(\d+)-g([0-9a-f]+)(-dirty)?)?$");
        [
            Regex::new(&format!(r"^v?(\d+\.\d+\.\d+{pre})$")),
            Regex::new(r"^\d{8}(\.\d)?$"),
            Regex::new(&format!(r"^(\d+\.\d+\.\d+){talos}")),
            Regex::new(&format!(r"^([0-9a-f]+){talos}")),
            Regex::new(r"^v?(\d+\.\d+)$"),
        ]
        .map(|r| r.expect("the validator's patterns compile"))
    })
}

/// The validator's version check, with its message.
pub fn version(name: &str, version: &str) -> Result<(), Reason> {
    if shapes().iter().any(|r| r.is_match(version)) {
        Ok(())
    } else {
        Err(format!("invalid version format {version} for extension: {name}").into())
    }
}

/// The service spec files an extension image carries (`filepath.Glob` of
/// `rootfs/usr/local/etc/containers/*.yaml`), as tree keys.
pub fn service_files(tree: &Tree) -> Vec<String> {
    let dir = format!("rootfs/{CONFIG_DIR}/");
    tree.paths_in(&format!("rootfs/{CONFIG_DIR}"))
        .into_iter()
        .filter(|p| {
            p.strip_prefix(&dir)
                .is_some_and(|n| !n.contains('/') && n.ends_with(".yaml"))
        })
        .collect()
}

/// Each service spec decoded and validated, with the validator's messages.
pub fn service_specs(files: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, bytes) in files {
        let name = path.rsplit('/').next().unwrap_or(path);
        let spec = std::str::from_utf8(bytes)
            .map_err(|_| crate::error::Reason::from("not UTF-8 text"))
            .and_then(services::parse);
        match spec {
            Err(e) => out.push(format!("error unmarshalling service spec file {name}: {e}")),
            Ok(s) => {
                let v = s.validate();
                if !v.is_empty() {
                    out.push(format!(
                        "error validating service spec file {name}: {}",
                        v.join("; ")
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_shapes_are_the_validators() {
        for ok in [
            "v0.21.0",
            "1.88.1",
            "2.3.3-rc.1",
            "20250917",
            "20250917.1",
            "9.2.14-v1.11.5",
            "535.129.03-v1.8.0-alpha.0-10-g336fa0f-dirty",
            "5815ee3-v1.8.0-alpha.0-10-g336fa0f",
            "v4.3",
            "4.3",
        ] {
            assert!(version("x", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "latest",
            "1.2.3.4",
            "v1",
            "2025-09-17",
            "1.2.3_x",
            "abcdefg",
        ] {
            assert_eq!(
                version("x", bad).unwrap_err().0,
                format!("invalid version format {bad} for extension: x")
            );
        }
    }

    #[test]
    fn service_specs_fail_with_the_validators_words() {
        let files = vec![
            (
                "rootfs/usr/local/etc/containers/ok.yaml".to_string(),
                b"name: ok\ncontainer: {entrypoint: /bin/x}\nrestart: always\n".to_vec(),
            ),
            (
                "rootfs/usr/local/etc/containers/bad.yaml".to_string(),
                b"name: Bad\ncontainer: {entrypoint: /bin/x}\nrestart: always\n".to_vec(),
            ),
            (
                "rootfs/usr/local/etc/containers/worse.yaml".to_string(),
                b"restart: sometimes\n".to_vec(),
            ),
        ];
        assert_eq!(
            service_specs(&files),
            [
                "error validating service spec file bad.yaml: name \"Bad\" is invalid",
                "error unmarshalling service spec file worse.yaml: line 1: sometimes does not belong to RestartKind values"
            ]
        );
    }
}
