//! Docker config files (`config.json`), as a CI runner or a user's home holds them: parsed and
//! looked up for a few hosts. A helper name that comes back is always a plain file name,
//! never a path (it becomes `docker-credential-<name>`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tdg::oci::docker_config::{DockerConfig, Lookup};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = DockerConfig::parse(text) else {
        return;
    };
    for host in [
        "ghcr.io",
        "https://index.docker.io/v1/",
        "localhost:5000",
        "",
    ] {
        if let Ok(Lookup::Helper(name)) = c.lookup(host) {
            // A plain file name: `docker-credential-..` is a name, not a path.
            assert!(
                !name.is_empty() && !name.contains('/') && !name.contains('\0'),
                "{name:?}"
            );
        }
    }
});
