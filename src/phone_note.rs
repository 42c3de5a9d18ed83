//! Phone notes: a phone agent's mail with the help desk's form (`Nombre:`, `Departamento:`,
//! `Correo:`, `Teléfono:`, `Detalle:`), from which folio opens a ticket on the caller's behalf.
//!
//! Labels in any order, any case, accents optional, English aliases; `Detalle` runs until the
//! next label or the end, so the detail may span lines.

use serde::Serialize;

use crate::requester::fold;

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
    Some(match l.as_str() {
        "nombre" | "nombre completo" | "name" | "full name" | "solicitante" | "caller" => {
            Field::Name
        }
        "departamento" | "depto" | "area" | "dependencia" | "department" => Field::Department,
        "correo" | "correo electronico" | "email" | "e-mail" | "mail" => Field::Email,
        "telefono" | "tel" | "extension" | "ext" | "phone" | "telephone" => Field::Phone,
        "detalle" | "detalles" | "descripcion" | "detail" | "details" | "description"
        | "problema" | "problem" => Field::Detail,
        _ => return None,
    })
}

impl PhoneNote {
    /// The form in `text`, if it is one: at least the detail and one way to know the caller
    /// (name or address).
    pub fn parse(text: &str) -> Option<PhoneNote> {
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
                            let addr = value
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
                    if trimmed == "--" || trimmed == "-- " {
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
        let n = PhoneNote::parse("Name: Carol\nDetails:\nVPN drops every hour\n").unwrap();
        assert_eq!(n.detail.as_deref(), Some("VPN drops every hour"));
        assert_eq!(n.missing(), vec!["departamento", "correo", "telefono"]);
    }

    #[test]
    fn not_a_note() {
        assert_eq!(PhoneNote::parse("Hola, no puedo entrar al correo."), None);
        assert_eq!(
            PhoneNote::parse("Nombre: Ana\nTeléfono: 123"),
            None,
            "no detail"
        );
        assert_eq!(
            PhoneNote::parse("Detalle: algo"),
            None,
            "nobody to open it for"
        );
    }
}
