//! The `folio` command line without a mail server: inspect, check-config, ingest's exit codes,
//! templates check and preview, report.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

use folio::desk::notice::Template;
use folio::store::scratch::database_url;

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

/// `folio ingest --queue-only` started with its standard input open.
fn start_ingest(config: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_folio"))
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
        .unwrap()
}

fn ingest(config: &std::path::Path, raw: &[u8]) -> std::process::Output {
    let mut child = start_ingest(config);
    child.stdin.take().unwrap().write_all(raw).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn ingest_stores_once_and_tempfails_when_the_database_is_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_url(dir.path());
    let config = write_config(dir.path(), &format!("[database]\nurl = \"{db}\"\n"));
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

/// Every byte that is not an ASCII letter or digit as `=XX`: valid both as an RFC 2047
/// Q-encoded word and as a quoted-printable line.
fn q_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            }
        })
        .collect()
}

/// Raw characters a terminal acts on: C0 controls (newline and tab are layout), DEL, C1
/// controls and bidirectional overrides/isolates.
fn raw_control(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        (c < ' ' && c != '\n' && c != '\t')
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    })
}

#[test]
fn text_output_escapes_control_characters_from_mail() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_url(dir.path());
    let config = write_config(dir.path(), &format!("[database]\nurl = \"{db}\"\n"));
    // OSC 52 (clipboard), clear screen, CR, BEL, DEL, C1 NEL and CSI, an RTL override.
    let hostile = "x\u{1b}]52;c;ZXZpbA==\u{7}y\u{1b}[2Jz\rw\u{7f}v\u{85}u\u{9b}31mt\u{202e}s";
    let body_lines = [
        "Buenos dias, no sirve la impresora.".to_string(),
        hostile.to_string(),
        "Gracias".to_string(),
    ];
    let body = body_lines
        .iter()
        .map(|l| q_encode(l))
        .collect::<Vec<_>>()
        .join("\r\n");
    let raw = format!(
        "From: =?utf-8?q?{name}?= <mallory@example.org>\r\n\
         To: helpdesk@example.test\r\n\
         Subject: =?utf-8?q?{subject}?=\r\n\
         Message-ID: <hostile-1@example.org>\r\n\
         Date: Mon, 2 Mar 2026 10:00:00 -0600\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n{body}\r\n",
        name = q_encode(&format!("Mallory {hostile}")),
        subject = q_encode(&format!("Impresora {hostile}")),
    );
    let out = ingest(&config, raw.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let folio_id = stdout.split_whitespace().next().unwrap().to_string();
    assert!(folio_id.starts_with("MDA-"), "{stdout}");

    let eml = dir.path().join("hostile.eml");
    std::fs::write(&eml, &raw).unwrap();
    let c = config.to_str().unwrap();
    for args in [
        vec!["tickets", "list"],
        vec!["tickets", "show", &folio_id],
        vec!["tickets", "list", "--json"],
        vec!["tickets", "show", &folio_id, "--json"],
        vec!["inspect", eml.to_str().unwrap()],
        vec!["inspect", eml.to_str().unwrap(), "--json"],
    ] {
        let out = folio(&[&["--config", c][..], &args].concat());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            raw_control(&text),
            None,
            "{args:?} printed a raw control: {text}"
        );
        // A ticket's subject is stored as one line with its controls turned to spaces (see
        // decide's subject bound); the mail itself (inspect) keeps them, escaped on output.
        let stored = args[0] == "tickets";
        if args.contains(&"--json") {
            // The same strings, escaped the JSON way.
            assert!(
                (stored || (text.contains("\\u001b]52") && text.contains("\\u009b31m")))
                    && text.contains("\\u202es"),
                "{args:?}: {text}"
            );
        } else if stored {
            assert!(
                text.contains("Impresora x ]52;c;ZXZpbA== y [2Jz w v u 31mt\\u{202e}s"),
                "{args:?}: the subject's visible escapes are missing: {text}"
            );
        } else {
            assert!(
                text.contains("Impresora x\\u{1b}]52;c;ZXZpbA==\\u{7}y\\u{1b}[2Jz\\rw\\u{7f}v\\u{85}u\\u{9b}31mt\\u{202e}s"),
                "{args:?}: the subject's visible escapes are missing: {text}"
            );
        }
    }
    // The body keeps its lines in `show` and `inspect`.
    let show = folio(&["--config", c, "tickets", "show", &folio_id]);
    let show = String::from_utf8(show.stdout).unwrap();
    assert!(
        show.contains("impresora.\nx\\u{1b}]52") && show.contains("Mallory x\\u{1b}"),
        "{show}"
    );
}

/// Peak resident memory of a running process, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn ingest_keeps_only_the_headers_of_an_oversize_message_and_never_holds_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_url(dir.path());
    let config = write_config(
        dir.path(),
        &format!("[database]\nurl = \"{db}\"\n[limits]\nmax_message_bytes = 1048576\n"),
    );
    let head = "From: ana@example.test\r\nTo: helpdesk@example.test\r\nSubject: Enorme\r\n\
                Message-ID: <huge@x.test>\r\n\r\n";
    let body = vec![b'x'; 64 * 1024 * 1024];
    let mut child = start_ingest(&config);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(head.as_bytes()).unwrap();
    stdin.write_all(&body).unwrap();
    // All but the pipe's buffer has been read by now: whatever folio keeps of it is resident.
    let peak = peak_rss_kib(child.id());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let size = head.len() + body.len();
    assert!(
        stdout.contains("quarantined")
            && stdout.contains(&format!(
                "message of {size} bytes exceeds limits.max_message_bytes"
            )),
        "{stdout}"
    );
    assert!(
        peak < 32 * 1024,
        "folio held {peak} KiB while reading a 64 MiB message with a 1 MiB limit"
    );
    // The quarantine keeps the headers and the size, not the bytes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (kept, reason): (i64, String) = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db).await.unwrap();
        sqlx::query_as("SELECT length(raw), reason FROM quarantine")
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    assert_eq!(kept as usize, head.len());
    assert!(reason.contains(&size.to_string()), "{reason}");
}

#[test]
fn inspect_says_an_oversize_message_would_be_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[limits]\nmax_message_bytes = 1000\n");
    let eml = dir.path().join("big.eml");
    std::fs::write(
        &eml,
        format!(
            "From: ana@example.test\r\nSubject: Enorme\r\n\r\n{}",
            "x".repeat(5000)
        ),
    )
    .unwrap();
    let out = folio(&[
        "--config",
        config.to_str().unwrap(),
        "inspect",
        eml.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"]["action"], "quarantine");
    assert!(v["decision"]["reason"]
        .as_str()
        .unwrap()
        .contains("limits.max_message_bytes (1000)"));
    assert!(v["headers"].as_str().unwrap().contains("Subject: Enorme"));
}

/// A copy of the shipped `mail-templates` in `dir`, and a config in `dir` that uses it.
fn copy_templates(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let templates = dir.join("mail-templates");
    for lang in ["es", "en"] {
        std::fs::create_dir_all(templates.join(lang)).unwrap();
        for entry in std::fs::read_dir(format!("{REPO}/mail-templates/{lang}")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), templates.join(lang).join(entry.file_name())).unwrap();
        }
    }
    let path = dir.join("folio.toml");
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
    (templates, path)
}

#[test]
fn check_config_names_a_broken_template_file() {
    let dir = tempfile::tempdir().unwrap();
    let (templates, path) = copy_templates(dir.path());
    let broken = templates.join("es/confirmation.txt.hbs");
    std::fs::write(&broken, "{{#if folio}}sin cerrar\n").unwrap();
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn templates_check_passes_on_the_shipped_templates() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = folio(&["--config", config.to_str().unwrap(), "templates", "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "{} templates × 2 languages (es, en): ok",
            Template::ALL.len()
        )
    );
}

#[test]
fn templates_check_names_the_file_line_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (templates, config) = copy_templates(dir.path());
    let c = config.to_str().unwrap();
    let misspelt = templates.join("es/survey.txt.hbs");
    let original = std::fs::read_to_string(&misspelt).unwrap();
    let lines = original.lines().count();
    std::fs::write(
        &misspelt,
        format!("{original}Asunto: {{{{ticket.sujeto}}}}\n"),
    )
    .unwrap();
    let missing = templates.join("en/closure.html.hbs");
    std::fs::remove_file(&missing).unwrap();
    let unclosed = templates.join("es/closure.txt.hbs");
    std::fs::write(
        &unclosed,
        "{{> header_text}}\n\n{{#if ticket.requester_name}}Estimado(a) {{ticket.requester_name}}:\n\nSu folio {{folio}} fue cerrado.\n",
    )
    .unwrap();

    let out = folio(&["--config", c, "templates", "check"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    for expected in [
        format!(
            "{}:{}: unknown variable `ticket.sujeto`",
            misspelt.display(),
            lines + 1
        ),
        "hint: `survey`'s `ticket` has: ".to_string(),
        "ticket.subject".to_string(),
        format!(
            "{}: missing: template `closure` has no html file",
            missing.display()
        ),
        "hint: every language folder provides NAME.subject.hbs, NAME.txt.hbs and NAME.html.hbs"
            .to_string(),
        format!(
            "{}:3: `{{{{#if ticket.requester_name}}}}` is never closed",
            unclosed.display()
        ),
        "hint: close it with `{{/if}}`".to_string(),
    ] {
        assert!(err.contains(&expected), "{expected:?} not in:\n{err}");
    }
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "{} templates × 2 languages (es, en): 3 problems",
            Template::ALL.len()
        )
    );

    // One language at a time.
    let out = folio(&["--config", c, "templates", "check", "--lang", "en"]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "{} templates × 1 language (en): 1 problem",
            Template::ALL.len()
        )
    );
    // check-config checks templates with the same code, so it says the same.
    let out = folio(&["--config", c, "check-config"]);
    let check_config = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.lines().all(|l| check_config.contains(l)),
        "{check_config}"
    );
}

#[test]
fn templates_preview_shows_what_a_requester_would_get() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let c = config.to_str().unwrap();
    let out = folio(&[
        "--config",
        c,
        "templates",
        "preview",
        "survey",
        "--lang",
        "es",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "Subject: [Folio MDA-2026-000042] Encuesta de satisfacción: No puedo entrar al correo institucional\n\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("Alicia Hernández") && stdout.contains("del 1 al 5"),
        "{stdout}"
    );

    let html = dir.path().join("survey.html");
    let out = folio(&[
        "--config",
        c,
        "templates",
        "preview",
        "survey",
        "--lang",
        "en",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Subject: [Ticket MDA-2026-000042] Satisfaction survey: ")
    );
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("<html") && html.contains("MDA-2026-000042"),
        "{html}"
    );

    let out = folio(&["--config", c, "templates", "preview", "encuesta"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no template \"encuesta\"") && err.contains("confirmation, reply, resolved"),
        "{err}"
    );
}

#[test]
fn templates_preview_builds_the_sample_around_a_real_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("folio.db");
    let config = write_config(
        dir.path(),
        &format!("[database]\nurl = \"sqlite://{}\"\n", db.display()),
    );
    let c = config.to_str().unwrap();
    // Before any database exists, there is no ticket to look for (and none is created).
    let out = folio(&[
        "--config",
        c,
        "templates",
        "preview",
        "survey",
        "--ticket",
        "MDA-2026-000001",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no database at"),
        "{}",
        text(&out.stderr)
    );
    assert!(!db.exists());

    let raw = std::fs::read(format!(
        "{REPO}/tests/fixtures/mail/requests/gmail_utf8_base64_alternative.eml"
    ))
    .unwrap();
    let out = ingest(&config, &raw);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let folio_id = stdout.split_whitespace().next().unwrap();
    assert!(folio_id.starts_with("MDA-"), "{stdout}");

    let out = folio(&[
        "--config",
        c,
        "templates",
        "preview",
        "survey",
        "--ticket",
        folio_id,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "Subject: [Folio {folio_id}] Encuesta de satisfacción: Solicitud de instalación de programa para firma electrónica\n"
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Alicia") && !stdout.contains("MDA-2026-000042"),
        "{stdout}"
    );

    let out = folio(&[
        "--config",
        c,
        "templates",
        "preview",
        "survey",
        "--ticket",
        "MDA-2026-999999",
    ]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no ticket with folio MDA-2026-999999"),
        "{err}"
    );
}

/// `folio report` with `args` on `config`.
fn report(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    folio(&[&["--config", config.to_str().unwrap(), "report"][..], args].concat())
}

#[test]
fn report_counts_the_tickets_of_the_period_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("folio.db");
    let config = write_config(
        dir.path(),
        &format!(
            "[database]\nurl = \"sqlite://{}\"\n[catalog]\nfile = \"{REPO}/config/catalog.toml\"\n",
            db.display()
        ),
    );
    // Before folio's first start there is no database, and a report does not make one.
    let out = report(&config, &["--from", "2026-11-30", "--to", "2026-12-06"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("database.url"),
        "{err}"
    );
    assert!(!db.exists());

    let fixtures = [
        "gmail_utf8_base64_alternative",
        "outlook_es_cp1252_qp_alternative",
        "squirrelmail_iso8859_1_qp_plain",
    ];
    for name in fixtures {
        let raw = std::fs::read(format!("{REPO}/tests/fixtures/mail/requests/{name}.eml")).unwrap();
        let out = ingest(&config, &raw);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Every day folio can have run on (the tickets were opened today, by the real clock).
    let all = ["--from", "2020-01-01", "--to", "2100-12-31"];
    let out = report(&config, &[&all[..], &["--format", "json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["period"]["from"], "2020-01-01");
    assert_eq!(r["period"]["to"], "2100-12-31");
    assert_eq!(r["tickets"], 3);
    let total = |v: &serde_json::Value| -> u64 {
        v.as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum()
    };
    assert_eq!(r["by_status"]["open"], 3);
    assert_eq!(total(&r["by_status"]), 3);
    assert_eq!(total(&r["by_priority"]), 3);
    let services = r["by_service"].as_array().unwrap();
    let by_service: u64 = services
        .iter()
        .map(|s| s["tickets"].as_u64().unwrap())
        .sum();
    assert_eq!(by_service, 3);
    assert!(
        services
            .iter()
            .all(|s| s["name"].is_string() && s["id"].is_string()),
        "{services:?}"
    );
    assert_eq!(r["first_response"]["measured"], 0);
    assert_eq!(r["first_response"]["still_open"], 3);
    assert_eq!(
        r["first_response"]["wall"]["mean_seconds"],
        serde_json::Value::Null
    );
    assert_eq!(r["resolution"]["still_open"], 3);
    assert_eq!(r["sla_breaches"]["tickets"], 0);
    assert_eq!(r["satisfaction"]["answers"], 0);
    assert_eq!(r["satisfaction"]["average"], serde_json::Value::Null);
    assert_eq!(r["satisfaction"]["comments"], serde_json::json!([]));

    let out = report(&config, &[&all[..], &["--format", "csv"]].concat());
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("section,key,value,detail\n"), "{csv}");
    assert!(csv.contains("\ntickets,opened,3,\n"), "{csv}");
    assert!(csv.contains("\nby_status,open,3,\n"), "{csv}");

    let out = report(&config, &all);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Report 2020-01-01 to 2100-12-31") && text.contains("Tickets opened: 3"),
        "{text}"
    );

    // A week long ago: nothing, and no mean to divide by zero for.
    let out = report(
        &config,
        &[
            "--from",
            "2020-01-06",
            "--to",
            "2020-01-12",
            "--format",
            "json",
        ],
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["tickets"], 0);
    assert_eq!(
        r["resolution"]["business"]["p90_seconds"],
        serde_json::Value::Null
    );

    // No dates: the seven days up to yesterday.
    let out = report(&config, &["--format", "json"]);
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let day = |key: &str| {
        chrono::NaiveDate::parse_from_str(r["period"][key].as_str().unwrap(), "%Y-%m-%d").unwrap()
    };
    assert_eq!((day("to") - day("from")).num_days(), 6);
}

#[test]
fn report_errors_name_the_flag_and_the_form_expected() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = report(&config, &["--from", "30/11/2026"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--from") && err.contains("YYYY-MM-DD"),
        "{err}"
    );
    let out = report(&config, &["--from", "2026-12-06", "--to", "2026-11-30"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--from/--to") && err.contains("before"),
        "{err}"
    );
    let out = report(&config, &["--format", "xml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--format"), "{err}");
}

#[test]
fn run_refuses_to_start_when_its_http_address_cannot_be_bound_and_names_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config = write_config(
        dir.path(),
        &format!(
            "[database]\nurl = \"sqlite://{}/folio.db\"\n[http]\nlisten = \"{addr}\"\n",
            dir.path().display()
        ),
    );
    let config = config.to_str().unwrap();
    let out = folio(&["--config", config, "run"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{config}: http.listen: cannot listen on {addr}")),
        "{stderr}"
    );
    // The environment overrides the file, and is named when it is at fault.
    let out = Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["--config", config, "run"])
        .env("FOLIO_HTTP_LISTEN", &addr)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("FOLIO_HTTP_LISTEN: cannot listen on {addr}")),
        "{stderr}"
    );
    // A value that is no address is a configuration error naming the key.
    let bad = write_config(dir.path(), "[http]\nlisten = \"everywhere\"\n");
    let out = folio(&["--config", bad.to_str().unwrap(), "check-config"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("http.listen: expected an address"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn export_and_import_move_a_site_between_databases() {
    // From SQLite into the engine the tests run on (PostgreSQL in CI's second pass).
    let from_dir = tempfile::tempdir().unwrap();
    let from = write_config(
        from_dir.path(),
        &format!(
            "[database]\nurl = \"sqlite://{}\"\n",
            from_dir.path().join("a.db").display()
        ),
    );
    for fixture in [
        "requests/gmail_utf8_base64_alternative.eml",
        "requests/applemail_inline_png.eml",
    ] {
        let raw = std::fs::read(format!("{REPO}/tests/fixtures/mail/{fixture}")).unwrap();
        let out = ingest(&from, &raw);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let export = from_dir.path().join("site.jsonl");
    let out = folio(&[
        "--config",
        from.to_str().unwrap(),
        "export",
        "--output",
        export.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2  tickets"));

    let to_dir = tempfile::tempdir().unwrap();
    let to = write_config(
        to_dir.path(),
        &format!("[database]\nurl = \"{}\"\n", database_url(to_dir.path())),
    );
    let import = |config: &std::path::Path| {
        folio(&[
            "--config",
            config.to_str().unwrap(),
            "import",
            "--input",
            export.to_str().unwrap(),
        ])
    };
    let out = import(&to);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = |config: &std::path::Path| {
        let out = folio(&[
            "--config",
            config.to_str().unwrap(),
            "tickets",
            "list",
            "--json",
        ]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(list(&to), list(&from));
    assert_eq!(list(&to).as_array().unwrap().len(), 2);
    // A second import into the now full database is refused, and says why.
    let out = import(&to);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("empty database"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
