//! The checks of single configuration values. Each one reports a problem as
//! "FILE: key: message" and returns a usable stand-in, so validation goes on and every problem
//! of the file is shown at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{is_loopback, Env, Secret, TlsMode};

/// Collects the problems of one configuration file, each with the file and the key at fault.
pub(super) struct Validator<'a> {
    path: &'a Path,
    issues: Vec<String>,
}

impl<'a> Validator<'a> {
    /// A validator for the file at `path` (named in every message).
    pub(super) fn new(path: &'a Path) -> Self {
        Validator {
            path,
            issues: Vec::new(),
        }
    }

    /// The file named in messages.
    pub(super) fn path(&self) -> &'a Path {
        self.path
    }

    /// The problems found so far, in the order they were found.
    pub(super) fn into_issues(self) -> Vec<String> {
        self.issues
    }

    pub(super) fn issue(&mut self, key: &str, message: impl std::fmt::Display) {
        self.issues
            .push(format!("{}: {key}: {message}", self.path.display()));
    }

    pub(super) fn duration(&mut self, key: &str, value: Option<String>, default: &str) -> Duration {
        let text = value.unwrap_or_else(|| default.to_string());
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.issue(key, "must be greater than zero");
                Duration::from_secs(1)
            }
            Err(e) => {
                self.issue(
                    key,
                    format!(
                        "expected a duration like \"30s\", \"5m\" or \"24h\", got {text:?} ({e})"
                    ),
                );
                Duration::from_secs(1)
            }
        }
    }

    pub(super) fn port(&mut self, key: &str, value: Option<i64>, default: u16) -> u16 {
        match value {
            None => default,
            Some(p) if (1..=65535).contains(&p) => p as u16,
            Some(p) => {
                self.issue(key, format!("expected 1-65535, got {p}"));
                default
            }
        }
    }

    pub(super) fn positive(
        &mut self,
        key: &str,
        value: Option<i64>,
        default: i64,
        max: i64,
    ) -> i64 {
        match value {
            None => default,
            Some(n) if n >= 1 && n <= max => n,
            Some(n) => {
                self.issue(key, format!("expected 1-{max}, got {n}"));
                default
            }
        }
    }

    /// One of the fixed words of `choices`; the first is the default, and the stand-in for a
    /// word that is none of them.
    pub(super) fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        choices: &[(&str, T)],
    ) -> T {
        let (default_word, default) = choices[0];
        let word = value.unwrap_or(default_word);
        if let Some((_, chosen)) = choices.iter().find(|(w, _)| *w == word) {
            return *chosen;
        }
        let quoted: Vec<String> = choices.iter().map(|(w, _)| format!("{w:?}")).collect();
        let expected = match quoted.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        self.issue(key, format!("expected {expected}, got {word:?}"));
        default
    }

    pub(super) fn tls(&mut self, key: &str, value: Option<String>) -> TlsMode {
        self.choice(
            key,
            value.as_deref(),
            &[
                ("implicit", TlsMode::Implicit),
                ("starttls", TlsMode::StartTls),
                ("none", TlsMode::None),
            ],
        )
    }

    pub(super) fn required(&mut self, key: &str, value: Option<String>) -> String {
        match value {
            Some(v) if !v.trim().is_empty() => v.trim().to_string(),
            _ => {
                self.issue(key, "is required");
                String::new()
            }
        }
    }

    /// A secret from, in order: the environment variable, the systemd credential (`key` with
    /// `-` for `.`, e.g. `imap-password`, in `$CREDENTIALS_DIRECTORY`; see
    /// [`credential_names`]), the `*_file`, the inline value.
    pub(super) fn secret(
        &mut self,
        key: &str,
        inline: Option<String>,
        file: Option<PathBuf>,
        env_name: &str,
        env: &dyn Env,
    ) -> Secret {
        if let Some(v) = env.var(env_name) {
            return Secret(v);
        }
        // systemd's LoadCredential= puts each credential in a file named after it; a unit that
        // passes none leaves the file absent, and the next source is looked at.
        if let Some(dir) = env.var("CREDENTIALS_DIRECTORY") {
            for name in credential_names(key) {
                let path = Path::new(&dir).join(name);
                match std::fs::read_to_string(&path) {
                    Ok(s) => return Secret(s.trim_end_matches(['\r', '\n']).to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        self.issue(
                            key,
                            format!("cannot read the systemd credential {}: {e}", path.display()),
                        );
                        return Secret::default();
                    }
                }
            }
        }
        if let Some(file) = file {
            return match std::fs::read_to_string(&file) {
                Ok(s) => Secret(s.trim_end_matches(['\r', '\n']).to_string()),
                Err(e) => {
                    self.issue(
                        &format!("{key}_file"),
                        format!("cannot read {}: {e}", file.display()),
                    );
                    Secret::default()
                }
            };
        }
        Secret(inline.unwrap_or_default())
    }

    pub(super) fn no_tls_only_for_loopback(&mut self, key: &str, tls: TlsMode, host: &str) {
        if tls == TlsMode::None && !is_loopback(host) {
            self.issue(
                key,
                format!(
                    "\"none\" is allowed only for a loopback host (127.0.0.1, ::1, localhost), not {host:?}; \
                     use \"implicit\" or \"starttls\""
                ),
            );
        }
    }

    /// A file that must exist when it is named (a CA bundle, the directory, the catalogue).
    pub(super) fn existing_file(&mut self, key: &str, file: Option<PathBuf>) -> Option<PathBuf> {
        if let Some(f) = &file {
            if !f.is_file() {
                self.issue(key, format!("{} does not exist", f.display()));
            }
        }
        file
    }
}

/// The systemd credentials that may hold the secret `key`, in order: `imap.password` →
/// `imap-password` (a unit's `LoadCredential=imap-password:…`), then `folio_imap-password`
/// (the packaged unit's `LoadCredential=folio:/etc/folio/credentials`, which names each file
/// of that directory `folio_<file>`).
pub(super) fn credential_names(key: &str) -> [String; 2] {
    let name = key.replace('.', "-");
    [name.clone(), format!("folio_{name}")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_names_every_word_and_falls_back_to_the_first() {
        let mut v = Validator::new(Path::new("f.toml"));
        let choices = [("text", 1), ("json", 2)];
        assert_eq!(v.choice("log.format", None, &choices), 1);
        assert_eq!(v.choice("log.format", Some("json"), &choices), 2);
        assert_eq!(v.choice("log.format", Some("xml"), &choices), 1);
        assert_eq!(v.tls("smtp.tls", Some("ssl".into())), TlsMode::Implicit);
        assert_eq!(
            v.into_issues(),
            vec![
                "f.toml: log.format: expected \"text\" or \"json\", got \"xml\"",
                "f.toml: smtp.tls: expected \"implicit\", \"starttls\" or \"none\", got \"ssl\"",
            ]
        );
    }

    #[test]
    fn durations_must_parse_and_be_positive() {
        let mut v = Validator::new(Path::new("f.toml"));
        assert_eq!(
            v.duration("a", None, "5m"),
            Duration::from_secs(300),
            "the default"
        );
        assert_eq!(
            v.duration("b", Some(" 0s ".into()), "5m"),
            Duration::from_secs(1)
        );
        assert_eq!(
            v.duration("c", Some("soon".into()), "5m"),
            Duration::from_secs(1)
        );
        assert_eq!(
            v.into_issues(),
            vec![
                "f.toml: b: must be greater than zero",
                "f.toml: c: expected a duration like \"30s\", \"5m\" or \"24h\", got \"soon\" (expected number at 0)",
            ]
        );
    }
}
