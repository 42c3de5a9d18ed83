//! Routing a new ticket: its service, type, priority and technician, each with the rule that
//! decided it (stored on the ticket, so "why is this mine?" always has an answer).
//!
//! Pure: the catalogue, the text of the request and the technicians' current workload in, a
//! [`Routing`] out. The workload comes from the store and is updated by the caller as a batch
//! assigns tickets, so a backlog is spread like mail arriving one at a time would be.

use std::collections::HashMap;

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
    /// One line per decision: `service: …`, `type: …`, `priority: …`, `assignee: …`.
    pub rules: Vec<String>,
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
    let mut best: Option<(usize, &crate::desk::catalog::Service, Vec<String>)> = None;
    for s in &catalog.services {
        let in_subject = s.matcher.hits(&subject);
        let in_body = s.matcher.hits(&body);
        let score = 2 * in_subject.len() + in_body.len();
        if score > 0 && best.as_ref().is_none_or(|(b, _, _)| score > *b) {
            let mut why: Vec<String> = in_subject
                .iter()
                .map(|h| format!("{h} in subject"))
                .collect();
            why.extend(
                in_body
                    .into_iter()
                    .filter(|h| !in_subject.contains(h))
                    .map(|h| format!("{h} in body")),
            );
            best = Some((score, s, why));
        }
    }
    let service = match &best {
        Some((_, s, why)) => {
            rules.push(format!("service {}: {}", s.id, why.join(", ")));
            catalog.service(&s.id)
        }
        None => {
            rules.push(format!(
                "service {}: no keyword matched (assignment.default_service)",
                catalog.default_service
            ));
            catalog.service(&catalog.default_service)
        }
    };
    let service_id = service.map_or(catalog.default_service.clone(), |s| s.id.clone());

    // Type: the type keywords, else the service's default.
    let text = format!("{subject}\n{body}");
    let incident = catalog.incident.hits(&text);
    let request = catalog.request.hits(&text);
    let ticket_type = if !incident.is_empty() && incident.len() >= request.len() {
        rules.push(format!("type incidente: {}", incident.join(", ")));
        TicketType::Incidente
    } else if !request.is_empty() {
        rules.push(format!("type solicitud: {}", request.join(", ")));
        TicketType::Solicitud
    } else {
        let t = service.map_or(TicketType::Incidente, |s| s.default_type);
        rules.push(format!("type {}: the service's default", t.as_str()));
        t
    };

    // Priority: the most urgent keyword rule that matches (it may be lower than the service's
    // default: "sin prisa"), else the service's default; a VIP department raises it.
    let mut priority = service.map_or(catalog.default_priority, |s| s.default_priority);
    let mut why = "the service's default".to_string();
    let mut matched: Option<Priority> = None;
    for r in &catalog.priority_rules {
        let hits = r.matcher.hits(&text);
        if !hits.is_empty() && matched.is_none_or(|m| r.level > m) {
            matched = Some(r.level);
            priority = r.level;
            why = hits.join(", ");
        }
    }
    if let Some(d) = department.map(fold) {
        if catalog.vip_departments.contains(&d) && catalog.vip_priority > priority {
            priority = catalog.vip_priority;
            why = format!("VIP department {d:?}");
        }
    }
    rules.push(format!("priority {}: {why}", priority.as_str()));

    let (assignee, why) = match service {
        Some(s) => choose_technician(catalog, &s.group, workload),
        None => (None, "no service to route by".to_string()),
    };
    rules.push(match &assignee {
        Some(a) => format!("assignee {a}: {why}"),
        None => format!("unassigned: {why}"),
    });

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
) -> (Option<String>, String) {
    let members = catalog.members(group);
    if members.is_empty() {
        return (None, format!("group {group:?} has no technicians"));
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
                format!("round robin in group {group:?}"),
            )
        }
        Strategy::LeastOpen => {
            let open = |email: &str| workload.open.get(email).copied().unwrap_or(0);
            // `min_by_key` keeps the first of equal keys: ties go in round-robin order.
            let t = in_turn.min_by_key(|t| open(&t.email)).unwrap_or(members[0]);
            (
                Some(t.email.clone()),
                format!(
                    "fewest open tickets in group {group:?} ({})",
                    open(&t.email)
                ),
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
            r.rules[0].contains("\"correo\" in subject"),
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
        assert!(r.rules[0].contains("no keyword matched"));
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
        assert!(r.rules.iter().any(|l| l.contains("VIP")));
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
