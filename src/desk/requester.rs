//! Requester data the help desk must capture: full name, department, email, phone.
//!
//! Name and email come from the message; department and phone from the directory file
//! (`config/directorio.csv`) when the address is listed there, else from `Departamento:` /
//! `Teléfono:` lines the requester wrote in the body. Pure, except [`Directory::load`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fold::fold;
use crate::inbound::mail::InboundMail;
use crate::inbound::phone_note::{DEPARTMENT_LABELS, NAME_LABELS, PHONE_LABELS};

/// A directory problem, naming the file and line.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {message}")]
    Row {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// One person in the institution's directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub name: Option<String>,
    pub department: Option<String>,
    pub phone: Option<String>,
}

/// The institution's directory, keyed by lower-case email address.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    by_email: HashMap<String, DirectoryEntry>,
}

impl Directory {
    /// Loads a CSV file with a header row naming the columns `email`, `name`, `department`,
    /// `phone` (Spanish names `correo`, `nombre`, `departamento`, `telefono` also work).
    pub fn load(path: &Path) -> Result<Directory, DirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| DirectoryError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the CSV `text` of the directory file at `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Directory, DirectoryError> {
        let row_err = |line: u64, message: String| DirectoryError::Row {
            path: path.to_owned(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| row_err(1, e.to_string()))?
            .iter()
            .map(fold)
            .collect();
        let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
        let email_col = col(&["email", "correo"])
            .ok_or_else(|| row_err(1, "the header row has no \"email\" column".into()))?;
        let name_col = col(&["name", "nombre"]);
        let dept_col = col(&["department", "departamento"]);
        let phone_col = col(&["phone", "telefono"]);
        let mut by_email = HashMap::new();
        for record in reader.records() {
            let record = record
                .map_err(|e| row_err(e.position().map(|p| p.line()).unwrap_or(0), e.to_string()))?;
            let get = |c: Option<usize>| {
                c.and_then(|c| record.get(c))
                    .map(str::to_string)
                    .filter(|s| !s.is_empty())
            };
            let Some(email) = get(Some(email_col)) else {
                continue;
            };
            by_email.insert(
                email.to_lowercase(),
                DirectoryEntry {
                    name: get(name_col),
                    department: get(dept_col),
                    phone: get(phone_col),
                },
            );
        }
        Ok(Directory { by_email })
    }

    pub fn lookup(&self, email: &str) -> Option<&DirectoryEntry> {
        self.by_email.get(&email.to_lowercase())
    }

    pub fn len(&self) -> usize {
        self.by_email.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_email.is_empty()
    }
}

/// What the help desk knows about the person who wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Requester {
    pub email: String,
    pub name: Option<String>,
    pub department: Option<String>,
    pub phone: Option<String>,
}

/// A field the help desk needs but does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingField {
    Name,
    Department,
    Phone,
}

impl Requester {
    /// The fields still missing, in the order the confirmation lists them.
    pub fn missing(&self) -> Vec<MissingField> {
        let mut m = Vec::new();
        if self.name.is_none() {
            m.push(MissingField::Name);
        }
        if self.department.is_none() {
            m.push(MissingField::Department);
        }
        if self.phone.is_none() {
            m.push(MissingField::Phone);
        }
        m
    }
}

/// Builds the requester from the message, the directory and the body's form lines.
///
/// The directory entry used is the requester's own address's (the address folio answers) and
/// no other: with `From:` an employee and `Reply-To:` an outside address, the employee's name,
/// department and phone would otherwise go to the outsider in the confirmation (and stay on
/// the ticket, in every later mail to its requester). Directory data reach only their owner.
pub fn requester_of(mail: &InboundMail, directory: &Directory) -> Requester {
    let email = mail.reply_address().unwrap_or_default().to_string();
    let entry = directory.lookup(&email);
    let from_body = |names: &[&str]| body_field(&mail.body_text, names);
    Requester {
        name: entry
            .and_then(|e| e.name.clone())
            .or_else(|| mail.from_name.clone().filter(|n| !n.contains('@')))
            .or_else(|| from_body(NAME_LABELS)),
        department: entry
            .and_then(|e| e.department.clone())
            .or_else(|| from_body(DEPARTMENT_LABELS)),
        phone: entry
            .and_then(|e| e.phone.clone())
            .or_else(|| from_body(PHONE_LABELS)),
        email,
    }
}

/// The value of the first `Label: value` line whose label (accents and case folded) is one of
/// `names`. Quoted lines (`>`) are skipped: they are someone else's words.
pub fn body_field(body: &str, names: &[&str]) -> Option<String> {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('>'))
        .find_map(|line| {
            let (label, value) = line.split_once(':')?;
            let label = fold(label.trim().trim_start_matches(['*', '-', '•']).trim());
            let value = value.trim().trim_matches('*').trim();
            (names.contains(&label.as_str()) && !value.is_empty() && value.len() <= 200)
                .then(|| value.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_fields_any_case_and_accents() {
        let body =
            "Buen día\n\nDEPARTAMENTO: Recursos Humanos\ntelefono: 722 123 4567\n> Teléfono: 000\n";
        assert_eq!(
            body_field(body, &["departamento"]).as_deref(),
            Some("Recursos Humanos")
        );
        assert_eq!(
            body_field(body, &["telefono"]).as_deref(),
            Some("722 123 4567")
        );
        assert_eq!(body_field(body, &["depto"]), None);
    }

    #[test]
    fn directory_wins_over_body() {
        let dir = Directory::parse(
            Path::new("d.csv"),
            "email,name,department,phone\nAna@Example.test,Ana López,Nómina,7221112233\n",
        )
        .unwrap();
        let mail = crate::inbound::mail::parse(
            b"From: ana@example.test\r\nSubject: x\r\n\r\nDepartamento: Otro\r\n",
            0,
        );
        let r = requester_of(&mail, &dir);
        assert_eq!(r.name.as_deref(), Some("Ana López"));
        assert_eq!(r.department.as_deref(), Some("Nómina"));
        assert!(r.missing().is_empty());
    }

    #[test]
    fn directory_data_only_for_the_entrys_own_address() {
        let dir = Directory::parse(
            Path::new("d.csv"),
            "email,name,department,phone\nana@example.test,Ana López,Nómina,7221112233\n",
        )
        .unwrap();
        // A forged From of an employee with the outsider's Reply-To: nothing of Ana's.
        let mail = crate::inbound::mail::parse(
            b"From: ana@example.test\r\nReply-To: eve@evil.test\r\nSubject: x\r\n\r\nhola\r\n",
            0,
        );
        let r = requester_of(&mail, &dir);
        assert_eq!(r.email, "eve@evil.test");
        assert_eq!((r.name, r.department, r.phone), (None, None, None));
        // Ana's address in Reply-To: the confirmation goes to Ana, so her data may.
        let mail = crate::inbound::mail::parse(
            b"From: Eve <eve@evil.test>\r\nReply-To: ana@example.test\r\nSubject: x\r\n\r\nhola\r\n",
            0,
        );
        let r = requester_of(&mail, &dir);
        assert_eq!(r.department.as_deref(), Some("Nómina"), "mail goes to Ana");
    }

    #[test]
    fn directory_without_email_column_names_file() {
        let e = Directory::parse(Path::new("config/directorio.csv"), "nombre,depto\nx,y\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("config/directorio.csv: line 1"), "{e}");
    }

    #[test]
    fn missing_fields_listed() {
        let mail =
            crate::inbound::mail::parse(b"From: bob@example.test\r\nSubject: x\r\n\r\nhola\r\n", 0);
        let r = requester_of(&mail, &Directory::default());
        assert_eq!(
            r.missing(),
            vec![
                MissingField::Name,
                MissingField::Department,
                MissingField::Phone
            ]
        );
    }
}
