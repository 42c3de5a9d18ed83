//! Phone notes: a phone agent's mail with the help desk's form (`Nombre:`, `Departamento:`,
//! `Correo:`, `Teléfono:`, `Detalle:`), from which folio opens a ticket on the caller's behalf.
//!
//! Labels in any order, any case, accents optional, English aliases; `Detalle` runs until the
//! next label or the end, so the detail may span lines.

use serde::Serialize;

use crate::fold::fold;

/// Labels of the form lines people type, folded (lower case, no accents). Shared by the
/// requester's own lines and the phone-note form, so an alias added here works in both.
pub const NAME_LABELS: &[&str] = &["nombre", "nombre completo", "name", "full name"];
pub const DEPARTMENT_LABELS: &[&str] =
    &["departamento", "depto", "area", "dependencia", "department"];
pub const PHONE_LABELS: &[&str] = &["telefono", "tel", "extension", "ext", "phone", "telephone"];

/// The form's fields, as the agent typed them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PhoneNote {
    pub name: Option<String>,
    pub department: Option<String>,
    /// Lower case; `None` when missing or not an address.
    pub email: Option<String>,
    pub phone: Option<String>,
    pub detail: Option<String>,
}

/// Lines that end an agent's note: the closing of their signature.
const CLOSINGS: &[&str] = &[
    "saludos",
    "saludos cordiales",
    "atentamente",
    "atte",
    "cordialmente",
    "regards",
    "best regards",
    "kind regards",
    "thanks",
    "thank you",
];

#[derive(Clone, Copy, PartialEq)]
enum Field {
    Name,
    Department,
    Email,
    Phone,
    Detail,
}

fn field_of(label: &str) -> Option<Field> {
    let l = fold(label.trim().trim_matches(['*', '-', '•', ' ']));
    let l = l.as_str();
    Some(
        if NAME_LABELS.contains(&l) || matches!(l, "solicitante" | "caller") {
            Field::Name
        } else if DEPARTMENT_LABELS.contains(&l) {
            Field::Department
        } else if PHONE_LABELS.contains(&l) {
            Field::Phone
        } else if matches!(
            l,
            "correo" | "correo electronico" | "email" | "e-mail" | "mail"
        ) {
            Field::Email
        } else if matches!(
            l,
            "detalle"
                | "detalles"
                | "descripcion"
                | "detail"
                | "details"
                | "description"
                | "problema"
                | "problem"
        ) {
            Field::Detail
        } else {
            return None;
        },
    )
}

impl PhoneNote {
    /// The form in `text`, if it is one: at least the detail and one way to know the caller
    /// (name or address). `signer` is the writer's name: a line with it (or a closing such as
    /// "Saludos") ends the detail, since it starts their signature (Outlook signatures have no
    /// `-- ` line).
    pub fn parse(text: &str, signer: Option<&str>) -> Option<PhoneNote> {
        let signer = signer.map(fold).filter(|s| !s.trim().is_empty());
        let ends_detail = |line: &str| {
            let l = fold(line.trim())
                .trim_end_matches([',', '.', '!'])
                .to_string();
            l == "--"
                || CLOSINGS.contains(&l.as_str())
                || signer
                    .as_deref()
                    .is_some_and(|s| l == s.trim() || (l.len() >= 5 && s.starts_with(&l)))
        };
        let mut note = PhoneNote::default();
        let mut detail: Option<Vec<String>> = None;
        let mut in_detail = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('>') {
                continue;
            }
            let labelled = trimmed
                .split_once(':')
                .and_then(|(label, value)| field_of(label).map(|f| (f, value.trim())));
            match labelled {
                Some((field, value)) => {
                    in_detail = field == Field::Detail;
                    let value = value.trim_matches('*').trim();
                    let set = |slot: &mut Option<String>| {
                        if slot.is_none() && !value.is_empty() {
                            *slot = Some(value.to_string());
                        }
                    };
                    match field {
                        Field::Name => set(&mut note.name),
                        Field::Department => set(&mut note.department),
                        Field::Phone => set(&mut note.phone),
                        Field::Email => {
                            let addr = crate::inbound::mail::without_mailto(value)
                                .trim_matches(['<', '>'])
                                .trim_start_matches("mailto:")
                                .to_lowercase();
                            if note.email.is_none()
                                && addr.contains('@')
                                && !addr.contains(char::is_whitespace)
                            {
                                note.email = Some(addr);
                            }
                        }
                        Field::Detail => {
                            let d = detail.get_or_insert_with(Vec::new);
                            if !value.is_empty() {
                                d.push(value.to_string());
                            }
                        }
                    }
                }
                None if in_detail => {
                    // A signature ends the detail.
                    if ends_detail(trimmed) {
                        in_detail = false;
                        continue;
                    }
                    if let Some(d) = detail.as_mut() {
                        d.push(line.trim_end().to_string());
                    }
                }
                None => {}
            }
        }
        note.detail = detail
            .map(|d| d.join("\n").trim().to_string())
            .filter(|d| !d.is_empty());
        (note.detail.is_some() && (note.name.is_some() || note.email.is_some())).then_some(note)
    }

    /// The form fields the help desk requires that the agent left empty (`nombre`,
    /// `departamento`, `correo`, `telefono`).
    pub fn missing(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.name.is_none() {
            m.push("nombre");
        }
        if self.department.is_none() {
            m.push("departamento");
        }
        if self.email.is_none() {
            m.push("correo");
        }
        if self.phone.is_none() {
            m.push("telefono");
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_any_order_accents_and_multiline_detail() {
        let n = PhoneNote::parse(
            "Nota telefónica\n\nTELEFONO: 722 555 0101\nnombre:  Bob Martínez \nCorreo: <Bob@Example.test>\n\
             Departamento: Recursos Humanos\nDetalle: No imprime la impresora del piso 3.\n\
             Ya reinició el equipo.\n\n-- \nAgente Uno\n",
            None,
        )
        .unwrap();
        assert_eq!(n.name.as_deref(), Some("Bob Martínez"));
        assert_eq!(n.email.as_deref(), Some("bob@example.test"));
        assert_eq!(n.phone.as_deref(), Some("722 555 0101"));
        assert_eq!(n.department.as_deref(), Some("Recursos Humanos"));
        assert_eq!(
            n.detail.as_deref(),
            Some("No imprime la impresora del piso 3.\nYa reinició el equipo.")
        );
        assert!(n.missing().is_empty());
    }

    #[test]
    fn english_aliases_and_missing_fields() {
        let n = PhoneNote::parse("Name: Carol\nDetails:\nVPN drops every hour\n", None).unwrap();
        assert_eq!(n.detail.as_deref(), Some("VPN drops every hour"));
        assert_eq!(n.missing(), vec!["departamento", "correo", "telefono"]);
    }

    #[test]
    fn an_outlook_signature_and_linked_address_stay_out() {
        let n = PhoneNote::parse(
            "Nombre: Ana\nCorreo: ana@x.mx<mailto:ana@x.mx>\nDetalle: No hay red.\nDesde ayer.\n\n\
             Alejandra Torres\nAgente de Mesa de Ayuda | Ext. 60101\n",
            Some("Alejandra Torres"),
        )
        .unwrap();
        assert_eq!(n.email.as_deref(), Some("ana@x.mx"));
        assert_eq!(n.detail.as_deref(), Some("No hay red.\nDesde ayer."));
        let n = PhoneNote::parse(
            "Name: Bo\nEmail: [bo@x.mx]\nDetail: VPN\n\nRegards,\nLaura",
            None,
        )
        .unwrap();
        assert_eq!(n.email.as_deref(), Some("bo@x.mx"));
        assert_eq!(n.detail.as_deref(), Some("VPN"));
    }

    #[test]
    fn not_a_note() {
        assert_eq!(
            PhoneNote::parse("Hola, no puedo entrar al correo.", None),
            None
        );
        assert_eq!(
            PhoneNote::parse("Nombre: Ana\nTeléfono: 123", None),
            None,
            "no detail"
        );
        assert_eq!(
            PhoneNote::parse("Detalle: algo", None),
            None,
            "nobody to open it for"
        );
    }
}
