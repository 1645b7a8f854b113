//! Reading a serial console as Talos writes to it: the extensions its init enables
//! (`[talos] [initramfs] enabling system extension NAME VERSION`, siderolabs/talos
//! `internal/app/init/main.go`), kernel panics and oopses, and the line that ends a boot.

use regex::Regex;

/// What the console has said so far.
#[derive(Debug, Default, Clone)]
pub struct Reading {
    /// `(name, version)` in the order the lines came.
    pub extensions: Vec<(String, String)>,
    /// The first panic or oops line.
    pub panic: Option<String>,
    pub reached: bool,
    /// Talos's services in the order they first spoke, each with its last state.
    pub services: Vec<Service>,
}

/// A Talos service and the last state it reported (`Running`, `Waiting`, `Failed`, …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Service {
    pub name: String,
    pub state: String,
}

pub struct Reader {
    until: Regex,
    enabling: Regex,
    service: Regex,
    pub reading: Reading,
}

/// Talos's service runner's line (`internal/app/machined/pkg/system/service_runner.go`:
/// `service[%s](%s): %s`), e.g. `[talos] service[ext-tailscale](Waiting): Waiting for …`.
const SERVICE: &str = r"\[talos\].*service\[([^\]\s]+)\]\(([A-Za-z]+)\)";

/// Talos's init line for each layer it enables.
const ENABLING: &str = r"\[talos\] \[initramfs\] enabling system extension (\S+) (\S+)";

/// Lines the kernel prints when it cannot go on, or has hit a bug.
const PANICS: &[&str] = &[
    "Kernel panic - not syncing",
    "Internal error: Oops",
    "BUG: unable to handle",
    "Oops: ",
    "general protection fault",
];

impl Reader {
    pub fn new(until: Regex) -> Self {
        Reader {
            until,
            enabling: Regex::new(ENABLING).expect("a valid regex"),
            service: Regex::new(SERVICE).expect("a valid regex"),
            reading: Reading::default(),
        }
    }

    /// Takes one console line (without its line break).
    pub fn line(&mut self, line: &str) {
        let line = line.trim_end_matches('\r');
        if let Some(c) = self.enabling.captures(line) {
            self.reading
                .extensions
                .push((c[1].to_string(), c[2].to_string()));
        }
        if let Some(c) = self.service.captures(line) {
            let (name, state) = (c[1].to_string(), c[2].to_string());
            match self.reading.services.iter_mut().find(|s| s.name == name) {
                Some(s) => s.state = state,
                None => self.reading.services.push(Service { name, state }),
            }
        }
        if self.reading.panic.is_none() && PANICS.iter().any(|p| line.contains(p)) {
            self.reading.panic = Some(clip(strip_timestamp(line)));
        }
        if self.until.is_match(line) {
            self.reading.reached = true;
        }
    }
}

/// `[    6.514] message` → `message`.
fn strip_timestamp(line: &str) -> &str {
    match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((ts, rest)) if ts.trim().parse::<f64>().is_ok() => rest,
        _ => line,
    }
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_talos_and_the_kernel_say() {
        let mut r = Reader::new(Regex::new("entering maintenance service").unwrap());
        r.line("[    5.1] [talos] [initramfs] enabling system extension spin v0.21.0\r");
        r.line("[talos] [initramfs] enabling system extension modules.dep 6.1.0-57-cloud-arm64");
        assert!(!r.reading.reached);
        r.line("[    9.000] Kernel panic - not syncing: VFS: Unable to mount root fs");
        r.line("[talos] entering maintenance service");
        assert_eq!(
            r.reading.extensions,
            [
                ("spin".into(), "v0.21.0".into()),
                ("modules.dep".into(), "6.1.0-57-cloud-arm64".into())
            ]
        );
        assert_eq!(
            r.reading.panic.as_deref(),
            Some("Kernel panic - not syncing: VFS: Unable to mount root fs")
        );
        assert!(r.reading.reached);
    }

    #[test]
    fn services_keep_their_last_state() {
        // As Talos's service runner prints them (service_runner.go), with and without the
        // kernel's timestamp and Talos's date.
        let mut r = Reader::new(Regex::new("never").unwrap());
        r.line("[   12.5] [talos] 2026/12/05 08:00:01 service[ext-tailscale](Waiting): Waiting for extension service config");
        r.line("[talos] service[ext-spin](Preparing): Running pre state");
        r.line("[talos] service[ext-spin](Running): Started task ext-spin (PID 1234) for container ext-spin");
        r.line("service[ext-fake](Running): not Talos's line");
        let got: Vec<(&str, &str)> = r
            .reading
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.state.as_str()))
            .collect();
        assert_eq!(got, [("ext-tailscale", "Waiting"), ("ext-spin", "Running")]);
    }
}
