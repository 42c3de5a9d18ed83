//! Reading the configuration together with every file it names (templates, directory,
//! catalogue), checked as a whole: what `folio check-config` prints, and what a running daemon
//! does on SIGHUP before it lets go of the configuration it runs on.
//!
//! A reload that finds a problem changes nothing: the daemon goes on with what it had and logs
//! each problem, each naming its file and key (or template and line).

use std::path::Path;

use crate::config::{Config, Env};

/// A configuration whose files were all checked.
pub struct Checked {
    pub config: Config,
    /// The template languages found and checked.
    pub languages: Vec<String>,
}

/// Reads `path` (secrets from `env`) and checks the templates (as `folio templates check`
/// does, in strict mode against sample mails), the directory file and the catalogue. Every
/// problem found is returned, each naming the file and key at fault.
pub fn load_checked(path: &Path, env: &dyn Env) -> Result<Checked, Vec<String>> {
    let config = Config::load(path, env).map_err(|e| vec![e.to_string()])?;
    let languages = crate::daemon::templates::languages(&config, None);
    let report = crate::daemon::templates::check(&config, languages);
    let mut problems: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    if let Err(e) = crate::daemon::pipeline::directory_of(&config) {
        problems.push(e.to_string());
    }
    if let Some(f) = &config.catalog.file {
        if let Err(e) = crate::desk::catalog::Catalog::load(f) {
            problems.push(e.to_string());
        }
    }
    if problems.is_empty() {
        Ok(Checked {
            config,
            languages: report.languages,
        })
    } else {
        Err(problems)
    }
}

/// What of a change from `old` to `new` a reload cannot apply: the log settings are fixed when
/// the process starts. Every other setting takes effect, because a reload restarts the
/// daemon's workers on the new configuration (see `docs/configuration.md`).
pub fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.log.level != new.log.level {
        keys.push("log.level");
    }
    if old.log.format != new.log.format {
        keys.push("log.format");
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoEnv;
    impl Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("mail-templates");
        let text = format!(
            "[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"hd@example.test\"\npassword = \"x\"\n\
             [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n\
             [database]\nurl = \"sqlite://{db}\"\n\
             [templates]\ndir = \"{templates}\"\n{extra}",
            db = dir.join("folio.db").display(),
            templates = templates.display(),
        );
        let path = dir.join("folio.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_good_configuration_is_checked_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), "");
        let checked = load_checked(&path, &NoEnv).unwrap_or_else(|p| panic!("{p:?}"));
        assert!(checked.languages.contains(&"es".to_string()));
    }

    #[test]
    fn each_problem_names_its_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), "[imap]\n");
        let problems = load_checked(&path, &NoEnv).err().unwrap();
        assert!(
            problems[0].contains("folio.toml") && problems[0].contains("imap"),
            "{problems:?}"
        );
        let missing = dir.path().join("directorio.csv");
        let path = write_config(
            dir.path(),
            &format!("[directory]\nfile = \"{}\"\n", missing.display()),
        );
        let problems = load_checked(&path, &NoEnv).err().unwrap();
        assert!(
            problems.iter().any(|p| p.contains("directorio.csv")),
            "{problems:?}"
        );
    }

    #[test]
    fn only_the_log_settings_wait_for_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let old = load_checked(&write_config(dir.path(), ""), &NoEnv)
            .ok()
            .unwrap()
            .config;
        let new = load_checked(
            &write_config(
                dir.path(),
                "[log]\nlevel = \"debug\"\n[helpdesk]\nname = \"Otra\"\n",
            ),
            &NoEnv,
        )
        .ok()
        .unwrap()
        .config;
        assert_eq!(needs_restart(&old, &new), vec!["log.level"]);
        assert!(needs_restart(&old, &old).is_empty());
    }
}
