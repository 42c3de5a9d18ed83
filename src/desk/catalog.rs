//! The help desk's catalogue: services, technician groups, technicians, phone agents, priority
//! and ticket-type rules, read from `config/catalog.toml` (the file named by `catalog.file`).
//!
//! Parsed raw (unknown keys rejected), then validated: every problem is collected with the file
//! and the key at fault (`config/catalog.toml: service[3].group: unknown group "redes"`).
//! Keywords are matched on folded text (lower case, Spanish accents removed, whole words), so
//! the file can be written naturally and mail matches however it was typed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use crate::fold::fold;

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

impl Strategy {
    /// `assignment.strategy` as the file spells it.
    fn parse(s: &str) -> Option<Strategy> {
        match s {
            "least_open" => Some(Strategy::LeastOpen),
            "round_robin" => Some(Strategy::RoundRobin),
            _ => None,
        }
    }
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
    /// Group id → its lead's address (`[[group]] lead`): who hears of its SLA breaches.
    pub leads: HashMap<String, String>,
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
            leads: HashMap::new(),
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

    /// The lead of the group that serves service `id`, if it has one.
    pub fn lead_of(&self, service: &str) -> Option<&str> {
        self.service(service)
            .and_then(|s| self.leads.get(&s.group))
            .map(String::as_str)
    }

    /// How mail names service `id`: its name, or the id itself when the catalogue no longer
    /// has it (a ticket outlives a change to the catalogue).
    pub fn service_name(&self, id: &str) -> String {
        self.service(id)
            .map_or_else(|| id.to_string(), |s| s.name.clone())
    }

    /// How mail names a staff member: the name of the technician or phone agent at `email`, or
    /// the address when the catalogue does not know it.
    pub fn staff_name(&self, email: &str) -> String {
        self.technician(email)
            .map(|t| t.name.clone())
            .or_else(|| self.agent(email).map(|a| a.name.clone()))
            .unwrap_or_else(|| email.to_string())
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
        let mut v = Issues {
            path,
            list: Vec::new(),
        };
        let catalog = v.catalog(raw);
        let issues = v.list;
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
    /// Who hears of the group's SLA breaches (any address, staff or not).
    lead: Option<String>,
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
    list: Vec<String>,
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

    /// A word `parse` understands, `default` when it is not given; `expected` lists the words
    /// in the message about one it does not understand (which also stands in as `default`).
    fn word<T>(
        &mut self,
        key: impl std::fmt::Display,
        value: Option<&str>,
        default: T,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> T {
        match value {
            None => default,
            Some(v) => parse(v).unwrap_or_else(|| {
                self.add(key, format!("expected {expected}, got {v:?}"));
                default
            }),
        }
    }

    fn priority(
        &mut self,
        key: impl std::fmt::Display,
        value: Option<&str>,
        default: Priority,
    ) -> Priority {
        self.word(
            key,
            value,
            default,
            Priority::parse,
            "\"baja\", \"media\", \"alta\" or \"critica\"",
        )
    }

    /// `[[group]]`: the ids, in file order (a repeated one is reported and kept).
    fn groups(&mut self, raw: &[RawGroup]) -> Vec<String> {
        let mut groups = Vec::new();
        for (i, g) in raw.iter().enumerate() {
            let id = g.id.trim().to_string();
            if id.is_empty() || groups.contains(&id) {
                self.add(
                    format!("group[{i}].id"),
                    format!("empty or repeated: {id:?}"),
                );
            }
            groups.push(id);
        }
        groups
    }

    /// `[[group]] lead`: group id → the lead's lower-case address.
    fn leads(&mut self, raw: &[RawGroup]) -> HashMap<String, String> {
        let mut leads = HashMap::new();
        for (i, g) in raw.iter().enumerate() {
            let Some(lead) = &g.lead else { continue };
            let email = lead.trim().to_lowercase();
            if !email.contains('@') || email.contains(char::is_whitespace) {
                self.add(
                    format!("group[{i}].lead"),
                    format!("not an address: {lead:?}"),
                );
                continue;
            }
            leads.insert(g.id.trim().to_string(), email);
        }
        leads
    }

    /// The lower-case address of `kind[i]`, a technician or an agent; `emails` are those of
    /// the staff seen so far, since nobody may be listed twice.
    fn person(
        &mut self,
        emails: &mut HashSet<String>,
        kind: &str,
        i: usize,
        p: &RawPerson,
    ) -> String {
        let email = p.email.trim().to_lowercase();
        if !email.contains('@') || email.contains(char::is_whitespace) {
            self.add(
                format!("{kind}[{i}].email"),
                format!("not an address: {:?}", p.email),
            );
        } else if !emails.insert(email.clone()) {
            self.add(
                format!("{kind}[{i}].email"),
                format!("{email} is listed twice among technicians and agents"),
            );
        }
        if p.name.trim().is_empty() {
            self.add(format!("{kind}[{i}].name"), "is empty");
        }
        email
    }

    /// `[[technician]]`, each in groups declared with `[[group]]`.
    fn technicians(
        &mut self,
        raw: &[RawPerson],
        groups: &[String],
        emails: &mut HashSet<String>,
    ) -> Vec<Technician> {
        let mut technicians = Vec::new();
        for (i, t) in raw.iter().enumerate() {
            let email = self.person(emails, "technician", i, t);
            for (j, g) in t.groups.iter().enumerate() {
                if !groups.contains(g) {
                    self.add(
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
        technicians
    }

    /// `[[agent]]`: phone agents, who belong to no group.
    fn agents(&mut self, raw: &[RawPerson], emails: &mut HashSet<String>) -> Vec<Agent> {
        let mut agents = Vec::new();
        for (i, a) in raw.iter().enumerate() {
            if !a.groups.is_empty() {
                self.add(
                    format!("agent[{i}].groups"),
                    "agents have no groups (list the person as a technician too)",
                );
            }
            let email = self.person(emails, "agent", i, a);
            agents.push(Agent {
                name: a.name.trim().to_string(),
                email,
            });
        }
        agents
    }

    /// `[[service]]`: ids one word, unique and folded; each served by a declared group.
    fn services(
        &mut self,
        raw: &[RawService],
        groups: &[String],
        default_priority: Priority,
    ) -> Vec<Service> {
        let mut services: Vec<Service> = Vec::new();
        for (i, s) in raw.iter().enumerate() {
            let key = format!("service[{i}]");
            let id = fold(s.id.trim());
            if id.is_empty() || id.contains(char::is_whitespace) {
                self.add(
                    format!("{key}.id"),
                    format!(
                        "must be one word like \"correo-institucional\", got {:?}",
                        s.id
                    ),
                );
            } else if services.iter().any(|x| x.id == id) {
                self.add(format!("{key}.id"), format!("{id:?} is listed twice"));
            }
            if !groups.contains(&s.group) {
                self.add(
                    format!("{key}.group"),
                    format!("unknown group {:?} (declare it with [[group]])", s.group),
                );
            }
            let default_type = self.word(
                format!("{key}.type"),
                s.ticket_type.as_deref(),
                TicketType::Incidente,
                TicketType::parse,
                "\"incidente\" or \"solicitud\"",
            );
            let service_priority = self.priority(
                format!("{key}.priority"),
                s.priority.as_deref(),
                default_priority,
            );
            let matcher = self.matcher(&key, &s.keywords, &s.patterns);
            services.push(Service {
                id,
                name: s.name.trim().to_string(),
                group: s.group.clone(),
                default_type,
                default_priority: service_priority,
                matcher,
            });
        }
        services
    }

    /// `assignment.default_service`: the id of a service; when not given, the first service's
    /// (or "general" with none).
    fn default_service(&mut self, raw: Option<String>, services: &[Service]) -> String {
        match raw {
            Some(d) => {
                let d = fold(d.trim());
                if !services.iter().any(|s| s.id == d) {
                    self.add(
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
        }
    }

    /// `[[priority.rule]]`: each a level and the keywords or patterns that raise to it.
    fn priority_rules(&mut self, raw: &[RawPriorityRule]) -> Vec<PriorityRule> {
        let mut priority_rules = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            let key = format!("priority.rule[{i}]");
            let level = self.priority(format!("{key}.level"), Some(&r.level), Priority::Media);
            let m = self.matcher(&key, &r.keywords, &r.patterns);
            if m.is_empty() {
                self.add(&key, "needs keywords or patterns");
            }
            priority_rules.push(PriorityRule { level, matcher: m });
        }
        priority_rules
    }

    /// The whole file, table by table; its problems are left in `self`.
    fn catalog(&mut self, raw: RawCatalog) -> Catalog {
        let strategy = self.word(
            "assignment.strategy",
            raw.assignment.strategy.as_deref(),
            Strategy::LeastOpen,
            Strategy::parse,
            "\"least_open\" or \"round_robin\"",
        );
        let groups = self.groups(&raw.group);
        let leads = self.leads(&raw.group);
        let mut emails = HashSet::new();
        let technicians = self.technicians(&raw.technician, &groups, &mut emails);
        let agents = self.agents(&raw.agent, &mut emails);
        let default_priority = self.priority(
            "priority.default",
            raw.priority.default.as_deref(),
            Priority::Media,
        );
        let vip_priority = self.priority(
            "priority.vip_level",
            raw.priority.vip_level.as_deref(),
            Priority::Alta,
        );
        let services = self.services(&raw.service, &groups, default_priority);
        let default_service = self.default_service(raw.assignment.default_service, &services);
        let priority_rules = self.priority_rules(&raw.priority.rule);
        let incident = self.matcher("type.incident", &raw.ticket_type.incident_keywords, &[]);
        let request = self.matcher("type.request", &raw.ticket_type.request_keywords, &[]);

        Catalog {
            path: self.path.to_owned(),
            strategy,
            default_service,
            groups,
            leads,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues() -> Issues<'static> {
        Issues {
            path: Path::new("c.toml"),
            list: Vec::new(),
        }
    }

    fn person(name: &str, email: &str, groups: &[&str]) -> RawPerson {
        RawPerson {
            name: name.into(),
            email: email.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn groups_report_empty_and_repeated_ids() {
        let mut v = issues();
        let raw = ["redes", " redes ", " "].map(|id| RawGroup {
            id: id.into(),
            name: None,
            lead: None,
        });
        assert_eq!(v.groups(&raw), vec!["redes", "redes", ""]);
        assert_eq!(
            v.list,
            vec![
                "c.toml: group[1].id: empty or repeated: \"redes\"",
                "c.toml: group[2].id: empty or repeated: \"\"",
            ]
        );
    }

    #[test]
    fn staff_addresses_are_unique_across_technicians_and_agents() {
        let mut v = issues();
        let groups = vec!["redes".to_string()];
        let mut emails = HashSet::new();
        let technicians = v.technicians(
            &[person("Ana", "Ana@X.test", &["redes", "correo"])],
            &groups,
            &mut emails,
        );
        let agents = v.agents(
            &[
                person("", "ana@x.test", &["redes"]),
                person("Bo", "bo", &[]),
            ],
            &mut emails,
        );
        assert_eq!(technicians[0].email, "ana@x.test");
        assert_eq!(agents.len(), 2);
        assert_eq!(
            v.list,
            vec![
                "c.toml: technician[0].groups[1]: unknown group \"correo\" (declare it with [[group]] id = \"correo\")",
                "c.toml: agent[0].groups: agents have no groups (list the person as a technician too)",
                "c.toml: agent[0].email: ana@x.test is listed twice among technicians and agents",
                "c.toml: agent[0].name: is empty",
                "c.toml: agent[1].email: not an address: \"bo\"",
            ]
        );
    }

    #[test]
    fn a_service_reports_each_of_its_problems_and_keeps_defaults() {
        let mut v = issues();
        let raw = RawService {
            id: "Correo".into(),
            name: " Correo institucional ".into(),
            group: "redes".into(),
            ticket_type: Some("queja".into()),
            priority: None,
            keywords: vec!["Contraseña".into()],
            patterns: vec![],
        };
        let services = v.services(&[raw], &[], Priority::Alta);
        let s = &services[0];
        assert_eq!(
            (s.id.as_str(), s.name.as_str()),
            ("correo", "Correo institucional")
        );
        assert_eq!(
            (s.default_type, s.default_priority),
            (TicketType::Incidente, Priority::Alta)
        );
        assert_eq!(
            s.matcher.hits("olvide mi contrasena"),
            vec!["\"contrasena\""]
        );
        assert_eq!(v.default_service(None, &services), "correo");
        assert_eq!(
            v.default_service(Some(" Redes ".into()), &services),
            "redes"
        );
        assert_eq!(v.default_service(None, &[]), "general");
        assert_eq!(
            v.list,
            vec![
                "c.toml: service[0].group: unknown group \"redes\" (declare it with [[group]])",
                "c.toml: service[0].type: expected \"incidente\" or \"solicitud\", got \"queja\"",
                "c.toml: assignment.default_service: \"redes\" is not the id of a [[service]]",
            ]
        );
    }
}
