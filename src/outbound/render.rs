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
//!
//! [`Templates::check_strictly`] is the admin's check (`folio templates check`, `folio
//! check-config`): it compiles a folder afresh, as it is on disk (no last good version hides
//! an edit), renders every template with every sample mail of it, and says for each problem
//! the file, the line and how to put it right ([`Finding`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use handlebars::{Handlebars, RenderError, RenderErrorReason};
use serde_json::Value;

use crate::desk::notice::{self, Template};
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

/// A problem [`Templates::check_strictly`] found: the file, the line when there is one, what
/// is wrong and how to put it right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Finding {
    /// `path:line: message`, as compilers write it (editors jump there), and the hint below.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}\n    hint: {}", self.message, self.hint)
    }
}

/// The three files of a template: the part's name and whether it is the HTML one.
const PARTS: [(&str, bool); 3] = [("subject", false), ("txt", false), ("html", true)];

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

    /// Loads every template of `language` into the cache and says what is wrong with it (the
    /// daemon logs it at start-up): every file that does not compile and every file of a
    /// [`Template`] missing, each naming its file. It renders nothing; the admin's thorough
    /// check is [`Templates::check_strictly`].
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
            for (part, html) in PARTS {
                let reg = if html { &regs.html } else { &regs.text };
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

    /// Checks `language`'s folder as it is on disk now, for the admin (`folio templates
    /// check`, `folio check-config`): every file compiles, every [`Template`] has its three
    /// files, and each of them renders, in strict mode, every context `samples` has for its
    /// template. The folder is compiled afresh: unlike [`Templates::render`], no last good
    /// version stands in for a broken edit, so the check sees what the next start would.
    pub fn check_strictly(&self, language: &str, samples: &[(Template, Value)]) -> Vec<Finding> {
        let dir = self.root.join(language);
        let compiled = match Compiled::load(&dir) {
            Ok(c) => c,
            Err(e) => {
                return vec![Finding {
                    path: dir,
                    line: None,
                    message: format!("cannot read the folder: {e}"),
                    hint: "templates.dir holds one folder per language (`es`, `en`), each with \
                           the three files of every template (docs/templates.md)"
                        .into(),
                }]
            }
        };
        let mut findings = compiled.findings.clone();
        // A partial's problem is told once, not once per template and sample using it.
        let mut seen = HashSet::new();
        for template in Template::ALL {
            let contexts: Vec<&Value> = samples
                .iter()
                .filter(|(t, _)| *t == template)
                .map(|(_, c)| c)
                .collect();
            let known: BTreeSet<String> =
                contexts.iter().flat_map(|c| notice::variables(c)).collect();
            for (part, html) in PARTS {
                let key = format!("{template}.{part}");
                let path = dir.join(format!("{key}.hbs"));
                if !compiled.files.contains_key(&key) {
                    findings.push(Finding {
                        path,
                        line: None,
                        message: format!("missing: template `{template}` has no {part} file"),
                        hint: format!(
                            "every language folder provides NAME.subject.hbs, NAME.txt.hbs and \
                             NAME.html.hbs for each template: {}",
                            Template::ALL.map(Template::name).join(", ")
                        ),
                    });
                    continue;
                }
                if compiled.broken.contains(&key) {
                    continue; // reported where it failed to compile
                }
                let reg = if html {
                    &compiled.regs.html
                } else {
                    &compiled.regs.text
                };
                for context in &contexts {
                    let Err(e) = reg.render(&key, context) else {
                        continue;
                    };
                    if seen.insert((e.template_name.clone(), e.line_no, e.reason().to_string())) {
                        findings.extend(compiled.explain(&e, template, &path, &known));
                    }
                }
            }
        }
        findings
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

/// Compiles one file's `source` into `r` under `key`: a partial into both registries (text and
/// HTML templates may use it), a template into the one of its kind.
fn compile(
    r: &mut Registries,
    key: &str,
    partial: bool,
    source: &str,
) -> Result<(), handlebars::TemplateError> {
    if partial {
        r.text
            .register_partial(key, source)
            .and_then(|()| r.html.register_partial(key, source))
    } else if key.ends_with(".html") {
        r.html.register_template_string(key, source)
    } else {
        r.text.register_template_string(key, source)
    }
}

/// A folder compiled afresh, for [`Templates::check_strictly`].
struct Compiled {
    dir: PathBuf,
    regs: Registries,
    /// Registry key → file, for every `.hbs` file (compiled or not).
    files: HashMap<String, PathBuf>,
    /// The partials' names (`footer_text` for `_footer_text.hbs`).
    partials: BTreeSet<String>,
    /// Keys of the files that did not compile.
    broken: HashSet<String>,
    /// Files that cannot be read or compiled.
    findings: Vec<Finding>,
}

impl Compiled {
    fn load(dir: &Path) -> Result<Compiled, std::io::Error> {
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "hbs") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut c = Compiled {
            dir: dir.to_owned(),
            regs: new_registries(),
            files: HashMap::new(),
            partials: BTreeSet::new(),
            broken: HashSet::new(),
            findings: Vec::new(),
        };
        for path in paths {
            let (key, partial) = key_of(&path);
            c.files.insert(key.clone(), path.clone());
            if partial {
                c.partials.insert(key.clone());
            }
            let finding = match std::fs::read_to_string(&path) {
                Err(e) => Finding {
                    path,
                    line: None,
                    message: format!("cannot read: {e}"),
                    hint: "folio must be able to read every file of the folder".into(),
                },
                Ok(source) => match compile(&mut c.regs, &key, partial, &source) {
                    Ok(()) => continue,
                    Err(e) => syntax_finding(path, &source, &e),
                },
            };
            c.broken.insert(key);
            c.findings.push(finding);
        }
        Ok(c)
    }

    /// What rendering `template`'s file `path` with a sample failed on, at the file and line
    /// of the error (a partial's, when it was in one); `known` is what the samples have. `None`
    /// when it only repeats a problem already found (a partial that did not compile).
    fn explain(
        &self,
        e: &RenderError,
        template: Template,
        path: &Path,
        known: &BTreeSet<String>,
    ) -> Option<Finding> {
        let at = e
            .template_name
            .as_ref()
            .and_then(|name| self.files.get(name))
            .cloned()
            .unwrap_or_else(|| path.to_owned());
        // In a partial, say which template was being rendered: the partial may serve several.
        let within = if at.as_path() == path {
            String::new()
        } else {
            format!(" (rendering `{template}`)")
        };
        let variables = || variables_hint(template, None, known);
        let (message, hint) = match e.reason() {
            RenderErrorReason::MissingVariable(Some(var)) => (
                format!("unknown variable `{var}`{within}"),
                variables_hint(template, Some(var), known),
            ),
            RenderErrorReason::MissingVariable(None) => (
                format!("a variable that does not exist{within}"),
                variables(),
            ),
            RenderErrorReason::ParamNotFoundForIndex(helper, n) => (
                format!(
                    "`{helper}` is given an unknown variable (argument {}){within}",
                    n + 1
                ),
                variables(),
            ),
            RenderErrorReason::PartialNotFound(name) => {
                if self.broken.contains(name) {
                    return None;
                }
                let partials: Vec<&str> = self.partials.iter().map(String::as_str).collect();
                (
                    format!("no partial `{name}`{within}"),
                    format!(
                        "`{{{{> {name}}}}}` uses the file _{name}.hbs, which is not in {}; its \
                         partials are: {}",
                        self.dir.display(),
                        partials.join(", ")
                    ),
                )
            }
            RenderErrorReason::HelperNotFound(name) => (
                format!("no helper `{name}`{within}"),
                "the helpers are Handlebars' own (if, unless, each, with, lookup, eq, ne, gt, \
                 gte, lt, lte, and, or, not, len); a misspelt variable with arguments reads as \
                 a helper"
                    .into(),
            ),
            other => (
                format!("{other}{within}"),
                "see docs/templates.md for what each template may use".into(),
            ),
        };
        Some(Finding {
            path: at,
            line: e.line_no,
            message,
            hint,
        })
    }
}

/// The hint for an unknown variable `var` (`None`: one not named) in `template`: the variables
/// beside it (`ticket.sujeto` → every `ticket.…`), or all of them.
fn variables_hint(template: Template, var: Option<&str>, known: &BTreeSet<String>) -> String {
    let var = var.map(|v| v.trim_start_matches("this.").trim_start_matches("../"));
    let parent = var.and_then(|v| v.rsplit_once('.')).map(|(p, _)| p);
    let beside: Vec<&str> = match parent {
        Some(p) => known
            .iter()
            .filter(|k| k.starts_with(&format!("{p}.")) || k.starts_with(&format!("{p}[].")))
            .map(String::as_str)
            .collect(),
        None => vec![],
    };
    if beside.is_empty() {
        format!(
            "the variables of `{template}` are: {} (docs/templates.md)",
            known
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!(
            "`{template}`'s `{}` has: {} (every variable: docs/templates.md)",
            parent.unwrap_or_default(),
            beside.join(", ")
        )
    }
}

/// A file that does not compile, at the line to look at: where an unclosed block opens (the
/// parser only notices at the end of the file), otherwise where the parser stopped.
fn syntax_finding(path: PathBuf, source: &str, e: &handlebars::TemplateError) -> Finding {
    let stopped = e.pos().map(|(line, _)| line);
    match unclosed_block(source) {
        Some(Unclosed { name, line, tag }) => Finding {
            path,
            line: Some(line),
            message: format!("`{tag}` is never closed"),
            hint: format!(
                "close it with `{{{{/{name}}}}}` where the block ends (the parser reached the \
                 end of the file{})",
                stopped.map(|l| format!(", line {l}")).unwrap_or_default()
            ),
        },
        None => Finding {
            path,
            line: stopped,
            message: e.reason().to_string(),
            hint: "every `{{` needs its `}}`, and every `{{#block …}}` its `{{/block}}` \
                   (docs/templates.md)"
                .into(),
        },
    }
}

/// A block left open: `if` opened by `{{#if ticket.subject}}` on line 3.
#[derive(Debug, PartialEq, Eq)]
struct Unclosed {
    name: String,
    line: usize,
    /// The opening tag as written (cut at 80 characters).
    tag: String,
}

/// The innermost block (`{{#if …}}`, `{{#each …}}`, `{{^…}}`, `{{#> partial}}`) left open at
/// the end of `source`; `None` when every block closes (or a close does not match its
/// opening: the parser's own message says that well).
fn unclosed_block(source: &str) -> Option<Unclosed> {
    let mut open: Vec<Unclosed> = Vec::new();
    let mut rest = source;
    let mut offset = 0;
    let mut line = 1;
    while let Some(start) = rest.find("{{") {
        let tag = &rest[start + 2..];
        line += rest[..start].matches('\n').count();
        let body = tag
            .trim_start_matches('{')
            .trim_start_matches('~')
            .trim_start();
        // Comments may hold `}}` and braces of their own.
        let end = if body.starts_with("!--") {
            tag.find("--}}").map(|e| e + 4)
        } else {
            tag.find("}}").map(|e| e + 2)
        };
        let Some(end) = end else { break };
        let name = |s: &str| -> String {
            s.trim_start_matches(['>', '*'])
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .collect()
        };
        if !body.starts_with('!') {
            if let Some(opened) = body.strip_prefix('#').or_else(|| body.strip_prefix('^')) {
                let name = name(opened);
                if !name.is_empty() {
                    let tag = format!("{{{{{}", &tag[..end]);
                    open.push(Unclosed {
                        name,
                        line,
                        tag: tag.chars().take(80).collect(),
                    });
                }
            } else if let Some(closed) = body.strip_prefix('/') {
                match open.pop() {
                    Some(o) if o.name == name(closed) => {}
                    _ => return None,
                }
            }
        }
        line += tag[..end].matches('\n').count();
        offset += start + 2 + end;
        rest = &source[offset..];
    }
    open.pop()
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
            .and_then(|source| compile(r, &key, partial, &source).map_err(|e| e.to_string()));
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

    /// Every sample mail's contexts, as the CLI gives them to the check.
    fn samples() -> Vec<(Template, Value)> {
        use crate::desk::notice_samples;
        let policy = crate::desk::policy::Policy::with_defaults(
            "helpdesk@example.test",
            crate::desk::tokens::Tokens::new(b"t".to_vec()),
        );
        notice_samples::all_contexts(&policy)
    }

    /// The shipped `mail-templates/<language>` copied where a test may break it.
    fn shipped(language: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("mail-templates")
            .join(language);
        let to = tmp.path().join(language);
        std::fs::create_dir(&to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
        tmp
    }

    #[test]
    fn the_shipped_templates_pass_the_strict_check() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("mail-templates");
        let samples = samples();
        for language in ["es", "en"] {
            let findings = Templates::new(&root).check_strictly(language, &samples);
            assert!(findings.is_empty(), "{language}: {findings:#?}");
        }
    }

    #[test]
    fn the_strict_check_names_file_line_and_hint() {
        let tmp = shipped("es");
        let es = tmp.path().join("es");
        let t = Templates::new(tmp.path());
        let samples = samples();
        write(
            &es,
            "survey.txt.hbs",
            "Hola\n\nSu folio: {{ticket.sujeto}}\n",
        );
        write(
            &es,
            "closure.txt.hbs",
            "uno\n{{#if ticket.subject}}\ndos\n{{#each x}}{{/each}}\n",
        );
        std::fs::remove_file(es.join("status.html.hbs")).unwrap();
        write(&es, "reply.txt.hbs", "{{> pie_de_pagina}}");
        write(&es, "_footer_text.hbs", "{{helpdesk.nombre}}");
        let findings = t.check_strictly("es", &samples);
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        let has = |needle: &str| {
            assert!(
                text.iter().any(|f| f.contains(needle)),
                "no finding with {needle:?} in {text:#?}"
            )
        };
        let at = |file: &str| es.join(file).display().to_string();
        has(&format!(
            "{}:3: unknown variable `ticket.sujeto`",
            at("survey.txt.hbs")
        ));
        has("hint: `survey`'s `ticket` has: ticket.assignee");
        has("ticket.subject");
        has(&format!(
            "{}:2: `{{{{#if ticket.subject}}}}` is never closed",
            at("closure.txt.hbs")
        ));
        has("close it with `{{/if}}`");
        has(&format!(
            "{}: missing: template `status` has no html file",
            at("status.html.hbs")
        ));
        has("NAME.html.hbs for each template: confirmation, reply");
        has(&format!(
            "{}:1: no partial `pie_de_pagina`",
            at("reply.txt.hbs")
        ));
        has("its partials are: ");
        has(&format!(
            "{}:1: unknown variable `helpdesk.nombre` (rendering `",
            at("_footer_text.hbs")
        ));
        // The partial's problem is told once, not once per template using it.
        assert_eq!(
            text.iter()
                .filter(|f| f.contains("helpdesk.nombre"))
                .count(),
            1
        );
        assert_eq!(findings.len(), 5, "{text:#?}");
    }

    #[test]
    fn the_strict_check_sees_the_file_on_disk_not_the_last_good_version() {
        let tmp = shipped("es");
        let es = tmp.path().join("es");
        let t = Templates::with_recheck(tmp.path(), Duration::ZERO);
        let samples = samples();
        assert!(t.check_strictly("es", &samples).is_empty());
        let context = &samples[0].1;
        t.render("es", "confirmation", context).unwrap();
        write(&es, "confirmation.txt.hbs", "{{#each}}");
        // Mail still goes out with the last good version; the check reports the file.
        t.render("es", "confirmation", context).unwrap();
        let findings = t.check_strictly("es", &samples);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].path, es.join("confirmation.txt.hbs"));
        assert_eq!(findings[0].line, Some(1));
        let missing = t.check_strictly("fr", &samples);
        assert!(
            missing[0].message.starts_with("cannot read the folder"),
            "{missing:?}"
        );
    }

    #[test]
    fn an_unclosed_block_is_found_where_it_opens() {
        let unclosed = |source| unclosed_block(source).map(|u| (u.name, u.line, u.tag));
        assert_eq!(unclosed("a {{#if x}} b {{/if}}"), None);
        assert_eq!(
            unclosed("a\n{{#each xs}}\n{{#if x}}{{else}}{{/if}}\n"),
            Some(("each".into(), 2, "{{#each xs}}".into()))
        );
        assert_eq!(
            unclosed("{{!-- {{#if x}} --}}\n{{~#with y}}\n{{^z}}{{/z}}"),
            Some(("with".into(), 2, "{{~#with y}}".into()))
        );
        assert_eq!(
            unclosed("{{#> layout}}x"),
            Some(("layout".into(), 1, "{{#> layout}}".into()))
        );
        // A close that does not match: the parser says so better.
        assert_eq!(unclosed("{{#if x}}{{/each}}"), None);
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
