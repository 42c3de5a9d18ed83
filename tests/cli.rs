//! The `folio` command line without a mail server: inspect, check-config, ingest's exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn folio(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run folio")
}

fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("folio.toml");
    std::fs::write(
        &path,
        format!(
            "[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"helpdesk@example.test\"\npassword = \"x\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\nfrom = \"Mesa de Ayuda <helpdesk@example.test>\"\n\
             [templates]\ndir = \"{REPO}/mail-templates\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

#[test]
fn inspect_prints_the_documented_json_keys() {
    let out = folio(&[
        "--config",
        "/nonexistent/folio.toml",
        "inspect",
        &format!("{REPO}/tests/fixtures/mail/auto_replies/exchange_oof_auto_submitted_es.eml"),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "from_email",
        "from_name",
        "reply_to",
        "to",
        "cc",
        "subject",
        "date",
        "message_id",
        "in_reply_to",
        "references",
        "body_text",
        "attachments",
        "automatic",
        "automatic_kind",
        "automatic_reason",
        "folio_reference",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(v["automatic"], true);
    assert_eq!(v["automatic_kind"], "auto_reply");
    assert!(v["automatic_reason"]
        .as_str()
        .unwrap()
        .starts_with("auto_submitted"));
}

#[test]
fn check_config_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[limits]\nauto_reply_window = \"mañana\"\n");
    let out = folio(&["--config", path.to_str().unwrap(), "check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}: limits.auto_reply_window", path.display())),
        "{err}"
    );

    let path = write_config(dir.path(), "[smtp2]\nhost = \"x\"\n");
    let out = folio(&["--config", path.to_str().unwrap(), "check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("smtp2"), "{err}");

    let path = write_config(dir.path(), "");
    let out = folio(&["--config", path.to_str().unwrap(), "check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The catalogue's problems name its file and key, all of them at once.
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        "[[group]]\nid = \"correo\"\n[[technician]]\nname = \"T\"\nemail = \"sin-arroba\"\ngroups = [\"correo\"]\n\
         [[service]]\nid = \"x\"\nname = \"X\"\ngroup = \"redes\"\npatterns = [\"(\"]\n",
    )
    .unwrap();
    let path = write_config(
        dir.path(),
        &format!("[catalog]\nfile = \"{}\"\n", catalog.display()),
    );
    let out = folio(&["--config", path.to_str().unwrap(), "check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for key in [
        "technician[0].email",
        "service[0].group",
        "service[0].patterns[0]",
    ] {
        assert!(
            err.contains(&format!("{}: {key}", catalog.display())),
            "{key} not named in: {err}"
        );
    }
}

#[test]
fn shipped_config_and_templates_check_out() {
    // The repository's own config points at the demo mail stack's CA, which may not exist yet;
    // everything else in it must validate.
    let text = std::fs::read_to_string(format!("{REPO}/config/folio.toml")).unwrap();
    let text = text.replace("ca_file = \"/tmp/folio-mail/tls/ca.pem\"", "");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("folio.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_folio"))
        .current_dir(REPO)
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ingest(config: &std::path::Path, raw: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_folio"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "ingest",
            "--queue-only",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(raw).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn ingest_stores_once_and_tempfails_when_the_database_is_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("folio.db");
    let config = write_config(
        dir.path(),
        &format!("[database]\nurl = \"sqlite://{}\"\n", db.display()),
    );
    let raw = std::fs::read(format!(
        "{REPO}/tests/fixtures/mail/requests/gmail_utf8_base64_alternative.eml"
    ))
    .unwrap();
    let out = ingest(&config, &raw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains("MDA-") && stdout.contains("new_ticket"),
        "{stdout}"
    );
    // The MTA retrying the same message does not open a second ticket.
    let out = ingest(&config, &raw);
    assert!(String::from_utf8_lossy(&out.stdout).contains("duplicate"));
    let list = folio(&[
        "--config",
        config.to_str().unwrap(),
        "tickets",
        "list",
        "--json",
    ]);
    let tickets: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(tickets.as_array().unwrap().len(), 1);

    // A database that cannot be opened is a temporary failure: exit 75, the MTA keeps the mail.
    let bad = write_config(
        dir.path(),
        "[database]\nurl = \"sqlite:///proc/no-such-dir/folio.db\"\n",
    );
    let out = ingest(&bad, &raw);
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_names_a_broken_template_file() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("mail-templates");
    for lang in ["es", "en"] {
        std::fs::create_dir_all(templates.join(lang)).unwrap();
        for entry in std::fs::read_dir(format!("{REPO}/mail-templates/{lang}")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), templates.join(lang).join(entry.file_name())).unwrap();
        }
    }
    let broken = templates.join("es/confirmation.txt.hbs");
    std::fs::write(&broken, "{{#if folio}}sin cerrar\n").unwrap();
    let path = dir.path().join("folio.toml");
    std::fs::write(
        &path,
        format!(
            "[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"helpdesk@example.test\"\npassword = \"x\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\nfrom = \"Mesa de Ayuda <helpdesk@example.test>\"\n\
             [templates]\ndir = \"{}\"\n",
            templates.display()
        ),
    )
    .unwrap();
    let out = folio(&["--config", path.to_str().unwrap(), "check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&broken.display().to_string()), "{err}");
    assert_eq!(
        err.matches(".hbs:").count(),
        1,
        "only the broken file: {err}"
    );
}
