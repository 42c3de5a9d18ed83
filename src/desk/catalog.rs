//! The help desk's catalogue: services, technician groups, technicians, phone agents, priority
//! and ticket-type rules, read from `config/catalog.toml` (the file named by `catalog.file`).
//!
//! Parsed raw (unknown keys rejected), then validated: every problem is collected with the file
//! and the key at fault (`config/catalog.toml: service[3].group: unknown group "redes"`).
//! Keywords are matched on folded text (lower case, Spanish accents removed, whole words), so
//! the file can be written naturally and mail matches however it was typed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use crate::desk::fold::fold;

/// A problem in the catalogue file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{}", .issues.join("\n"))]
    Invalid { issues: Vec<String> },
}

/// Ticket priority, lowest first (so `max` picks the most urgent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Baja,
    Media,
    Alta,
    Critica,
}

impl Priority {
    /// Every level, lowest first.
    pub const ALL: [Priority; 4] = [
        Priority::Baja,
        Priority::Media,
        Priority::Alta,
        Priority::Critica,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Baja => "baja",
            Priority::Media => "media",
            Priority::Alta => "alta",
            Priority::Critica => "critica",
        }
    }

    /// Parses a level as people type it: Spanish or English, any case, accents optional.
    pub fn parse(s: &str) -> Option<Priority> {
        match fold(s.trim()).as_str() {
            "baja" | "low" => Some(Priority::Baja),
            "media" | "medium" | "normal" => Some(Priority::Media),
            "alta" | "high" => Some(Priority::Alta),
            "critica" | "critical" | "urgente" | "urgent" => Some(Priority::Critica),
            _ => None,
        }
    }
}

/// Incident (something broke) or request (something is asked for), ITIL's two ticket types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketType {
    Incidente,
    Solicitud,
}

impl TicketType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketType::Incidente => "incidente",
            TicketType::Solicitud => "solicitud",
        }
    }

    fn parse(s: &str) -> Option<TicketType> {
        match fold(s.trim()).as_str() {
            "incidente" | "incident" => Some(TicketType::Incidente),
            "solicitud" | "request" => Some(TicketType::Solicitud),
            _ => None,
        }
    }
}

/// How a new ticket's technician is chosen within the service's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The member with the fewest open tickets (ties: the next in round-robin order).
    LeastOpen,
    /// The members in turn, in the order the file lists them.
    RoundRobin,
}

/// A set of words and regexes, matched on folded text.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// Each keyword (folded) with its whole-word pattern.
    keywords: Vec<(String, Regex)>,
    patterns: Vec<Regex>,
}

impl Matcher {
    /// Every keyword or pattern that matches `folded` text, as written in the file.
    pub fn hits(&self, folded: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .keywords
            .iter()
            .filter(|(_, re)| re.is_match(folded))
            .map(|(k, _)| format!("{k:?}"))
            .collect();
        out.extend(
            self.patterns
                .iter()
                .filter(|re| re.is_match(folded))
                .map(|re| format!("/{}/", re.as_str())),
        );
        out
    }

    pub fn is_empty(&self) -> bool {
        self.keywords.is_empty() && self.patterns.is_empty()
    }
}

/// One service of the catalogue.
#[derive(Debug, Clone)]
pub struct Service {
    /// Short stable id (`correo-institucional`), used in commands and stored on tickets.
    pub id: String,
    /// The name people read (`Correo institucional`).
    pub name: String,
    /// The technician group that serves it.
    pub group: String,
    pub default_type: TicketType,
    pub default_priority: Priority,
    pub matcher: Matcher,
}

/// A technician.
#[derive(Debug, Clone)]
pub struct Technician {
    pub name: String,
    /// Lower case.
    pub email: String,
    pub groups: Vec<String>,
}

/// A phone agent: opens tickets on behalf of callers.
#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    /// Lower case.
    pub email: String,
}

/// A keyword rule that raises a ticket's priority.
#[derive(Debug, Clone)]
pub struct PriorityRule {
    pub level: Priority,
    pub matcher: Matcher,
}

/// The validated catalogue.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    pub strategy: Strategy,
    /// The service of a ticket no keyword matched.
    pub default_service: String,
    /// Group ids, in file order.
    pub groups: Vec<String>,
    pub services: Vec<Service>,
    pub technicians: Vec<Technician>,
    pub agents: Vec<Agent>,
    pub default_priority: Priority,
    pub priority_rules: Vec<PriorityRule>,
    /// Folded department names whose tickets get at least `vip_priority`.
    pub vip_departments: Vec<String>,
    pub vip_priority: Priority,
    pub incident: Matcher,
    pub request: Matcher,
}

impl Default for Catalog {
    /// No services, no staff: every ticket is unassigned in service "general".
    fn default() -> Catalog {
        Catalog {
            path: PathBuf::new(),
            strategy: Strategy::LeastOpen,
            default_service: "general".into(),
            groups: vec![],
            services: vec![],
            technicians: vec![],
            agents: vec![],
            default_priority: Priority::Media,
            priority_rules: vec![],
            vip_departments: vec![],
            vip_priority: Priority::Alta,
            incident: Matcher::default(),
            request: Matcher::default(),
        }
    }
}

impl Catalog {
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// A service named as people type it: its id or its name, accents and case optional.
    pub fn find_service(&self, typed: &str) -> Option<&Service> {
        let t = fold(typed.trim());
        self.services
            .iter()
            .find(|s| s.id == t || fold(&s.name) == t)
            .or_else(|| {
                // A unique prefix of an id or name ("correo" alone is ambiguous on purpose).
                let mut hits = self
                    .services
                    .iter()
                    .filter(|s| s.id.starts_with(&t) || fold(&s.name).starts_with(&t));
                match (hits.next(), hits.next()) {
                    (Some(s), None) if !t.is_empty() => Some(s),
                    _ => None,
                }
            })
    }

    pub fn technician(&self, email: &str) -> Option<&Technician> {
        self.technicians
            .iter()
            .find(|t| t.email.eq_ignore_ascii_case(email))
    }

    /// A technician named as people type it: address, local part, or full name.
    pub fn find_technician(&self, typed: &str) -> Option<&Technician> {
        let t = fold(typed.trim().trim_start_matches('@'));
        self.technicians.iter().find(|x| {
            x.email == t || x.email.split('@').next() == Some(t.as_str()) || fold(&x.name) == t
        })
    }

    pub fn agent(&self, email: &str) -> Option<&Agent> {
        self.agents
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(email))
    }

    /// Staff: technicians and phone agents.
    pub fn is_staff(&self, email: &str) -> bool {
        self.technician(email).is_some() || self.agent(email).is_some()
    }

    /// The technicians of a group, in file order.
    pub fn members(&self, group: &str) -> Vec<&Technician> {
        self.technicians
            .iter()
            .filter(|t| t.groups.iter().any(|g| g == group))
            .collect()
    }

    /// Reads and validates a catalogue file.
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        Catalog::parse(path, &text)
    }

    /// Validates catalogue text; `path` is used only in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|e| CatalogError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut issues = Vec::new();
        let catalog = validate(path, raw, &mut issues);
        if issues.is_empty() {
            Ok(catalog)
        } else {
            Err(CatalogError::Invalid { issues })
        }
    }
}

// ---- raw form ----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    assignment: RawAssignment,
    #[serde(default)]
    group: Vec<RawGroup>,
    #[serde(default)]
    technician: Vec<RawPerson>,
    #[serde(default)]
    agent: Vec<RawPerson>,
    #[serde(default)]
    service: Vec<RawService>,
    #[serde(default)]
    priority: RawPriority,
    #[serde(default, rename = "type")]
    ticket_type: RawType,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAssignment {
    strategy: Option<String>,
    default_service: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    id: String,
    #[allow(dead_code)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    name: String,
    email: String,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    id: String,
    name: String,
    group: String,
    #[serde(rename = "type")]
    ticket_type: Option<String>,
    priority: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPriority {
    default: Option<String>,
    #[serde(default)]
    vip_departments: Vec<String>,
    vip_level: Option<String>,
    #[serde(default)]
    rule: Vec<RawPriorityRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPriorityRule {
    level: String,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawType {
    #[serde(default)]
    incident_keywords: Vec<String>,
    #[serde(default)]
    request_keywords: Vec<String>,
}

/// Collects problems as "FILE: key: message".
struct Issues<'a> {
    path: &'a Path,
    list: &'a mut Vec<String>,
}

impl Issues<'_> {
    fn add(&mut self, key: impl std::fmt::Display, message: impl std::fmt::Display) {
        self.list
            .push(format!("{}: {key}: {message}", self.path.display()));
    }

    fn matcher(&mut self, key: &str, keywords: &[String], patterns: &[String]) -> Matcher {
        let mut m = Matcher::default();
        for (i, k) in keywords.iter().enumerate() {
            let folded = fold(k.trim());
            if folded.is_empty() {
                self.add(format!("{key}.keywords[{i}]"), "is empty");
                continue;
            }
            // Whole words, any run of spaces between the words of a phrase.
            let words: Vec<String> = folded.split_whitespace().map(regex::escape).collect();
            match Regex::new(&format!(r"\b{}\b", words.join(r"\s+"))) {
                Ok(re) => m.keywords.push((folded, re)),
                Err(e) => self.add(format!("{key}.keywords[{i}]"), e),
            }
        }
        for (i, p) in patterns.iter().enumerate() {
            match Regex::new(p) {
                Ok(re) => m.patterns.push(re),
                Err(e) => self.add(
                    format!("{key}.patterns[{i}]"),
                    format!("invalid regex (matched against lower-case text without accents): {e}"),
                ),
            }
        }
        m
    }

    fn priority(
        &mut self,
        key: impl std::fmt::Display,
        value: Option<&str>,
        default: Priority,
    ) -> Priority {
        match value {
            None => default,
            Some(v) => Priority::parse(v).unwrap_or_else(|| {
                self.add(
                    key,
                    format!("expected \"baja\", \"media\", \"alta\" or \"critica\", got {v:?}"),
                );
                default
            }),
        }
    }
}

fn validate(path: &Path, raw: RawCatalog, issues: &mut Vec<String>) -> Catalog {
    let mut v = Issues { path, list: issues };
    let strategy = match raw.assignment.strategy.as_deref().unwrap_or("least_open") {
        "least_open" => Strategy::LeastOpen,
        "round_robin" => Strategy::RoundRobin,
        other => {
            v.add(
                "assignment.strategy",
                format!("expected \"least_open\" or \"round_robin\", got {other:?}"),
            );
            Strategy::LeastOpen
        }
    };

    let mut groups = Vec::new();
    for (i, g) in raw.group.iter().enumerate() {
        let id = g.id.trim().to_string();
        if id.is_empty() || groups.contains(&id) {
            v.add(
                format!("group[{i}].id"),
                format!("empty or repeated: {id:?}"),
            );
        }
        groups.push(id);
    }
    let known_group = |g: &str| groups.iter().any(|x| x == g);

    let mut emails = HashSet::new();
    let mut person = |v: &mut Issues, kind: &str, i: usize, p: &RawPerson| -> String {
        let email = p.email.trim().to_lowercase();
        if !email.contains('@') || email.contains(char::is_whitespace) {
            v.add(
                format!("{kind}[{i}].email"),
                format!("not an address: {:?}", p.email),
            );
        } else if !emails.insert(email.clone()) {
            v.add(
                format!("{kind}[{i}].email"),
                format!("{email} is listed twice among technicians and agents"),
            );
        }
        if p.name.trim().is_empty() {
            v.add(format!("{kind}[{i}].name"), "is empty");
        }
        email
    };
    let mut technicians = Vec::new();
    for (i, t) in raw.technician.iter().enumerate() {
        let email = person(&mut v, "technician", i, t);
        for (j, g) in t.groups.iter().enumerate() {
            if !known_group(g) {
                v.add(
                    format!("technician[{i}].groups[{j}]"),
                    format!("unknown group {g:?} (declare it with [[group]] id = {g:?})"),
                );
            }
        }
        technicians.push(Technician {
            name: t.name.trim().to_string(),
            email,
            groups: t.groups.clone(),
        });
    }
    let mut agents = Vec::new();
    for (i, a) in raw.agent.iter().enumerate() {
        if !a.groups.is_empty() {
            v.add(
                format!("agent[{i}].groups"),
                "agents have no groups (list the person as a technician too)",
            );
        }
        let email = person(&mut v, "agent", i, a);
        agents.push(Agent {
            name: a.name.trim().to_string(),
            email,
        });
    }

    let default_priority = v.priority(
        "priority.default",
        raw.priority.default.as_deref(),
        Priority::Media,
    );
    let vip_priority = v.priority(
        "priority.vip_level",
        raw.priority.vip_level.as_deref(),
        Priority::Alta,
    );

    let mut services: Vec<Service> = Vec::new();
    for (i, s) in raw.service.iter().enumerate() {
        let key = format!("service[{i}]");
        let id = fold(s.id.trim());
        if id.is_empty() || id.contains(char::is_whitespace) {
            v.add(
                format!("{key}.id"),
                format!(
                    "must be one word like \"correo-institucional\", got {:?}",
                    s.id
                ),
            );
        } else if services.iter().any(|x| x.id == id) {
            v.add(format!("{key}.id"), format!("{id:?} is listed twice"));
        }
        if !known_group(&s.group) {
            v.add(
                format!("{key}.group"),
                format!("unknown group {:?} (declare it with [[group]])", s.group),
            );
        }
        let default_type = match s.ticket_type.as_deref() {
            None => TicketType::Incidente,
            Some(t) => TicketType::parse(t).unwrap_or_else(|| {
                v.add(
                    format!("{key}.type"),
                    format!("expected \"incidente\" or \"solicitud\", got {t:?}"),
                );
                TicketType::Incidente
            }),
        };
        let service_priority = v.priority(
            format!("{key}.priority"),
            s.priority.as_deref(),
            default_priority,
        );
        let matcher = v.matcher(&key, &s.keywords, &s.patterns);
        services.push(Service {
            id,
            name: s.name.trim().to_string(),
            group: s.group.clone(),
            default_type,
            default_priority: service_priority,
            matcher,
        });
    }
    let default_service = match raw.assignment.default_service {
        Some(d) => {
            let d = fold(d.trim());
            if !services.iter().any(|s| s.id == d) {
                v.add(
                    "assignment.default_service",
                    format!("{d:?} is not the id of a [[service]]"),
                );
            }
            d
        }
        None => match services.first() {
            Some(s) => s.id.clone(),
            None => "general".into(),
        },
    };

    let mut priority_rules = Vec::new();
    for (i, r) in raw.priority.rule.iter().enumerate() {
        let key = format!("priority.rule[{i}]");
        let level = v.priority(format!("{key}.level"), Some(&r.level), Priority::Media);
        let m = v.matcher(&key, &r.keywords, &r.patterns);
        if m.is_empty() {
            v.add(&key, "needs keywords or patterns");
        }
        priority_rules.push(PriorityRule { level, matcher: m });
    }
    let incident = v.matcher("type.incident", &raw.ticket_type.incident_keywords, &[]);
    let request = v.matcher("type.request", &raw.ticket_type.request_keywords, &[]);

    Catalog {
        path: path.to_owned(),
        strategy,
        default_service,
        groups,
        services,
        technicians,
        agents,
        default_priority,
        priority_rules,
        vip_departments: raw
            .priority
            .vip_departments
            .iter()
            .map(|d| fold(d.trim()))
            .collect(),
        vip_priority,
        incident,
        request,
    }
}
