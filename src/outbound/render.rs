//! Templates: Handlebars files in `mail-templates/<language>/` rendered into subject, text and HTML.
//!
//! A template `NAME` is three files: `NAME.subject.hbs`, `NAME.txt.hbs`, `NAME.html.hbs`. Files
//! starting with `_` are partials (`_footer_html.hbs` is used as `{{> footer_html}}`). HTML
//! templates escape user text; subject and text templates do not. Strict mode: a variable that
//! does not exist is an error naming the template and line.
//!
//! A file is re-read when it changes (the folder is looked at once a second at most), so an
//! admin's edit takes effect without a restart. Each file is compiled on its own: an edit that
//! does not compile is logged as an error and the file's last good version stays in use until
//! it is fixed, so one broken template never stops the others. A file broken before it ever
//! compiled fails only the mail that uses it: rendering happens when a mail is sent, so that
//! mail stays queued and retryable instead of being lost, and `check-config` names the file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use handlebars::Handlebars;

use crate::desk::notice::Template;
use crate::outbound::outgoing::Rendered;

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

#[derive(Clone)]
struct Registries {
    text: Handlebars<'static>,
    html: Handlebars<'static>,
}

/// One language folder as loaded: every file is compiled on its own, so one broken file never
/// stops the others.
struct Language {
    regs: Arc<Registries>,
    /// Each file's modification time and size when it was last read (good or broken).
    seen: HashMap<PathBuf, (SystemTime, u64)>,
    /// Files whose current version cannot be read or compiled, with the error. A file that
    /// compiled before keeps its last good version in `regs` meanwhile.
    broken: BTreeMap<PathBuf, String>,
    checked: Instant,
}

/// The template store: one folder per language, reloaded on change.
pub struct Templates {
    root: PathBuf,
    /// How long a loaded folder is used before its files are looked at again.
    recheck: Duration,
    cache: Mutex<HashMap<String, Language>>,
}

impl Templates {
    /// Templates under `root`, checked for changes at most once a second.
    pub fn new(root: impl Into<PathBuf>) -> Templates {
        Templates::with_recheck(root, Duration::from_secs(1))
    }

    /// Templates under `root`, checked for changes at most every `recheck` (`Duration::ZERO`:
    /// on every render, for tests that must not wait on a timer).
    pub fn with_recheck(root: impl Into<PathBuf>, recheck: Duration) -> Templates {
        Templates {
            root: root.into(),
            recheck,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Renders template `name` in `language` with `context`. A file broken since it last
    /// compiled renders its last good version (the error is logged when the edit is seen); a
    /// file broken since before its first load fails the mails that use it, and only those.
    pub fn render(
        &self,
        language: &str,
        name: &str,
        context: &serde_json::Value,
    ) -> Result<Rendered, TemplateError> {
        let dir = self.root.join(language);
        let (regs, broken) = self.registries(language)?;
        let part = |reg: &Handlebars, part: &'static str| {
            let key = format!("{name}.{part}");
            if !reg.has_template(&key) {
                let path = dir.join(format!("{key}.hbs"));
                return Err(match broken.get(&path) {
                    Some(message) => TemplateError::Syntax {
                        path,
                        message: message.clone(),
                    },
                    None => TemplateError::Missing {
                        dir: dir.clone(),
                        name: name.to_string(),
                        part,
                    },
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

    /// Loads and checks every template of `language` (for `check-config`): every file that
    /// does not compile and every file of a [`Template`] missing, each naming its file.
    pub fn check(&self, language: &str) -> Vec<TemplateError> {
        let (regs, broken) = match self.registries(language) {
            Ok(r) => r,
            Err(e) => return vec![e],
        };
        let dir = self.root.join(language);
        let mut problems: Vec<TemplateError> = broken
            .into_iter()
            .map(|(path, message)| TemplateError::Syntax { path, message })
            .collect();
        for name in Template::ALL.map(Template::name) {
            for (reg, part) in [
                (&regs.text, "subject"),
                (&regs.text, "txt"),
                (&regs.html, "html"),
            ] {
                let key = format!("{name}.{part}");
                if !reg.has_template(&key) && !dir.join(format!("{key}.hbs")).exists() {
                    problems.push(TemplateError::Missing {
                        dir: dir.clone(),
                        name: name.to_string(),
                        part,
                    });
                }
            }
        }
        problems
    }

    /// The files of `language` whose current version does not compile, with the error (a
    /// file that compiled before is rendered from its last good version meanwhile).
    pub fn broken(&self, language: &str) -> Result<Vec<TemplateError>, TemplateError> {
        let (_, broken) = self.registries(language)?;
        Ok(broken
            .into_iter()
            .map(|(path, message)| TemplateError::Syntax { path, message })
            .collect())
    }

    // Edge: the re-check interval is a monotonic duration on this process's timer, not a date.
    #[allow(clippy::type_complexity, clippy::disallowed_methods)]
    fn registries(
        &self,
        language: &str,
    ) -> Result<(Arc<Registries>, BTreeMap<PathBuf, String>), TemplateError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.root.join(language);
        if let Some(l) = cache.get(language) {
            if l.checked.elapsed() < self.recheck {
                return Ok((l.regs.clone(), l.broken.clone()));
            }
        }
        let files = match stamp(&dir) {
            Ok(f) => f,
            Err(e) => match cache.get_mut(language) {
                // The folder cannot be read right now: keep what was loaded.
                Some(l) => {
                    tracing::error!(error = %e, "templates: cannot read the folder; using the templates loaded before");
                    l.checked = Instant::now();
                    return Ok((l.regs.clone(), l.broken.clone()));
                }
                None => return Err(e),
            },
        };
        let lang = cache
            .entry(language.to_string())
            .or_insert_with(|| Language {
                regs: Arc::new(new_registries()),
                seen: HashMap::new(),
                broken: BTreeMap::new(),
                checked: Instant::now(),
            });
        update(lang, files);
        lang.checked = Instant::now();
        Ok((lang.regs.clone(), lang.broken.clone()))
    }
}

fn new_registries() -> Registries {
    let mut text = Handlebars::new();
    text.register_escape_fn(handlebars::no_escape);
    text.set_strict_mode(true);
    let mut html = Handlebars::new();
    html.set_strict_mode(true);
    Registries { text, html }
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

/// The registry key of a file (`confirmation.txt`, or `footer_html` for the partial
/// `_footer_html.hbs`) and whether it is a partial.
fn key_of(path: &Path) -> (String, bool) {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().trim_end_matches(".hbs").to_string())
        .unwrap_or_default();
    match file.strip_prefix('_') {
        Some(partial) => (partial.to_string(), true),
        None => (file, false),
    }
}

/// Re-reads the files that changed since `lang` last saw them, each on its own: one that
/// compiles replaces its previous version at once; one that does not is logged and recorded in
/// `broken`, and its last good version (if any) stays in use.
fn update(lang: &mut Language, files: Vec<(PathBuf, SystemTime, u64)>) {
    let mut regs: Option<Registries> = None;
    let current: HashSet<&PathBuf> = files.iter().map(|(p, _, _)| p).collect();
    for gone in lang
        .seen
        .keys()
        .filter(|p| !current.contains(p))
        .cloned()
        .collect::<Vec<_>>()
    {
        let r = regs.get_or_insert_with(|| (*lang.regs).clone());
        let (key, _) = key_of(&gone);
        r.text.unregister_template(&key);
        r.html.unregister_template(&key);
        lang.seen.remove(&gone);
        lang.broken.remove(&gone);
        tracing::warn!(file = %gone.display(), "template removed");
    }
    for (path, modified, len) in files {
        if lang.seen.get(&path) == Some(&(modified, len)) {
            continue;
        }
        let first = !lang.seen.contains_key(&path);
        lang.seen.insert(path.clone(), (modified, len));
        let r = regs.get_or_insert_with(|| (*lang.regs).clone());
        let (key, partial) = key_of(&path);
        let result = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|source| {
                let compiled = if partial {
                    r.text
                        .register_partial(&key, &source)
                        .and_then(|()| r.html.register_partial(&key, &source))
                } else if key.ends_with(".html") {
                    r.html.register_template_string(&key, &source)
                } else {
                    r.text.register_template_string(&key, &source)
                };
                compiled.map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => {
                if lang.broken.remove(&path).is_some() {
                    tracing::info!(file = %path.display(), "template fixed; the new version is in use");
                } else if !first {
                    tracing::info!(file = %path.display(), "template reloaded");
                }
            }
            Err(message) => {
                let has_last_good = r.text.has_template(&key) || r.html.has_template(&key);
                if has_last_good {
                    tracing::error!(
                        file = %path.display(), error = %message,
                        "TEMPLATE BROKEN: its last good version is used until it is fixed"
                    );
                } else {
                    tracing::error!(
                        file = %path.display(), error = %message,
                        "TEMPLATE BROKEN: mail using it stays queued until it is fixed"
                    );
                }
                lang.broken.insert(path, message);
            }
        }
    }
    if let Some(r) = regs {
        lang.regs = Arc::new(r);
    }
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
        assert_eq!(t.render("es", "t", &ctx).unwrap().text, "a");
        let e = t.broken("es").unwrap()[0].to_string();
        assert!(e.contains("t.txt.hbs"), "{e}");
        write(&es, "t.txt.hbs", "{{nosuchvar}}");
        let e = t.render("es", "t", &ctx).unwrap_err().to_string();
        assert!(e.contains("t.txt.hbs") && e.contains("nosuchvar"), "{e}");
    }

    #[test]
    fn a_broken_edit_keeps_the_last_good_version_and_spares_the_others() {
        let tmp = tempfile::tempdir().unwrap();
        let es = tmp.path().join("es");
        std::fs::create_dir(&es).unwrap();
        for t in ["a", "b"] {
            write(&es, &format!("{t}.subject.hbs"), &format!("{t} {{{{x}}}}"));
            write(
                &es,
                &format!("{t}.txt.hbs"),
                &format!("{t} texto {{{{> pie}}}}"),
            );
            write(&es, &format!("{t}.html.hbs"), &format!("<p>{t}</p>"));
        }
        write(&es, "_pie.hbs", "pie");
        let t = Templates::with_recheck(tmp.path(), Duration::ZERO);
        let ctx = serde_json::json!({"x": 1});
        assert_eq!(t.render("es", "a", &ctx).unwrap().text, "a texto pie");

        // `a`'s text breaks: `a` renders its last good text, `b` is untouched.
        write(&es, "a.txt.hbs", "a texto nuevo {{#if}}");
        assert_eq!(t.render("es", "a", &ctx).unwrap().text, "a texto pie");
        assert_eq!(t.render("es", "b", &ctx).unwrap().text, "b texto pie");
        let broken = t.broken("es").unwrap();
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(broken[0].to_string().contains("a.txt.hbs"), "{}", broken[0]);
        let problems = t.check("es");
        assert!(
            problems.iter().any(|p| p.to_string().contains("a.txt.hbs")),
            "{problems:?}"
        );

        // A broken partial: the templates using it keep its last good version.
        write(&es, "_pie.hbs", "{{/if}}");
        assert_eq!(t.render("es", "b", &ctx).unwrap().text, "b texto pie");
        assert_eq!(t.broken("es").unwrap().len(), 2);

        // Fixed files are used at once.
        write(&es, "a.txt.hbs", "a texto corregido {{> pie}}");
        write(&es, "_pie.hbs", "pie nuevo");
        assert_eq!(
            t.render("es", "a", &ctx).unwrap().text,
            "a texto corregido pie nuevo"
        );
        assert_eq!(t.render("es", "b", &ctx).unwrap().text, "b texto pie nuevo");
        assert!(t.broken("es").unwrap().is_empty());
    }

    #[test]
    fn a_template_broken_from_the_start_fails_only_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let es = tmp.path().join("es");
        std::fs::create_dir(&es).unwrap();
        for t in ["a", "b"] {
            write(&es, &format!("{t}.subject.hbs"), t);
            write(&es, &format!("{t}.txt.hbs"), t);
            write(&es, &format!("{t}.html.hbs"), t);
        }
        write(&es, "a.html.hbs", "<p>{{#each}}</p>");
        let t = Templates::with_recheck(tmp.path(), Duration::ZERO);
        let ctx = serde_json::json!({});
        let e = t.render("es", "a", &ctx).unwrap_err().to_string();
        assert!(e.contains("a.html.hbs"), "{e}");
        assert_eq!(t.render("es", "b", &ctx).unwrap().html, "b");
        let problems = t.check("es");
        assert!(
            problems
                .iter()
                .any(|p| p.to_string().contains("a.html.hbs")),
            "{problems:?}"
        );
        write(&es, "a.html.hbs", "<p>bien</p>");
        assert_eq!(t.render("es", "a", &ctx).unwrap().html, "<p>bien</p>");
    }
}
