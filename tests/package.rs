//! The Debian package's files that are kept by hand beside their originals: the installed
//! configuration (`config/folio.debian.toml`) is the demo configuration (`config/folio.toml`)
//! with an installed system's paths and a placeholder mailbox, line for line, so a key
//! documented in one is documented in the other. The package itself is built, installed and
//! removed by `scripts/package-test`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// The lines that differ below the header, demo → installed.
const INSTALLED: &[(&str, &str)] = &[
    ("host = \"127.0.0.1\"", "host = \"mail.example.org\""),
    ("port = 1143", "# port = 993"),
    ("tls = \"starttls\"", "tls = \"implicit\""),
    (
        "ca_file = \"/tmp/folio-mail/tls/ca.pem\"",
        "# ca_file = \"/etc/folio/ca.pem\"",
    ),
    (
        "username = \"helpdesk@example.test\"",
        "username = \"helpdesk@example.org\"",
    ),
    (
        "password = \"secret\"",
        "# password: in /etc/folio/credentials/imap-password (docs/install.md), not here.",
    ),
    ("port = 2525", "# port = 465"),
    ("tls = \"none\"", "tls = \"implicit\""),
    (
        "from = \"Mesa de Ayuda <helpdesk@example.test>\"",
        "from = \"Mesa de Ayuda <helpdesk@example.org>\"",
    ),
    (
        "url = \"sqlite://var/folio.db\"",
        "url = \"sqlite:///var/lib/folio/folio.db\"",
    ),
    (
        "dir = \"mail-templates\"",
        "dir = \"/etc/folio/mail-templates\"",
    ),
    (
        "file = \"config/directorio.csv\"",
        "file = \"/etc/folio/directorio.csv\"",
    ),
    (
        "file = \"config/catalog.toml\"",
        "file = \"/etc/folio/catalog.toml\"",
    ),
];

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The lines from `[imap]` on (the header comments differ on purpose).
fn body(text: &str) -> Vec<&str> {
    text.lines().skip_while(|l| *l != "[imap]").collect()
}

#[test]
fn the_installed_configuration_is_the_demo_one_with_installed_paths() {
    let demo = read("config/folio.toml");
    let installed = read("config/folio.debian.toml");
    let (demo, installed) = (body(&demo), body(&installed));
    assert!(demo.len() > 100, "config/folio.toml has no [imap] section?");
    let mut used = vec![false; INSTALLED.len()];
    let expected: Vec<&str> = demo
        .iter()
        .map(|line| match INSTALLED.iter().position(|(d, _)| d == line) {
            Some(i) => {
                used[i] = true;
                INSTALLED[i].1
            }
            None => line,
        })
        .collect();
    for (n, (want, got)) in expected.iter().zip(&installed).enumerate() {
        assert_eq!(
            want,
            got,
            "config/folio.debian.toml, line {} below [imap]: update it with config/folio.toml",
            n + 1
        );
    }
    assert_eq!(
        expected.len(),
        installed.len(),
        "config/folio.debian.toml and config/folio.toml differ in length"
    );
    for (u, (demo_line, _)) in used.iter().zip(INSTALLED) {
        assert!(u, "{demo_line:?} is no longer in config/folio.toml");
    }
    // Nothing of the installed file points into the source tree or the demo mail stack.
    for line in &installed {
        let value = line.split('#').next().unwrap_or_default();
        assert!(
            !value.contains("config/") && !value.contains("/tmp/") && !value.contains("127.0.0.1"),
            "config/folio.debian.toml: {line}"
        );
    }
}

#[test]
fn the_unit_runs_the_packaged_binary_on_the_packaged_configuration() {
    let unit = read("systemd/folio.service");
    let manifest = read("Cargo.toml");
    assert!(unit.contains("\nExecStart=/usr/bin/folio --config /etc/folio/folio.toml run\n"));
    assert!(manifest.contains("[\"target/release/folio\", \"usr/bin/\", \"755\"]"));
    assert!(manifest.contains("[\"config/folio.debian.toml\", \"etc/folio/folio.toml\""));
    assert!(unit.contains("\nType=notify\n") && unit.contains("\nWatchdogSec="));
}
