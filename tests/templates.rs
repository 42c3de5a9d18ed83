//! Snapshots of the rendered templates: every template × language rendered with a fixed context
//! and compared with `tests/fixtures/rendered/`. After an intended template change, regenerate
//! with `UPDATE_GOLDEN=1 cargo test --test templates` and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use folio::render::Templates;
use serde_json::json;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn context(missing: bool) -> serde_json::Value {
    json!({
        "folio": "MDA-2026-000042",
        "subject": "No puedo entrar al correo <urgente>",
        "reply_subject": "Re: No puedo entrar al correo <urgente>",
        "summary": "Desde ayer no puedo entrar.\nMe dice \"contraseña inválida\" & no la cambié.",
        "requester": {
            "name": "Alicia Hernández",
            "email": "alice@example.test",
            "department": if missing { serde_json::Value::Null } else { json!("Recursos Humanos") },
            "phone": serde_json::Value::Null,
        },
        "missing": {"any": true, "name": false, "department": missing, "phone": true},
        "attachments": [{"name": "captura <1>.png", "size": 1234}],
        "helpdesk": {
            "name": "Mesa de Ayuda",
            "institution": "Dirección General de Sistemas y Tecnologías de la Información",
            "phone": "(722) 2769600 ext. 60100",
            "address": "helpdesk@example.test",
        },
    })
}

#[test]
fn rendered_templates_match_snapshots() {
    let templates = Templates::new(Path::new(REPO).join("mail-templates"));
    let dir = Path::new(REPO).join("tests/fixtures/rendered");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for lang in ["es", "en"] {
        for (variant, missing) in [("complete", false), ("missing", true)] {
            let r = templates
                .render(lang, "confirmation", &context(missing))
                .unwrap();
            for (part, text) in [("subject", &r.subject), ("txt", &r.text), ("html", &r.html)] {
                let file = dir.join(format!("confirmation.{lang}.{variant}.{part}"));
                if update {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&file, text).unwrap();
                    continue;
                }
                let want = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                    panic!("{}: {e} (run with UPDATE_GOLDEN=1)", file.display())
                });
                if &want != text {
                    std::fs::write(file.with_extension(format!("{part}.actual")), text).unwrap();
                    mismatches.push(file.display().to_string());
                }
            }
            // HTML escapes user text; the text part shows it as written.
            assert!(
                r.html.contains("No puedo entrar al correo &lt;urgente&gt;")
                    || !r.html.contains("urgente")
            );
            assert!(r.html.contains("captura &lt;1&gt;.png"));
            assert!(r.text.contains("captura <1>.png"));
            assert!(r.subject == "[Folio MDA-2026-000042] Re: No puedo entrar al correo <urgente>");
        }
    }
    assert!(
        mismatches.is_empty(),
        "rendered mail differs from the snapshot: {mismatches:?}"
    );
}
