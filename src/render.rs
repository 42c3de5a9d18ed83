//! Templates: Handlebars files in `mail-templates/<language>/` rendered into subject, text and HTML.
//!
//! A template `NAME` is three files: `NAME.subject.hbs`, `NAME.txt.hbs`, `NAME.html.hbs`. Files
//! starting with `_` are partials (`_footer_html.hbs` is used as `{{> footer_html}}`). HTML
//! templates escape user text; subject and text templates do not. Strict mode: a variable that
//! does not exist is an error naming the template and line.
//!
//! Templates are re-read when any file in the language folder changes (the folder is looked at
//! once a second at most), so an admin's edit takes effect without a restart. Rendering happens when a mail is sent, so a broken template leaves
//! the mail queued and retryable instead of losing it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use handlebars::Handlebars;

use crate::outgoing::Rendered;

/// A template problem, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{dir}: template {name:?} is missing its {part} file ({name}.{part}.hbs)")]
    Missing {
        dir: PathBuf,
        name: String,
        part: &'static str,
    },
    #[error("{dir}/{name}.{part}.hbs: {message}")]
    Render {
        dir: PathBuf,
        name: String,
        part: &'static str,
        message: String,
    },
}

/// The templates every language folder must provide.
pub const REQUIRED: &[&str] = &[
    // to requesters (and a phone agent's copy of the confirmation)
    "confirmation",
    "reply",
    "resolved",
    "status",
    "status_denied",
    "my_tickets",
    // to technicians
    "assignment",
    "follow_up",
    "command_result",
    "bounce_notice",
];

struct Registries {
    stamp: Vec<(PathBuf, SystemTime, u64)>,
    text: Handlebars<'static>,
    html: Handlebars<'static>,
}

/// The template store: one folder per language, reloaded on change.
pub struct Templates {
    root: PathBuf,
    /// How long a loaded folder is used before its files are looked at again.
    recheck: Duration,
    cache: Mutex<HashMap<String, (Arc<Registries>, Instant)>>,
}

impl Templates {
    /// Templates under `root`, checked for changes at most once a second.
    pub fn new(root: impl Into<PathBuf>) -> Templates {
        Templates::with_recheck(root, Duration::from_secs(1))
    }

    /// Templates under `root`, checked for changes at most every `recheck`.
    pub fn with_recheck(root: impl Into<PathBuf>, recheck: Duration) -> Templates {
        Templates {
            root: root.into(),
            recheck,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Renders template `name` in `language` with `context`.
    pub fn render(
        &self,
        language: &str,
        name: &str,
        context: &serde_json::Value,
    ) -> Result<Rendered, TemplateError> {
        let dir = self.root.join(language);
        let regs = self.registries(language)?;
        let part = |reg: &Handlebars, part: &'static str| {
            let key = format!("{name}.{part}");
            if !reg.has_template(&key) {
                return Err(TemplateError::Missing {
                    dir: dir.clone(),
                    name: name.to_string(),
                    part,
                });
            }
            reg.render(&key, context)
                .map_err(|e| TemplateError::Render {
                    dir: dir.clone(),
                    name: name.to_string(),
                    part,
                    message: e.to_string(),
                })
        };
        Ok(Rendered {
            subject: part(&regs.text, "subject")?
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            text: part(&regs.text, "txt")?,
            html: part(&regs.html, "html")?,
        })
    }

    /// Loads and checks every template of `language` (for `check-config`).
    pub fn check(&self, language: &str) -> Result<(), TemplateError> {
        let regs = self.registries(language)?;
        for name in REQUIRED {
            for (reg, part) in [
                (&regs.text, "subject"),
                (&regs.text, "txt"),
                (&regs.html, "html"),
            ] {
                if !reg.has_template(&format!("{name}.{part}")) {
                    return Err(TemplateError::Missing {
                        dir: self.root.join(language),
                        name: name.to_string(),
                        part,
                    });
                }
            }
        }
        Ok(())
    }

    // Edge: the re-check interval is a monotonic duration on this process's timer, not a date.
    #[allow(clippy::disallowed_methods)]
    fn registries(&self, language: &str) -> Result<Arc<Registries>, TemplateError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((r, checked)) = cache.get(language) {
            if checked.elapsed() < self.recheck {
                return Ok(r.clone());
            }
        }
        let stamp = stamp(&self.root.join(language))?;
        let regs = match cache.get(language) {
            Some((r, _)) if r.stamp == stamp => r.clone(),
            _ => Arc::new(load(stamp)?),
        };
        cache.insert(language.to_string(), (regs.clone(), Instant::now()));
        Ok(regs)
    }
}

/// Names, modification times and sizes of the folder's files: changes when an admin edits one.
fn stamp(dir: &Path) -> Result<Vec<(PathBuf, SystemTime, u64)>, TemplateError> {
    let read_err = |source| TemplateError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "hbs") {
            let meta = entry.metadata().map_err(read_err)?;
            out.push((path, meta.modified().map_err(read_err)?, meta.len()));
        }
    }
    out.sort();
    Ok(out)
}

fn load(stamp: Vec<(PathBuf, SystemTime, u64)>) -> Result<Registries, TemplateError> {
    let mut text = Handlebars::new();
    text.register_escape_fn(handlebars::no_escape);
    text.set_strict_mode(true);
    let mut html = Handlebars::new();
    html.set_strict_mode(true);
    for (path, _, _) in &stamp {
        let source = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.clone(),
            source,
        })?;
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().trim_end_matches(".hbs").to_string())
            .unwrap_or_default();
        let syntax = |e: handlebars::TemplateError| TemplateError::Syntax {
            path: path.clone(),
            message: e.to_string(),
        };
        if let Some(partial) = file.strip_prefix('_') {
            text.register_partial(partial, &source).map_err(syntax)?;
            html.register_partial(partial, &source).map_err(syntax)?;
        } else if file.ends_with(".html") {
            html.register_template_string(&file, &source)
                .map_err(syntax)?;
        } else {
            text.register_template_string(&file, &source)
                .map_err(syntax)?;
        }
    }
    Ok(Registries { stamp, text, html })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        std::fs::write(dir.join(name), body).unwrap();
    }

    #[test]
    fn html_escapes_and_text_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let es = tmp.path().join("es");
        std::fs::create_dir(&es).unwrap();
        write(&es, "t.subject.hbs", "[Folio {{folio}}] {{subject}}\n");
        write(&es, "t.txt.hbs", "{{summary}}\n{{> foot}}");
        write(&es, "t.html.hbs", "<p>{{summary}}</p>");
        write(&es, "_foot.hbs", "-- {{helpdesk}}");
        let t = Templates::new(tmp.path());
        let ctx = serde_json::json!({"folio": "MDA-2026-000001", "subject": "a <b>", "summary": "x < y & z", "helpdesk": "MDA"});
        let r = t.render("es", "t", &ctx).unwrap();
        assert_eq!(r.subject, "[Folio MDA-2026-000001] a <b>");
        assert_eq!(r.text, "x < y & z\n-- MDA");
        assert_eq!(r.html, "<p>x &lt; y &amp; z</p>");
    }

    #[test]
    fn edits_take_effect_and_errors_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let es = tmp.path().join("es");
        std::fs::create_dir(&es).unwrap();
        write(&es, "t.subject.hbs", "uno");
        write(&es, "t.txt.hbs", "a");
        write(&es, "t.html.hbs", "b");
        let t = Templates::with_recheck(tmp.path(), Duration::ZERO);
        let ctx = serde_json::json!({});
        assert_eq!(t.render("es", "t", &ctx).unwrap().subject, "uno");
        write(&es, "t.subject.hbs", "dos, más largo");
        assert_eq!(t.render("es", "t", &ctx).unwrap().subject, "dos, más largo");
        write(&es, "t.txt.hbs", "{{#if}}");
        let e = t.render("es", "t", &ctx).unwrap_err().to_string();
        assert!(e.contains("t.txt.hbs"), "{e}");
        write(&es, "t.txt.hbs", "{{nosuchvar}}");
        let e = t.render("es", "t", &ctx).unwrap_err().to_string();
        assert!(e.contains("t.txt.hbs") && e.contains("nosuchvar"), "{e}");
    }
}
