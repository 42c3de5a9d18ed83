//! Routing a new ticket: its service, type, priority and technician, each with the rule that
//! decided it (stored on the ticket, so "why is this mine?" always has an answer).
//!
//! Pure: the catalogue, the text of the request and the technicians' current workload in, a
//! [`Routing`] out. The workload comes from the store and is updated by the caller as a batch
//! assigns tickets, so a backlog is spread like mail arriving one at a time would be.
//!
//! A rule is data ([`Rule`]), not a sentence: the ticket stores it as an English line for
//! audit (its `Display`), and the technician's mail says it in the mail's language (the
//! templates' `routing_rule` partial), naming the service and the technician.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::desk::catalog::{Catalog, Priority, Strategy, TicketType};
use crate::fold::fold;

/// Where a new ticket goes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Routing {
    /// Service id.
    pub service: String,
    pub ticket_type: TicketType,
    pub priority: Priority,
    /// The technician's address, or `None` when the service's group has nobody.
    pub assignee: Option<String>,
    /// One per decision: service, type, priority, technician.
    pub rules: Vec<Rule>,
}

impl Routing {
    /// The rules as the ticket stores them (`tickets.routing`): one English line each.
    pub fn audit_text(&self) -> String {
        self.rules
            .iter()
            .map(Rule::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One routing decision and why it was made. Serialised with a `kind` tag and codes (ids,
/// addresses, `alta`) beside the names people read (`service_name`, `technician_name`), so a
/// template can say it in any language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// The service whose keywords matched best.
    Service {
        service: String,
        service_name: String,
        hits: Vec<Hit>,
    },
    /// No service's keyword matched: `assignment.default_service`.
    DefaultService {
        service: String,
        service_name: String,
    },
    /// The type whose keywords matched.
    Type {
        #[serde(rename = "type")]
        ticket_type: TicketType,
        keywords: Vec<String>,
    },
    /// No type keyword matched: the service's default type.
    DefaultType {
        #[serde(rename = "type")]
        ticket_type: TicketType,
    },
    /// The most urgent priority rule that matched.
    Priority {
        priority: Priority,
        keywords: Vec<String>,
    },
    /// No priority rule matched: the service's default priority.
    DefaultPriority { priority: Priority },
    /// The requester's department is a VIP one, which raised the priority.
    VipDepartment {
        priority: Priority,
        /// As the requester's data writes it.
        department: String,
    },
    /// The member of the group with the fewest open tickets.
    LeastOpen {
        technician: String,
        technician_name: String,
        group: String,
        /// Their open tickets before this one.
        open: u32,
    },
    /// The next member of the group in turn.
    RoundRobin {
        technician: String,
        technician_name: String,
        group: String,
    },
    /// Unassigned: the service's group has no technicians.
    EmptyGroup { group: String },
    /// Unassigned: there is no service to route by (the default service is not in the
    /// catalogue).
    NoService,
}

/// A keyword (`"correo"`) or pattern (`/…/`) of a service, as the catalogue writes it, and
/// where the request has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub keyword: String,
    /// `subject` or `body`.
    pub place: &'static str,
}

impl Rule {
    /// One rule of every kind, for the sample notices (`desk::notice_samples`: `folio templates check`
    /// renders every template with them) and the tests that must see every field a template
    /// may use.
    pub fn every_kind() -> Vec<Rule> {
        let technician = || ("tech1@example.test".to_string(), "Técnico Uno".to_string());
        vec![
            Rule::Service {
                service: "correo".into(),
                service_name: "Correo".into(),
                hits: vec![Hit {
                    keyword: "\"correo\"".into(),
                    place: "subject",
                }],
            },
            Rule::DefaultService {
                service: "general".into(),
                service_name: "General".into(),
            },
            Rule::Type {
                ticket_type: TicketType::Incidente,
                keywords: vec!["\"no puedo\"".into()],
            },
            Rule::DefaultType {
                ticket_type: TicketType::Solicitud,
            },
            Rule::Priority {
                priority: Priority::Alta,
                keywords: vec!["\"urgente\"".into()],
            },
            Rule::DefaultPriority {
                priority: Priority::Media,
            },
            Rule::VipDepartment {
                priority: Priority::Alta,
                department: "Secretaría Particular".into(),
            },
            Rule::LeastOpen {
                technician: technician().0,
                technician_name: technician().1,
                group: "correo".into(),
                open: 2,
            },
            Rule::RoundRobin {
                technician: technician().0,
                technician_name: technician().1,
                group: "correo".into(),
            },
            Rule::EmptyGroup {
                group: "correo".into(),
            },
            Rule::NoService,
        ]
    }
}

impl fmt::Display for Rule {
    /// The line stored on the ticket (`folio tickets show`): English, with ids and addresses,
    /// as auditors have always read it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Service { service, hits, .. } => {
                let hits: Vec<String> = hits
                    .iter()
                    .map(|h| format!("{} in {}", h.keyword, h.place))
                    .collect();
                write!(f, "service {service}: {}", hits.join(", "))
            }
            Rule::DefaultService { service, .. } => write!(
                f,
                "service {service}: no keyword matched (assignment.default_service)"
            ),
            Rule::Type {
                ticket_type,
                keywords,
            } => write!(f, "type {}: {}", ticket_type.as_str(), keywords.join(", ")),
            Rule::DefaultType { ticket_type } => {
                write!(f, "type {}: the service's default", ticket_type.as_str())
            }
            Rule::Priority { priority, keywords } => {
                write!(f, "priority {}: {}", priority.as_str(), keywords.join(", "))
            }
            Rule::DefaultPriority { priority } => {
                write!(f, "priority {}: the service's default", priority.as_str())
            }
            Rule::VipDepartment {
                priority,
                department,
            } => write!(
                f,
                "priority {}: VIP department {department:?}",
                priority.as_str()
            ),
            Rule::LeastOpen {
                technician,
                group,
                open,
                ..
            } => write!(
                f,
                "assignee {technician}: fewest open tickets in group {group:?} ({open})"
            ),
            Rule::RoundRobin {
                technician, group, ..
            } => write!(f, "assignee {technician}: round robin in group {group:?}"),
            Rule::EmptyGroup { group } => {
                write!(f, "unassigned: group {group:?} has no technicians")
            }
            Rule::NoService => write!(f, "unassigned: no service to route by"),
        }
    }
}

/// The technicians' load, as the store knows it.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Technician address → open (not resolved or closed) tickets assigned to them.
    pub open: HashMap<String, u32>,
    /// Group → the technician it assigned last (round-robin position).
    pub last_assigned: HashMap<String, String>,
}

impl Workload {
    /// Counts an assignment just made.
    pub fn assigned(&mut self, group: &str, technician: &str) {
        *self.open.entry(technician.to_string()).or_default() += 1;
        self.last_assigned
            .insert(group.to_string(), technician.to_string());
    }
}

/// Routes a new request.
pub fn route(
    catalog: &Catalog,
    subject: &str,
    body: &str,
    department: Option<&str>,
    workload: &Workload,
) -> Routing {
    let subject = fold(subject);
    let body = fold(body);
    let mut rules = Vec::new();

    // Service: the most keyword hits, a hit in the subject counting double; ties go to the
    // service listed first.
    let mut best: Option<(usize, &crate::desk::catalog::Service, Vec<Hit>)> = None;
    for s in &catalog.services {
        let in_subject = s.matcher.hits(&subject);
        let in_body = s.matcher.hits(&body);
        let score = 2 * in_subject.len() + in_body.len();
        if score > 0 && best.as_ref().is_none_or(|(b, _, _)| score > *b) {
            let mut hits: Vec<Hit> = in_subject
                .iter()
                .map(|h| Hit {
                    keyword: h.clone(),
                    place: "subject",
                })
                .collect();
            hits.extend(
                in_body
                    .into_iter()
                    .filter(|h| !in_subject.contains(h))
                    .map(|h| Hit {
                        keyword: h,
                        place: "body",
                    }),
            );
            best = Some((score, s, hits));
        }
    }
    let service = match best {
        Some((_, s, hits)) => {
            rules.push(Rule::Service {
                service: s.id.clone(),
                service_name: s.name.clone(),
                hits,
            });
            Some(s)
        }
        None => {
            let id = &catalog.default_service;
            rules.push(Rule::DefaultService {
                service: id.clone(),
                service_name: catalog.service_name(id),
            });
            catalog.service(id)
        }
    };
    let service_id = service.map_or(catalog.default_service.clone(), |s| s.id.clone());

    // Type: the type keywords, else the service's default.
    let text = format!("{subject}\n{body}");
    let incident = catalog.incident.hits(&text);
    let request = catalog.request.hits(&text);
    let ticket_type = if !incident.is_empty() && incident.len() >= request.len() {
        rules.push(Rule::Type {
            ticket_type: TicketType::Incidente,
            keywords: incident,
        });
        TicketType::Incidente
    } else if !request.is_empty() {
        rules.push(Rule::Type {
            ticket_type: TicketType::Solicitud,
            keywords: request,
        });
        TicketType::Solicitud
    } else {
        let t = service.map_or(TicketType::Incidente, |s| s.default_type);
        rules.push(Rule::DefaultType { ticket_type: t });
        t
    };

    // Priority: the most urgent keyword rule that matches (it may be lower than the service's
    // default: "sin prisa"), else the service's default; a VIP department raises it.
    let default_priority = service.map_or(catalog.default_priority, |s| s.default_priority);
    let mut why = Rule::DefaultPriority {
        priority: default_priority,
    };
    let mut priority = default_priority;
    let mut matched: Option<Priority> = None;
    for r in &catalog.priority_rules {
        let hits = r.matcher.hits(&text);
        if !hits.is_empty() && matched.is_none_or(|m| r.level > m) {
            matched = Some(r.level);
            priority = r.level;
            why = Rule::Priority {
                priority,
                keywords: hits,
            };
        }
    }
    if let Some(d) = department {
        if catalog.vip_departments.contains(&fold(d)) && catalog.vip_priority > priority {
            priority = catalog.vip_priority;
            why = Rule::VipDepartment {
                priority,
                department: d.trim().to_string(),
            };
        }
    }
    rules.push(why);

    let (assignee, why) = match service {
        Some(s) => choose_technician(catalog, &s.group, workload),
        None => (None, Rule::NoService),
    };
    rules.push(why);

    Routing {
        service: service_id,
        ticket_type,
        priority,
        assignee,
        rules,
    }
}

/// Picks a technician of `group` by the catalogue's strategy; returns the address and why.
pub fn choose_technician(
    catalog: &Catalog,
    group: &str,
    workload: &Workload,
) -> (Option<String>, Rule) {
    let members = catalog.members(group);
    if members.is_empty() {
        return (
            None,
            Rule::EmptyGroup {
                group: group.to_string(),
            },
        );
    }
    // Round-robin order: the members after the last one assigned, wrapping around.
    let start = workload
        .last_assigned
        .get(group)
        .and_then(|last| members.iter().position(|t| &t.email == last))
        .map_or(0, |i| i + 1);
    let in_turn = (0..members.len()).map(|k| members[(start + k) % members.len()]);
    match catalog.strategy {
        Strategy::RoundRobin => {
            let t = members[start % members.len()];
            (
                Some(t.email.clone()),
                Rule::RoundRobin {
                    technician: t.email.clone(),
                    technician_name: catalog.staff_name(&t.email),
                    group: group.to_string(),
                },
            )
        }
        Strategy::LeastOpen => {
            let open = |email: &str| workload.open.get(email).copied().unwrap_or(0);
            // `min_by_key` keeps the first of equal keys: ties go in round-robin order.
            let t = in_turn.min_by_key(|t| open(&t.email)).unwrap_or(members[0]);
            (
                Some(t.email.clone()),
                Rule::LeastOpen {
                    technician: t.email.clone(),
                    technician_name: catalog.staff_name(&t.email),
                    group: group.to_string(),
                    open: open(&t.email),
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn catalog(strategy: &str) -> Catalog {
        Catalog::parse(
            Path::new("catalog.toml"),
            &format!(
                r#"
[assignment]
strategy = "{strategy}"
default_service = "nuevas-ti"

[[group]]
id = "correo"
[[group]]
id = "general"

[[technician]]
name = "Técnico Uno"
email = "tech1@example.test"
groups = ["correo"]
[[technician]]
name = "Técnico Dos"
email = "Tech2@example.test"
groups = ["correo", "general"]

[[service]]
id = "correo-institucional"
name = "Correo institucional"
group = "correo"
keywords = ["correo", "outlook", "buzón"]
[[service]]
id = "nomina"
name = "Nómina"
group = "general"
type = "solicitud"
priority = "alta"
keywords = ["nómina", "recibo de pago"]
[[service]]
id = "nuevas-ti"
name = "Nuevas TI"
group = "general"

[priority]
default = "media"
vip_departments = ["Secretaría Particular"]
[[priority.rule]]
level = "critica"
keywords = ["no funciona nada"]
[[priority.rule]]
level = "alta"
keywords = ["urgente"]
[[priority.rule]]
level = "baja"
keywords = ["sin prisa"]

[type]
incident_keywords = ["no puedo", "error"]
request_keywords = ["solicito"]
"#
            ),
        )
        .unwrap()
    }

    #[test]
    fn service_by_keywords_subject_counts_double() {
        let c = catalog("least_open");
        let r = route(
            &c,
            "No puedo entrar al CORREO",
            "Mi recibo de pago de nómina no llega al buzón",
            None,
            &Workload::default(),
        );
        // correo: subject (2) + buzón in body (1) = 3 > nómina: 2 in body.
        assert_eq!(r.service, "correo-institucional");
        assert!(
            r.rules[0].to_string().contains("\"correo\" in subject"),
            "{:?}",
            r.rules
        );
        assert_eq!(r.ticket_type, TicketType::Incidente);
        assert_eq!(r.priority, Priority::Media);
        assert_eq!(r.assignee.as_deref(), Some("tech1@example.test"));
    }

    #[test]
    fn default_service_and_its_defaults() {
        let c = catalog("least_open");
        let r = route(&c, "Consulta", "Hola", None, &Workload::default());
        assert_eq!(r.service, "nuevas-ti");
        assert!(r.rules[0].to_string().contains("no keyword matched"));
        assert_eq!(r.assignee.as_deref(), Some("tech2@example.test"));
    }

    #[test]
    fn priority_is_the_most_urgent_rule() {
        let c = catalog("least_open");
        let r = route(
            &c,
            "URGENTE",
            "no funciona nada",
            None,
            &Workload::default(),
        );
        assert_eq!(r.priority, Priority::Critica);
        let r = route(&c, "nómina", "hola", None, &Workload::default());
        assert_eq!(r.priority, Priority::Alta, "the service's default");
        let r = route(&c, "nómina", "sin prisa", None, &Workload::default());
        assert_eq!(r.priority, Priority::Baja, "a matching rule may lower it");
        assert_eq!(r.ticket_type, TicketType::Solicitud);
        let r = route(
            &c,
            "hola",
            "x",
            Some("SECRETARIA PARTICULAR"),
            &Workload::default(),
        );
        assert_eq!(r.priority, Priority::Alta);
        assert!(r.rules.contains(&Rule::VipDepartment {
            priority: Priority::Alta,
            department: "SECRETARIA PARTICULAR".into()
        }));
    }

    #[test]
    fn least_open_then_round_robin_on_ties() {
        let c = catalog("least_open");
        let mut w = Workload::default();
        w.open.insert("tech1@example.test".into(), 3);
        w.open.insert("tech2@example.test".into(), 1);
        let (a, _) = choose_technician(&c, "correo", &w);
        assert_eq!(a.as_deref(), Some("tech2@example.test"));
        let mut w = Workload::default();
        w.assigned("correo", "tech1@example.test");
        w.open.clear();
        // Equal load: the one after the last assigned.
        let (a, _) = choose_technician(&c, "correo", &w);
        assert_eq!(a.as_deref(), Some("tech2@example.test"));
    }

    #[test]
    fn round_robin_takes_turns() {
        let c = catalog("round_robin");
        let mut w = Workload::default();
        let mut got = Vec::new();
        for _ in 0..3 {
            let (a, _) = choose_technician(&c, "correo", &w);
            let a = a.unwrap();
            w.assigned("correo", &a);
            got.push(a);
        }
        assert_eq!(
            got,
            [
                "tech1@example.test",
                "tech2@example.test",
                "tech1@example.test"
            ]
        );
    }

    #[test]
    fn catalog_errors_name_file_and_key() {
        let e = Catalog::parse(
            Path::new("config/catalog.toml"),
            "[[group]]\nid='a'\n[[service]]\nid='x'\nname='X'\ngroup='b'\npriority='altísima'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("config/catalog.toml: service[0].group: unknown group \"b\""),
            "{e}"
        );
        assert!(
            e.contains("config/catalog.toml: service[0].priority: expected"),
            "{e}"
        );
    }
}
