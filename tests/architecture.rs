//! The boundaries `ARCHITECTURE.md` states, checked on the source: which room may name which
//! crate or module. A boundary written down but not checked erodes with the first hurried fix;
//! this test names the file and line that crosses one.
//!
//! The check reads code, not comments: a line is looked at after its `//` comment is removed,
//! and doc comments are skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, as paths relative to the crate root with `/` separators.
fn rust_files(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel = path.strip_prefix(root).expect("under the root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// `(file, line number, code)` for every line of code in `src/`, comments removed.
fn code_lines() -> Vec<(String, usize, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), root, &mut files);
    assert!(
        files.len() > 20,
        "found only {} source files under src/: is the test looking in the right place?",
        files.len()
    );
    let mut lines = Vec::new();
    for file in files {
        let text = fs::read_to_string(root.join(&file)).expect("read source");
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            // A `//` inside a string literal (an URL) is rare in this code base and only makes
            // the check look at less of that line.
            let code = code.split(" //").next().unwrap_or(code);
            lines.push((file.clone(), i + 1, code.to_string()));
        }
    }
    lines
}

/// Whether `file` is one of `rooms` (a file, or a folder ending in `/`).
fn within(file: &str, rooms: &[&str]) -> bool {
    rooms.iter().any(|r| {
        if r.ends_with('/') {
            file.starts_with(r)
        } else {
            file == *r
        }
    })
}

/// The lines outside `allowed` that name `token` (a crate or module path).
fn crossings(lines: &[(String, usize, String)], token: &str, allowed: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|(file, _, code)| !within(file, allowed) && names(code, token))
        .map(|(file, n, code)| format!("{file}:{n}: {code}"))
        .collect()
}

/// Whether `code` names the path `token` (as `token::…`, `use token;` or `token::{…}`), not merely
/// a longer identifier that ends with it.
fn names(code: &str, token: &str) -> bool {
    code.match_indices(token).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = &code[i + token.len()..];
        let starts_path = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            || code[..i].ends_with("crate::");
        starts_path && (after.starts_with("::") || after.starts_with(';'))
    })
}

/// One boundary: `token` may be named only in `allowed`, because `why`.
struct Boundary {
    token: &'static str,
    allowed: &'static [&'static str],
    why: &'static str,
}

const BOUNDARIES: &[Boundary] = &[
    Boundary {
        token: "sqlx",
        allowed: &["src/store/"],
        why: "only the store knows SQL (a second backend must be a change to src/store/ alone)",
    },
    Boundary {
        token: "async_imap",
        allowed: &["src/inbound/imap.rs"],
        why: "only the IMAP adapter knows IMAP",
    },
    Boundary {
        token: "mail_parser",
        allowed: &["src/inbound/mail/", "src/inbound/mail.rs"],
        why: "only inbound::mail knows the MIME parser",
    },
    Boundary {
        token: "handlebars",
        allowed: &["src/outbound/render.rs"],
        why: "only outbound::render knows the template engine",
    },
    Boundary {
        token: "lettre",
        allowed: &[
            "src/outbound/smtp.rs",
            "src/outbound/outgoing.rs",
            "src/outbound/sender.rs",
        ],
        why: "only the outbound rooms build and send MIME",
    },
    Boundary {
        token: "reqwest",
        allowed: &["src/oauth/endpoint.rs"],
        why: "the only HTTP folio speaks is to the OAuth2 token endpoint",
    },
    Boundary {
        token: "oauth2",
        allowed: &["src/oauth/endpoint.rs"],
        why: "only oauth::endpoint knows the OAuth2 client crate",
    },
    Boundary {
        token: "chrono_tz",
        allowed: &[
            "src/calendar.rs",
            "src/config/",
            "src/clock.rs",
            "src/shutdown.rs",
            "src/tls.rs",
            "src/folio.rs",
            "src/fold.rs",
            "src/desk/",
        ],
        why: "local time is the calendar's business: the foundations read it, the desk's rules \
              may show it; the shell and the store keep UTC",
    },
    Boundary {
        token: "croner",
        allowed: &["src/config/", "src/daemon/"],
        why: "cron expressions are checked when the configuration is read and run by the \
              daemon's scheduler; no other room has a use for them",
    },
    Boundary {
        token: "axum",
        allowed: &["src/daemon/http.rs"],
        why: "only the HTTP listener knows the HTTP server",
    },
    Boundary {
        token: "metrics_exporter_prometheus",
        allowed: &["src/daemon/telemetry.rs"],
        why: "only daemon::telemetry knows how metrics are rendered",
    },
    Boundary {
        token: "metrics",
        allowed: &["src/daemon/telemetry.rs", "src/outbound/sender.rs"],
        why: "counters are the shell's business: telemetry registers them, the sender (below \
              the daemon) is handed its own; the core counts nothing",
    },
    Boundary {
        token: "tokio_cron_scheduler",
        allowed: &["src/daemon/"],
        why: "the scheduler is one of the shell's timers: it only says when to look for due work",
    },
];

/// The functional core: no I/O, no async runtime, no database, no clock, no shell.
const CORE: &[&str] = &["src/desk/", "src/inbound/"];
/// Inside the core, the one adapter that talks to a server.
const CORE_ADAPTERS: &[&str] = &["src/inbound/imap.rs"];
/// What the core must not name.
const NOT_IN_CORE: &[&str] = &[
    "tokio",
    "sqlx",
    "lettre",
    "async_imap",
    "crate::store",
    "crate::daemon",
    "crate::outbound::sender",
    "crate::outbound::smtp",
    "crate::clock",
    "std::net",
];

#[test]
fn each_crate_is_named_only_in_its_room() {
    let lines = code_lines();
    let mut problems = Vec::new();
    for b in BOUNDARIES {
        for c in crossings(&lines, b.token, b.allowed) {
            problems.push(format!(
                "{c}\n    `{}` outside {:?}: {}",
                b.token, b.allowed, b.why
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "boundaries crossed:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_functional_core_does_no_io_and_reads_no_clock() {
    let lines = code_lines();
    let core: Vec<_> = lines
        .iter()
        .filter(|(f, _, _)| within(f, CORE) && !within(f, CORE_ADAPTERS))
        .cloned()
        .collect();
    assert!(
        core.len() > 1000,
        "the core is missing: {} lines",
        core.len()
    );
    let mut problems = Vec::new();
    for token in NOT_IN_CORE {
        for c in crossings(&core, token, &[]) {
            problems.push(format!("{c}\n    the core names `{token}`"));
        }
    }
    // Files are read only where a configured file is loaded at start-up (catalogue, directory),
    // never while deciding.
    let loaders = ["src/desk/catalog.rs", "src/desk/requester.rs"];
    for (file, n, code) in &core {
        if names(code, "std::fs") && !loaders.contains(&file.as_str()) && !in_tests(file, *n) {
            problems.push(format!("{file}:{n}: {code}\n    the core reads files"));
        }
    }
    assert!(
        problems.is_empty(),
        "the core crosses its boundary:\n{}",
        problems.join("\n")
    );
}

/// Whether line `n` of `file` is inside its `#[cfg(test)]` module (tests may read fixtures).
fn in_tests(file: &str, n: usize) -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(root.join(file)).expect("read source");
    text.lines()
        .take(n)
        .any(|l| l.trim_start().starts_with("#[cfg(test)]"))
        || file.ends_with("/tests.rs")
}

/// The places that may read the wall clock or a monotonic timer, each for a reason stated at the
/// place: the clock itself, and shell timing that is not the core's business.
const CLOCK_READERS: &[&str] = &[
    "src/clock.rs",
    "src/heartbeat.rs",
    "src/daemon/pipeline.rs",
    "src/outbound/sender.rs",
    "src/outbound/smtp.rs",
    "src/outbound/render.rs",
];

#[test]
fn the_clock_lint_is_lifted_only_in_the_shell_and_with_a_reason() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), root, &mut files);
    let mut problems = Vec::new();
    let mut seen = 0;
    for file in files {
        let text = fs::read_to_string(root.join(&file)).expect("read source");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.contains("disallowed_methods") {
                continue;
            }
            seen += 1;
            let place = format!("{file}:{}", i + 1);
            if line.trim_start().starts_with("#![") {
                problems.push(format!("{place}: lifted for a whole module"));
            }
            if !within(&file, CLOCK_READERS) {
                problems.push(format!("{place}: lifted outside the shell's clock readers"));
            }
            // The reason: a comment among the few lines above the attribute.
            let reason = lines[i.saturating_sub(4)..i]
                .iter()
                .any(|l| l.trim_start().starts_with("//"));
            if !reason {
                problems.push(format!("{place}: lifted without a comment saying why"));
            }
        }
    }
    assert!(
        seen > 0,
        "no lifted clock lint found: is the test looking at src/?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The rooms of `src/`, from the top of the house down, each with the paths it holds. A room
/// may use the rooms below it and its own, never one above: the core cannot reach the shell.
const ROOMS: &[(&str, &[&str])] = &[
    ("the shell", &["daemon", "terminal"]),
    ("outbound mail", &["outbound"]),
    ("the store", &["store"]),
    ("the desk's rules", &["desk"]),
    ("inbound mail", &["inbound"]),
    ("the mailbox's OAuth2 tokens", &["oauth"]),
    (
        "foundations",
        &[
            "config",
            "calendar",
            "clock",
            "shutdown",
            "heartbeat",
            "tls",
            "folio",
            "fold",
        ],
    ),
];

/// The floor of `module` (a top-level module name), 0 at the top; `None` for `main.rs`/`lib.rs`.
fn floor(module: &str) -> Option<usize> {
    ROOMS.iter().position(|(_, held)| held.contains(&module))
}

/// The top-level module a source file belongs to: `src/desk/plan.rs` → `desk`.
fn module_of(file: &str) -> &str {
    let rest = file.trim_start_matches("src/");
    let first = rest.split('/').next().unwrap_or(rest);
    first.trim_end_matches(".rs")
}

#[test]
fn no_room_uses_one_above_it() {
    let lines = code_lines();
    let path = regex::Regex::new(r"crate::([a-z_]+)").expect("regex");
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, n, code) in &lines {
        let Some(own) = floor(module_of(file)) else {
            continue;
        };
        for c in path.captures_iter(code) {
            let Some(used) = floor(&c[1]) else {
                continue;
            };
            checked += 1;
            if used < own {
                problems.push(format!(
                    "{file}:{n}: {code}\n    {} uses {}, a room above it",
                    ROOMS[own].0, ROOMS[used].0
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} crate paths checked: is the test reading src/?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_module_has_a_room() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), root, &mut files);
    let homeless: Vec<&String> = files
        .iter()
        // main and lib are the crate roots; build.rs is Cargo's build script, no module.
        .filter(|f| {
            !matches!(module_of(f), "main" | "lib" | "build") && floor(module_of(f)).is_none()
        })
        .collect();
    assert!(
        homeless.is_empty(),
        "modules in no room of tests/architecture.rs's ROOMS (add them where they belong, and \
         to ARCHITECTURE.md): {homeless:?}"
    );
}

#[test]
fn the_checks_see_a_crossing() {
    // The checks above pass on clean code; this one shows they would catch a crossing.
    let lines = vec![
        ("src/desk/x.rs".to_string(), 1, "use sqlx::Row;".to_string()),
        (
            "src/desk/y.rs".to_string(),
            2,
            "let t = crate::clock::now();".to_string(),
        ),
        (
            "src/desk/z.rs".to_string(),
            3,
            "let v = my_sqlx::f();".to_string(),
        ),
        (
            "src/store/a.rs".to_string(),
            4,
            "use sqlx::Row;".to_string(),
        ),
    ];
    assert_eq!(
        crossings(&lines, "sqlx", &["src/store/"]),
        vec!["src/desk/x.rs:1: use sqlx::Row;"]
    );
    assert_eq!(crossings(&lines, "crate::clock", &[]).len(), 1);
    // Rooms: a file's room comes from its first folder or its name, and the shell is above the
    // store, which is above the rules.
    assert_eq!(module_of("src/desk/decide/staff.rs"), "desk");
    assert_eq!(module_of("src/clock.rs"), "clock");
    assert!(floor("daemon") < floor("store") && floor("store") < floor("desk"));
    assert!(floor("inbound") < floor("folio"));
}

/// Every test that `ARCHITECTURE.md` and `docs/security.md` cite as holding an invariant or a
/// defence, as `` `path/to/file.rs::test_name` `` (or `…::tests::test_name`), exists: a renamed
/// or deleted test must take its citation along.
#[test]
fn the_tests_the_docs_cite_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cite = regex::Regex::new(r"`((?:src|tests)/[\w/]+\.rs)((?:::\w+)+)`").expect("regex");
    let mut cited = 0;
    let mut problems = Vec::new();
    for doc in ["ARCHITECTURE.md", "docs/security.md"] {
        let text = fs::read_to_string(root.join(doc)).expect("read doc");
        for c in cite.captures_iter(&text) {
            let (file, path) = (&c[1], &c[2]);
            let name = path.rsplit("::").next().unwrap_or_default();
            cited += 1;
            match fs::read_to_string(root.join(file)) {
                Err(_) => problems.push(format!("{doc}: `{file}{path}`: no such file")),
                Ok(code) if !code.contains(&format!("fn {name}(")) => {
                    problems.push(format!("{doc}: `{file}{path}`: no test `{name}` there"))
                }
                Ok(_) => {}
            }
        }
    }
    assert!(
        cited > 40,
        "only {cited} citations found: is the pattern right?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The yardsticks of issue 8, reported rather than enforced (a yardstick, not a rule to game):
/// the longest functions outside tests and the longest files before their tests.
/// `cargo test --test architecture sizes -- --ignored --nocapture`.
#[test]
#[ignore]
fn sizes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), root, &mut files);
    let start = regex::Regex::new(r"^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?fn\s+(\w+)")
        .expect("regex");
    let literal = regex::Regex::new(r#""(\\.|[^"\\])*"|'(\\.|[^'\\])'"#).expect("regex");
    let mut functions = Vec::new();
    let mut lengths = Vec::new();
    // Test modules kept in files of their own are tests, whatever their length.
    let code_files = files
        .iter()
        .filter(|f| !f.ends_with("/tests.rs") && !f.ends_with("/test_support.rs"));
    for file in code_files {
        let text = fs::read_to_string(root.join(file)).expect("read source");
        let lines: Vec<&str> = text.lines().collect();
        let code_end = lines
            .iter()
            .position(|l| l.starts_with("#[cfg(test)]"))
            .unwrap_or(lines.len());
        lengths.push((code_end, file.clone()));
        for (i, line) in lines[..code_end].iter().enumerate() {
            let Some(name) = start.captures(line).map(|c| c[5].to_string()) else {
                continue;
            };
            // The function ends where its braces balance (string and char literals and `//`
            // comments left out of the count).
            let (mut depth, mut opened) = (0i32, false);
            for (j, l) in lines[i..].iter().enumerate() {
                let l = literal.replace_all(l, "\"\"");
                let l = l.split("//").next().unwrap_or_default();
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    functions.push((j + 1, format!("{file}:{} {name}", i + 1)));
                    break;
                }
            }
        }
    }
    functions.sort_by_key(|f| std::cmp::Reverse(f.0));
    lengths.sort_by_key(|f| std::cmp::Reverse(f.0));
    println!("longest functions outside tests (lines):");
    for (n, f) in functions.iter().take(10) {
        println!("  {n:5} {f}");
    }
    println!("longest files before their tests (lines):");
    for (n, f) in lengths.iter().take(10) {
        println!("  {n:5} {f}");
    }
    assert!(!functions.is_empty(), "no function found in src/");
}
