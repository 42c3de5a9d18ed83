//! `folio templates check` and `folio templates preview`: templates admins can trust before a
//! requester sees them. `folio check-config` checks templates through [`check`] too, so the
//! two commands never disagree.
//!
//! Both render the sample mails of [`crate::desk::notice_samples`]: the check every sample of
//! every template in strict mode ([`Templates::check_strictly`], which compiles the folders as
//! they are on disk), the preview one template's usual mail, around a real ticket when asked.

use std::fmt;

use crate::config::Config;
use crate::daemon::pipeline::{self, SetupError};
use crate::desk::notice::Template;
use crate::desk::notice_samples::{self, SAMPLE_FOLIO};
use crate::desk::policy::Policy;
use crate::desk::tokens::Tokens;
use crate::outbound::outgoing::Rendered;
use crate::outbound::render::{Finding, TemplateError, Templates};
use crate::store::{Store, StoreError};

/// `--lang` for every language folder.
pub const ALL_LANGUAGES: &str = "all";

/// Why a preview could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("no template {name:?}; the templates are: {}", Template::ALL.map(Template::name).join(", "))]
    UnknownTemplate { name: String },
    #[error("no ticket with folio {folio} in {database}")]
    UnknownFolio { folio: String, database: String },
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} (`folio templates check` lists every problem)")]
    Template(#[from] TemplateError),
}

/// What [`check`] found, for every language folder it looked at.
#[derive(Debug)]
pub struct Report {
    /// The folders checked, the configured language first.
    pub languages: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for Report {
    /// The summary line: `19 templates × 2 languages (es, en): ok`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.languages.len();
        write!(
            f,
            "{} templates × {n} language{} ({}): ",
            Template::ALL.len(),
            if n == 1 { "" } else { "s" },
            self.languages.join(", ")
        )?;
        match self.findings.len() {
            0 => f.write_str("ok"),
            1 => f.write_str("1 problem"),
            problems => write!(f, "{problems} problems"),
        }
    }
}

/// The language folders to check: `requested`, or with `None` or [`ALL_LANGUAGES`] every
/// folder under `templates.dir`, the configured language first (checked even without a
/// folder, so its absence is reported).
pub fn languages(config: &Config, requested: Option<&str>) -> Vec<String> {
    if let Some(one) = requested.filter(|r| *r != ALL_LANGUAGES) {
        return vec![one.to_string()];
    }
    let configured = &config.templates.language;
    let mut others: Vec<String> = std::fs::read_dir(&config.templates.dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|name| !name.starts_with('.') && name != configured)
        .collect();
    others.sort();
    std::iter::once(configured.clone()).chain(others).collect()
}

/// Checks the templates of `languages` against every sample mail, strictly (see
/// [`Templates::check_strictly`]).
pub fn check(config: &Config, languages: Vec<String>) -> Report {
    let policy = sample_policy(config);
    let samples = notice_samples::all_contexts(&policy);
    let templates = Templates::new(&config.templates.dir);
    let findings = languages
        .iter()
        .flat_map(|language| templates.check_strictly(language, &samples))
        .collect();
    Report {
        languages,
        findings,
    }
}

/// The policy the samples are written under: the site's, so they carry its help desk and its
/// catalogue's names; the defaults when the catalogue or folio format is broken (check-config
/// reports that on its own, and a template's variables do not depend on it).
fn sample_policy(config: &Config) -> Policy {
    pipeline::policy_of(config, no_secret()).unwrap_or_else(|_| {
        let mut policy = Policy::with_defaults(&config.smtp.from_address, no_secret());
        policy.helpdesk_name = config.helpdesk.name.clone();
        policy.institution = config.helpdesk.institution.clone();
        policy.helpdesk_phone = config.helpdesk.phone.clone();
        policy
    })
}

/// No mail a preview or check renders carries a token: the site secret (in the database) is
/// not needed, so a check works on a machine without the database.
fn no_secret() -> Tokens {
    Tokens::new(b"folio templates: no site secret".to_vec())
}

/// A template rendered for `folio templates preview`.
#[derive(Debug)]
pub struct Preview {
    pub template: Template,
    pub language: String,
    pub rendered: Rendered,
}

impl Preview {
    /// The Subject and the text part, for the terminal (a real ticket's subject is a
    /// stranger's text: escaped like every mail-derived string the CLI prints).
    pub fn terminal_text(&self) -> String {
        format!(
            "Subject: {}\n\n{}",
            crate::terminal::line(&self.rendered.subject),
            crate::terminal::block(&self.rendered.text)
        )
    }
}

/// Renders template `name` in `language` (by default the ticket's language, or
/// `templates.language`) with its usual sample mail, built around the ticket `folio` of
/// `store` when one is given.
pub async fn preview(
    config: &Config,
    name: &str,
    language: Option<&str>,
    ticket: Option<(&Store, &str)>,
) -> Result<Preview, PreviewError> {
    let template = Template::named(name).ok_or_else(|| PreviewError::UnknownTemplate {
        name: name.to_string(),
    })?;
    let policy = pipeline::policy_of(config, no_secret())?;
    let real =
        match ticket {
            Some((store, folio)) => Some(store.ticket_by_folio(folio).await?.ok_or_else(|| {
                PreviewError::UnknownFolio {
                    folio: crate::terminal::line(folio).into_owned(),
                    database: Store::describe(&config.database.url),
                }
            })?),
            None => None,
        };
    let (samples, folio) = match &real {
        Some(t) => (notice_samples::samples_about(t, &policy), t.folio.as_str()),
        None => (notice_samples::samples(&policy), SAMPLE_FOLIO),
    };
    let language = language
        .map(String::from)
        .or_else(|| real.as_ref().map(|t| t.language.clone()))
        .unwrap_or_else(|| config.templates.language.clone());
    // `Template::ALL` has a sample each (`every_template_has_a_sample`); the first is the
    // usual mail.
    let context = samples
        .iter()
        .find(|n| n.template() == template)
        .map(|n| n.context(template.has_folio().then_some(folio)))
        .unwrap_or_default();
    let rendered = Templates::new(&config.templates.dir).render(&language, name, &context)?;
    Ok(Preview {
        template,
        language,
        rendered,
    })
}
