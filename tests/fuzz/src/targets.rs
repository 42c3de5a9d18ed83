//! What each fuzz target does with one input, and the properties it checks.
//!
//! Shared by the fuzz crate (`tests/fuzz/src/lib.rs`) and by the root package's
//! `tests/fuzz_regressions.rs` (through `#[path]`), so a saved input is replayed in the normal
//! test run through the very calls that found it. Only `folio`'s public API and std are used.
//!
//! A check fails with a panic: under libFuzzer that is a crash (the input is saved as an
//! artifact); under `cargo test` it fails the test.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use folio::desk::catalog::{Catalog, Priority};
use folio::desk::decide::{Context, Decision};
use folio::desk::policy::Policy;
use folio::desk::requester::Directory;
use folio::desk::ticket::{Status, TicketRef};
use folio::desk::tokens::Tokens;
use folio::folio::FolioFormat;
use folio::inbound::phone_note::PhoneNote;

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// Every target by name, in the order `scripts/fuzz` runs them.
pub const TARGETS: &[(&str, Target)] = &[
    ("parse", parse),
    ("quote", quote),
    ("phone_note", phone_note),
    ("command", command),
    ("authentication", authentication),
];

/// The help desk's address in the fuzzed policy (as in tests/fixtures.rs).
const HELPDESK: &str = "helpdesk@example.test";
/// The authserv-id of the fixtures' `Authentication-Results`, trusted so that staff commands
/// with a DKIM/SPF pass are reached.
const TRUSTED: &str = "mx1.example.test";

/// The repository root (where `config/` is), from the fuzz crate or from the root package.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("config/directorio.csv").is_file())
        .unwrap_or_else(|| {
            panic!(
                "no config/directorio.csv above {}",
                env!("CARGO_MANIFEST_DIR")
            )
        })
        .to_path_buf()
}

/// The example site: the shipped catalogue (technicians, agents, routing rules) and
/// directory, and a trusted mail server, so decisions reach staff commands, phone notes and
/// routing rather than only "new ticket, unassigned".
fn setup() -> &'static (Directory, Policy) {
    static SETUP: OnceLock<(Directory, Policy)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let root = repo_root();
        let directory =
            Directory::load(&root.join("config/directorio.csv")).unwrap_or_else(|e| panic!("{e}"));
        let catalog_path = root.join("config/catalog.toml");
        let catalog_text = std::fs::read_to_string(&catalog_path)
            .unwrap_or_else(|e| panic!("{}: {e}", catalog_path.display()));
        let catalog =
            Catalog::parse(&catalog_path, &catalog_text).unwrap_or_else(|e| panic!("{e}"));
        let mut policy = Policy::with_defaults(HELPDESK, Tokens::new(b"fuzz".to_vec()));
        policy.catalog = Arc::new(catalog);
        policy.trusted_authserv_ids = vec![TRUSTED.into()];
        (directory, policy)
    })
}

/// A fixed instant: the core never reads the clock, and neither do its tests.
fn fixed_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

/// An open ticket of `requester`, assigned to the first technician of the catalogue.
fn ticket(folio: &str, requester: &str, subject: &str) -> TicketRef {
    TicketRef {
        id: 1,
        folio: folio.into(),
        status: Status::Open,
        subject: subject.into(),
        requester_email: requester.into(),
        requester_name: None,
        participants: vec!["participant@example.test".into()],
        assignee: Some("tech1@example.test".into()),
        priority: Priority::Media,
        service: "nuevas-ti".into(),
        language: "es".into(),
        created_at: fixed_time(),
        updated_at: fixed_time(),
        opening_message_id: Some("opening@folio.example.test".into()),
        life: Default::default(),
    }
}

/// Properties of a decision that hold whatever the mail says.
fn check_decision(decision: &Decision, sender: Option<&str>, automatic: bool, policy: &Policy) {
    let Decision::Record(record) = decision else {
        return;
    };
    for reply in &record.replies {
        let to = reply.to.to_lowercase();
        // A reply to our own address would be a mail loop.
        assert!(
            !policy.own_addresses.contains(&to) && to != policy.helpdesk_address,
            "a {} reply is addressed to the help desk itself ({to})",
            reply.template()
        );
        // Automatic mail is recorded, never answered.
        if automatic {
            assert!(
                sender.is_none_or(|s| !s.eq_ignore_ascii_case(&to)),
                "automatic mail answered with {} to its sender {to}",
                reply.template()
            );
        }
    }
}

/// Raw message bytes → `analysis::analyze` (MIME parsing, classification, requester, folio,
/// quote stripping, phone note, forward) → `inspect_json` → `decide::decide`, once with an
/// empty context (a new mail) and once as an answer to an open ticket (commands, follow-ups).
pub fn parse(data: &[u8]) {
    let (directory, policy) = setup();
    let analysis = match folio::desk::analysis::analyze(data, directory, policy, u64::MAX) {
        Ok(a) => a,
        // mail-parser has a debug_assert! that an unclosed multipart trips
        // (tests/fixtures/fuzz/parse/debug-assert-mail-parser-unclosed-multipart.eml); the
        // release build folio ships parses that mail, a debug build catches the panic and
        // quarantines it. Every other failure is a finding.
        Err(e) if cfg!(debug_assertions) && e == "the MIME parser failed on this message" => return,
        Err(e) => panic!("analyze failed: {e}"),
    };
    let _ = folio::daemon::pipeline::inspect_json(&analysis, policy, &Default::default());
    let sender = analysis.mail.from_email.clone();
    let automatic = analysis.verdict.is_automatic();

    let decision = folio::desk::decide::decide(&analysis, &Context::default(), policy);
    check_decision(&decision, sender.as_deref(), automatic, policy);

    let requester = sender.clone().unwrap_or_else(|| "ana@example.test".into());
    let folio = analysis
        .folio_reference
        .clone()
        .unwrap_or_else(|| "MDA-2026-000001".into());
    let open = ticket(&folio, &requester, &analysis.mail.subject);
    let ctx = Context {
        thread_ticket: Some(open.clone()),
        referenced_ticket: analysis.folio_reference.is_some().then(|| open.clone()),
        sender_tickets: vec![open],
        ..Context::default()
    };
    let decision = folio::desk::decide::decide(&analysis, &ctx, policy);
    check_decision(&decision, sender.as_deref(), automatic, policy);
}

/// Text → `quote::new_content`, `quote::reply_content`, `quote::forwarded`.
pub fn quote(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let new = folio::inbound::quote::new_content(&text);
    let reply = folio::inbound::quote::reply_content(&text);
    // Quote stripping only removes: what is left is never longer than the mail.
    assert!(
        new.len() <= text.len(),
        "new_content grew the text ({} > {})",
        new.len(),
        text.len()
    );
    assert!(
        reply.len() <= text.len(),
        "reply_content grew the text ({} > {})",
        reply.len(),
        text.len()
    );
    if let Some(f) = folio::inbound::quote::forwarded(&text) {
        assert!(
            f.from_email.contains('@') && f.from_email == f.from_email.to_lowercase(),
            "forwarded sender is not a lower-case address: {:?}",
            f.from_email
        );
        assert!(f.body.len() <= text.len(), "forwarded body grew the text");
    }
}

/// Text → `PhoneNote::parse`, without a signer and with the first line as the signer's name.
pub fn phone_note(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (first, rest) = text.split_once('\n').unwrap_or(("", &text));
    for (body, signer) in [(&*text, None), (rest, Some(first))] {
        if let Some(note) = PhoneNote::parse(body, signer) {
            let _ = note.missing();
            if let Some(email) = &note.email {
                assert!(
                    email.contains('@') && *email == email.to_lowercase(),
                    "phone note email is not a lower-case address: {email:?}"
                );
            }
        }
    }
}

/// Text → `command::parse_commands` and `command::parse_query` (first line as the subject too).
pub fn command(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let commands = folio::desk::command::parse_commands(&text);
    for c in &commands.commands {
        let _ = c.describe();
    }
    let _ = commands.is_note();
    // The body is the reply without its command lines.
    assert!(
        commands.body.len() <= text.len(),
        "parse_commands body grew the text"
    );
    // Built once, as the daemon does: it compiles a regex.
    static FORMAT: OnceLock<FolioFormat> = OnceLock::new();
    let format = FORMAT.get_or_init(FolioFormat::default);
    let subject = text.lines().next().unwrap_or("");
    let _ = folio::desk::command::parse_query(&text, subject, format);
    let _ = folio::desk::command::parse_query(&text, "", format);
}

/// `Authentication-Results` → `authentication::parse` (the RFC 8601 grammar) on every header, and
/// `authentication::aligned_pass` over them. Input: the first line is the From domain, every
/// further line one header value, topmost first; the trusted authserv-id is `mx1.example.test`.
pub fn authentication(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let from_domain = lines.next().unwrap_or("").trim().to_string();
    let headers: Vec<String> = lines.map(str::to_string).collect();
    for h in &headers {
        if let Ok(parsed) = folio::inbound::authentication::parse(h) {
            // An authserv-id is never empty, and no header yields more results than it has `;`.
            assert!(
                !parsed.authserv_id.is_empty(),
                "empty authserv-id from {h:?}"
            );
            assert!(
                parsed.results.len() + parsed.malformed.len() <= h.matches(';').count(),
                "more results than separators in {h:?}"
            );
        }
    }
    let trusted = [TRUSTED.to_string()];
    if let Some(pass) =
        folio::inbound::authentication::aligned_pass(&headers, &trusted, &from_domain)
    {
        // Only a trusted server's header can prove anything.
        assert!(
            headers.iter().any(|h| h.to_lowercase().contains(TRUSTED)),
            "a pass ({pass}) without any header of the trusted server"
        );
    }
}
