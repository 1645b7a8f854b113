//! Extension services: what Talos starts from `/usr/local/etc/containers/NAME.yaml` on every node
//! that carries the image. The spec is read as the node reads it
//! (`internal/app/machined/pkg/controllers/runtime/extension_service.go`: go-yaml v4 into
//! `pkg/machinery/extensions/services.Spec`, then `Validate`); an invalid spec is logged and never
//! started, a duplicate name is skipped, and the container runs from
//! `/usr/local/lib/containers/NAME` (`constants.ExtensionServiceRootfsPath`). What each service
//! waits for is read from `depends`: a `configuration: true` service waits for an
//! `ExtensionServiceConfig` document, which is why tailscale belongs on the router node only.

use serde::Serialize;

use crate::goyaml::node::Node;
use crate::goyaml::{self, boolean, entries, enumer, items, key, text, texts};

/// Where the node looks for service specs, and where it runs their containers from.
pub const CONFIG_DIR: &str = "usr/local/etc/containers";
pub const ROOTFS_DIR: &str = "usr/local/lib/containers";

/// `RestartKind` (`restart_kind.go`), in enum order from 1.
const RESTART: [&str; 3] = ["always", "never", "untilSuccess"];
/// `nethelpers.Status` (`status.go`), in enum order from 1.
const NETWORK: [&str; 4] = ["addresses", "connectivity", "hostname", "etcfiles"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    pub name: String,
    pub entrypoint: String,
    pub args: Vec<String>,
    pub depends: Vec<Dependency>,
    /// 1 always, 2 never, 3 untilSuccess; anything else is invalid.
    pub restart: u32,
    pub log_to_console: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dependency {
    pub service: String,
    pub path: String,
    pub network: Vec<u32>,
    pub time: bool,
    pub configuration: bool,
}

/// Decodes a spec as `loadSpec` does (unknown keys ignored).
pub fn parse(source: &str) -> goyaml::Result<Spec> {
    let root = goyaml::document(source)?;
    let mut s = Spec::default();
    for (k, v) in entries(&root, "services.Spec")? {
        match key(k)?.as_str() {
            "name" => s.name = text(v)?,
            "container" => container(v, &mut s)?,
            "depends" => {
                for d in items(v, "[]services.Dependency")? {
                    s.depends.push(dependency(d)?);
                }
            }
            "restart" => s.restart = enumer(v, &RESTART, "RestartKind")?,
            "logToConsole" => s.log_to_console = boolean(v)?,
            _ => {}
        }
    }
    Ok(s)
}

fn container(n: &Node, s: &mut Spec) -> goyaml::Result<()> {
    for (k, v) in entries(n, "services.Container")? {
        match key(k)?.as_str() {
            "entrypoint" => s.entrypoint = text(v)?,
            "args" => s.args = texts(v)?,
            "environment" => drop(texts(v)?),
            "environmentFile" => drop(text(v)?),
            "mounts" => {
                for m in items(v, "[]specs.Mount")? {
                    for (k, v) in entries(m, "specs.Mount")? {
                        match key(k)?.as_str() {
                            "destination" | "type" | "source" => drop(text(v)?),
                            "options" => drop(texts(v)?),
                            _ => {}
                        }
                    }
                }
            }
            "security" => {
                for (k, v) in entries(v, "services.Security")? {
                    match key(k)?.as_str() {
                        "writeableSysfs" | "writeableRootfs" => drop(boolean(v)?),
                        "maskedPaths" | "readonlyPaths" => drop(texts(v)?),
                        "rootfsPropagation" => drop(text(v)?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn dependency(n: &Node) -> goyaml::Result<Dependency> {
    let mut d = Dependency::default();
    for (k, v) in entries(n, "services.Dependency")? {
        match key(k)?.as_str() {
            "service" => d.service = text(v)?,
            "path" => d.path = text(v)?,
            "network" => {
                for s in items(v, "[]nethelpers.Status")? {
                    d.network.push(enumer(s, &NETWORK, "Status")?);
                }
            }
            "time" => d.time = boolean(v)?,
            "configuration" => d.configuration = boolean(v)?,
            _ => {}
        }
    }
    Ok(d)
}

impl Spec {
    /// `Spec.Validate`, message for message: why the node would not start it.
    pub fn validate(&self) -> Vec<String> {
        let mut out = Vec::new();
        let name_ok = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b == b'-' || b == b'_' || b.is_ascii_lowercase() || b.is_ascii_digit());
        if !name_ok {
            out.push(format!("name {:?} is invalid", self.name));
        }
        if !(1..=3).contains(&self.restart) {
            out.push(format!(
                "restart kind is invalid: RestartKind({})",
                self.restart
            ));
        }
        if self.entrypoint.is_empty() {
            out.push("container endpoint can't be empty".into());
        }
        for d in &self.depends {
            out.extend(d.validate());
        }
        out
    }

    pub fn waits_for_config(&self) -> bool {
        self.depends.iter().any(|d| d.configuration)
    }

    /// What the service waits for before it starts, in the spec's order.
    pub fn waits_for(&self) -> Vec<String> {
        self.depends.iter().map(Dependency::describe).collect()
    }

    pub fn restart_name(&self) -> String {
        match self.restart {
            r @ 1..=3 => RESTART[r as usize - 1].to_string(),
            r => format!("RestartKind({r})"),
        }
    }
}

impl Dependency {
    fn validate(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut kinds = 0;
        if !self.service.is_empty() {
            kinds += 1;
        }
        if !self.path.is_empty() {
            kinds += 1;
            if !self.path.starts_with('/') {
                out.push(format!("path is not absolute: {:?}", self.path));
            }
        }
        if !self.network.is_empty() {
            kinds += 1;
            for s in &self.network {
                if !(1..=4).contains(s) {
                    out.push(format!("invalid network dependency: Status({s})"));
                }
            }
        }
        kinds += self.time as u32 + self.configuration as u32;
        match kinds {
            0 => out.push("no dependency specified".into()),
            1 => {}
            _ => out.push("more than a single dependency is set".into()),
        }
        out
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.service.is_empty() {
            parts.push(format!("service {}", self.service));
        }
        if !self.path.is_empty() {
            parts.push(format!("path {}", self.path));
        }
        if !self.network.is_empty() {
            let names: Vec<&str> = self
                .network
                .iter()
                .map(|s| NETWORK.get(*s as usize - 1).copied().unwrap_or("?"))
                .collect();
            parts.push(format!("network {}", names.join(", ")));
        }
        if self.time {
            parts.push("time sync".into());
        }
        if self.configuration {
            parts.push("its ExtensionServiceConfig".into());
        }
        parts.join(" and ")
    }
}

/// A service an image carries, as the node would treat it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Service {
    /// The spec file, `/usr/local/etc/containers/NAME.yaml`.
    pub file: String,
    /// The name it registers as (`ext-` + the spec's name), or the file's when unreadable.
    pub name: String,
    /// The extension (layer) the spec comes from, where known.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub extension: String,
    pub restart: String,
    /// What it waits for before it starts.
    pub waits_for: Vec<String>,
    /// It waits for an `ExtensionServiceConfig` document.
    pub waits_for_config: bool,
    /// Why the node would not run it: an invalid spec, a missing container rootfs or entrypoint,
    /// a duplicate name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Judges every spec file of a merged rootfs: `specs` are (path, extension, content) in the
/// order the node lists them (by file name), `exists` answers whether a path (relative to the
/// rootfs root) is there.
pub fn judge(specs: &[(String, String, Vec<u8>)], exists: impl Fn(&str) -> bool) -> Vec<Service> {
    let mut out: Vec<Service> = Vec::new();
    // Names the node registered: a later valid spec of the same name is skipped.
    let mut registered: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (path, extension, bytes) in specs {
        let stem = path
            .rsplit('/')
            .next()
            .unwrap_or(path)
            .trim_end_matches(".yaml");
        let mut svc = Service {
            file: format!("/{path}"),
            name: format!("ext-{stem}"),
            extension: extension.clone(),
            restart: String::new(),
            waits_for: Vec::new(),
            waits_for_config: false,
            problems: Vec::new(),
        };
        let spec = std::str::from_utf8(bytes)
            .map_err(|_| crate::error::Reason::from("not UTF-8 text"))
            .and_then(parse);
        match spec {
            Err(e) => svc.problems.push(format!("cannot be read: {e}")),
            Ok(spec) => {
                svc.name = format!("ext-{}", spec.name);
                svc.restart = spec.restart_name();
                svc.waits_for = spec.waits_for();
                svc.waits_for_config = spec.waits_for_config();
                svc.problems = spec.validate();
                if svc.problems.is_empty() && !registered.insert(spec.name.clone()) {
                    svc.problems
                        .push(format!("duplicate service name {}: skipped", spec.name));
                } else if svc.problems.is_empty() {
                    let root = format!("{ROOTFS_DIR}/{}", spec.name);
                    let entry = format!("{root}/{}", spec.entrypoint.trim_start_matches('/'));
                    if !exists(&root) {
                        svc.problems
                            .push(format!("its container rootfs /{root} is missing"));
                    } else if !exists(&entry) {
                        svc.problems
                            .push(format!("its entrypoint /{entry} is missing"));
                    }
                }
            }
        }
        out.push(svc);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like siderolabs/extensions' network/tailscale/tailscale.yaml.
    const TAILSCALE: &str = "name: tailscale\ndepends:\n  - service: cri\n  - network:\n    - addresses\n    - connectivity\n    - etcfiles\n  - configuration: true\ncontainer:\n  entrypoint: /usr/local/bin/containerboot\n  environment:\n  - PATH=/sbin:/usr/local/bin\n  security:\n    writeableRootfs: false\n    writeableSysfs: true\n  mounts:\n  - source: /lib\n    destination: /lib\n    type: bind\n    options: [bind, ro]\nrestart: always\n";

    #[test]
    fn a_tailscale_like_spec_waits_for_its_config() {
        let s = parse(TAILSCALE).unwrap();
        assert_eq!(s.validate(), Vec::<String>::new());
        assert!(s.waits_for_config());
        assert_eq!(
            s.waits_for(),
            [
                "service cri",
                "network addresses, connectivity, etcfiles",
                "its ExtensionServiceConfig"
            ]
        );
        assert_eq!(s.restart_name(), "always");
    }

    #[test]
    fn validate_says_what_talos_says() {
        let s = parse("name: Bad Name\ncontainer: {}\ndepends:\n  - {}\n  - {service: a, time: true}\n  - path: rel\n").unwrap();
        assert_eq!(
            s.validate(),
            [
                "name \"Bad Name\" is invalid",
                "restart kind is invalid: RestartKind(0)",
                "container endpoint can't be empty",
                "no dependency specified",
                "more than a single dependency is set",
                "path is not absolute: \"rel\""
            ]
        );
        // Decoding errors: an unknown restart kind or network status, a key written twice.
        for (bad, want) in [
            (
                "restart: sometimes\n",
                "sometimes does not belong to RestartKind values",
            ),
            (
                "depends: [{network: [wifi]}]\n",
                "wifi does not belong to Status values",
            ),
            ("name: a\nname: b\n", "already defined"),
            (
                "container: [x]\n",
                "cannot construct !!seq into services.Container",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        assert_eq!(parse("restart: UNTILSUCCESS\n").unwrap().restart, 3);
    }

    #[test]
    fn judged_against_the_rootfs() {
        let specs = vec![
            (
                "usr/local/etc/containers/a.yaml".to_string(),
                "a".to_string(),
                TAILSCALE.as_bytes().to_vec(),
            ),
            (
                "usr/local/etc/containers/b.yaml".to_string(),
                "b".to_string(),
                b"name: [".to_vec(),
            ),
        ];
        let got = judge(&specs, |p| p == "usr/local/lib/containers/tailscale");
        assert_eq!(got[0].name, "ext-tailscale");
        assert_eq!(
            got[0].problems,
            ["its entrypoint /usr/local/lib/containers/tailscale/usr/local/bin/containerboot is missing"]
        );
        assert_eq!(got[1].name, "ext-b");
        assert!(
            got[1].problems[0].starts_with("cannot be read: line 1"),
            "{:?}",
            got[1].problems
        );
        // A second valid spec of a registered name is skipped, whatever its rootfs.
        let twice = vec![
            specs[0].clone(),
            (
                "usr/local/etc/containers/c.yaml".into(),
                "c".into(),
                TAILSCALE.as_bytes().to_vec(),
            ),
        ];
        let got = judge(&twice, |_| true);
        assert!(got[0].problems.is_empty());
        assert_eq!(
            got[1].problems,
            ["duplicate service name tailscale: skipped"]
        );
    }
}
