//! Unforgeable tokens: the Message-IDs folio generates and the per-ticket, per-technician
//! reply addresses of staff mail. Both carry an HMAC-SHA256 keyed with the site secret (random,
//! created by the first migration and kept in the database, so every instance shares it).
//!
//! A reply whose `In-Reply-To`/`References` holds one of our Message-IDs is threaded onto its
//! ticket whoever sends it: the ID proves the writer received our mail. A technician's command is
//! trusted only with proof (see `decide`); one proof is replying to the address
//! `helpdesk+t.<token>@domain`, whose token binds the ticket and the technician.
//!
//! Each phone agent and technician also has a personal address, `helpdesk+a.<token>@domain`
//! (the token binds the person only; `folio staff addresses` prints it for their address book):
//! a new mail sent to it proves that the person wrote it, which a phone note or a forward needs
//! before folio opens a ticket for, and mails, someone else.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Hex digits of the MAC kept in a Message-ID (96 bits).
const ID_MAC_HEX: usize = 24;
/// Hex digits of the MAC in a staff reply address (80 bits; local parts are short).
const STAFF_MAC_HEX: usize = 20;
/// The plus-address tag of staff reply addresses.
const STAFF_TAG: &str = "+t.";
/// The plus-address tag of staff members' personal addresses.
const PERSONAL_TAG: &str = "+a.";

/// Makes and checks tokens with the site secret.
#[derive(Clone)]
pub struct Tokens {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(***)")
    }
}

impl Tokens {
    pub fn new(secret: Vec<u8>) -> Tokens {
        Tokens { secret }
    }

    fn mac(&self, parts: &[&str]) -> String {
        // The key length is never wrong for HMAC; an empty secret still yields a (weak) MAC.
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        for p in parts {
            mac.update(p.as_bytes());
            mac.update(&[0]);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// A Message-ID (without `<>`) for a mail about `folio`: `<folio>.<nonce>.<mac>@<domain>`.
    pub fn message_id(&self, folio: &str, nonce: &str, domain: &str) -> String {
        let folio = folio.to_lowercase();
        let mac = self.mac(&["mid", &folio, nonce]);
        format!("{folio}.{nonce}.{}@{domain}", &mac[..ID_MAC_HEX])
    }

    /// The folio (lower case, as written in the ID) of a Message-ID we generated, or `None`
    /// when it is not ours or was tampered with.
    pub fn verify_message_id(&self, id: &str) -> Option<String> {
        let (local, _) = id.rsplit_once('@')?;
        let (rest, mac) = local.rsplit_once('.')?;
        let (folio, nonce) = rest.rsplit_once('.')?;
        if mac.len() != ID_MAC_HEX || folio.is_empty() || nonce.is_empty() {
            return None;
        }
        let expected = self.mac(&["mid", folio, nonce]);
        constant_time_eq(mac.as_bytes(), &expected.as_bytes()[..ID_MAC_HEX])
            .then(|| folio.to_string())
    }

    fn staff_mac(&self, folio: &str, technician: &str) -> String {
        let mut mac = self.mac(&["staff", &folio.to_lowercase(), &technician.to_lowercase()]);
        mac.truncate(STAFF_MAC_HEX);
        mac
    }

    /// The address a technician replies to for `folio`: `local+t.<token>@domain`.
    pub fn staff_address(&self, helpdesk_address: &str, folio: &str, technician: &str) -> String {
        let (local, domain) = helpdesk_address
            .rsplit_once('@')
            .unwrap_or((helpdesk_address, "folio.invalid"));
        format!(
            "{local}{STAFF_TAG}{}@{domain}",
            self.staff_mac(folio, technician)
        )
    }

    /// Whether one of `recipients` is the staff address of `folio` for `technician`.
    pub fn verify_staff_address<'a>(
        &self,
        recipients: impl IntoIterator<Item = &'a String>,
        folio: &str,
        technician: &str,
    ) -> bool {
        has_token(recipients, STAFF_TAG, &self.staff_mac(folio, technician))
    }

    fn personal_mac(&self, staff: &str) -> String {
        let mut mac = self.mac(&["personal", &staff.to_lowercase()]);
        mac.truncate(STAFF_MAC_HEX);
        mac
    }

    /// The personal address of a phone agent or technician: `local+a.<token>@domain`.
    pub fn personal_address(&self, helpdesk_address: &str, staff: &str) -> String {
        let (local, domain) = helpdesk_address
            .rsplit_once('@')
            .unwrap_or((helpdesk_address, "folio.invalid"));
        format!("{local}{PERSONAL_TAG}{}@{domain}", self.personal_mac(staff))
    }

    /// Whether one of `recipients` is the personal address of `staff`.
    pub fn verify_personal_address<'a>(
        &self,
        recipients: impl IntoIterator<Item = &'a String>,
        staff: &str,
    ) -> bool {
        has_token(recipients, PERSONAL_TAG, &self.personal_mac(staff))
    }
}

/// A fresh nonce for one of folio's Message-IDs: time-ordered from `now` (the injected clock),
/// unique by its random bits.
pub fn nonce(now: chrono::DateTime<chrono::Utc>) -> String {
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(now.timestamp()).unwrap_or(0),
        now.timestamp_subsec_nanos(),
    ))
    .simple()
    .to_string()
}

/// Whether the local part of one of `recipients` carries `tag` followed by `expected`.
fn has_token<'a>(
    recipients: impl IntoIterator<Item = &'a String>,
    tag: &str,
    expected: &str,
) -> bool {
    recipients.into_iter().any(|r| {
        let local = r.rsplit_once('@').map_or(r.as_str(), |(l, _)| l);
        local
            .to_lowercase()
            .split_once(tag)
            .is_some_and(|(_, token)| constant_time_eq(token.as_bytes(), expected.as_bytes()))
    })
}

/// `text` with every staff token removed (`helpdesk+t.<token>@x` and `helpdesk+a.<token>@x` →
/// `helpdesk@x`): a technician's relayed text must not hand the requester an address that proves
/// the technician's identity.
pub fn redact_staff_addresses(text: &str) -> String {
    static TOKEN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\+[ta]\.[0-9a-f]{8,}@")
            .unwrap_or_else(|e| unreachable!("static regex: {e}"))
    });
    TOKEN.replace_all(text, "@").into_owned()
}

/// Compares without leaking where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn message_ids_verify_and_resist_tampering() {
        let t = tokens();
        let id = t.message_id("MDA-2026-000042", "0190abcd", "example.test");
        assert!(id.starts_with("mda-2026-000042.0190abcd."), "{id}");
        assert_eq!(t.verify_message_id(&id).as_deref(), Some("mda-2026-000042"));
        // Another folio with the same MAC, another secret, garbage: all rejected.
        let forged = id.replace("000042", "000043");
        assert_eq!(t.verify_message_id(&forged), None);
        assert_eq!(Tokens::new(b"other".to_vec()).verify_message_id(&id), None);
        for bad in ["", "@", "a.b@c", "x.y.z@d", "...@x", "mda.1.zz@x"] {
            assert_eq!(t.verify_message_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn relayed_text_never_carries_a_token() {
        let t = tokens();
        let addr = t.staff_address(
            "helpdesk@example.test",
            "MDA-2026-000042",
            "tech1@example.test",
        );
        let text = format!("Listo.\n\nPara: Mesa <{addr}>\n");
        assert_eq!(
            redact_staff_addresses(&text),
            "Listo.\n\nPara: Mesa <helpdesk@example.test>\n"
        );
    }

    #[test]
    fn personal_address_binds_the_person_only() {
        let t = tokens();
        let addr = t.personal_address("helpdesk@example.test", "Agent1@example.test");
        assert!(
            addr.starts_with("helpdesk+a.") && addr.ends_with("@example.test"),
            "{addr}"
        );
        let rcpts = vec!["x@y".to_string(), addr.to_uppercase()];
        assert!(t.verify_personal_address(&rcpts, "agent1@example.test"));
        assert!(!t.verify_personal_address(&rcpts, "agent2@example.test"));
        assert!(
            !Tokens::new(b"other".to_vec()).verify_personal_address(&rcpts, "agent1@example.test")
        );
        // A per-folio staff token is not a personal one, nor the other way round.
        let staff = t.staff_address(
            "helpdesk@example.test",
            "MDA-2026-000001",
            "agent1@example.test",
        );
        assert!(!t.verify_personal_address(&[staff], "agent1@example.test"));
        assert!(!t.verify_staff_address(
            std::slice::from_ref(&addr),
            "MDA-2026-000001",
            "agent1@example.test"
        ));
        assert_eq!(
            redact_staff_addresses(&format!("escriba a {addr}")),
            "escriba a helpdesk@example.test"
        );
    }

    #[test]
    fn staff_address_binds_ticket_and_technician() {
        let t = tokens();
        let addr = t.staff_address(
            "helpdesk@example.test",
            "MDA-2026-000042",
            "tech1@example.test",
        );
        assert!(
            addr.starts_with("helpdesk+t.") && addr.ends_with("@example.test"),
            "{addr}"
        );
        let rcpts = vec!["someone@x".to_string(), addr.to_uppercase().to_lowercase()];
        assert!(t.verify_staff_address(&rcpts, "mda-2026-000042", "TECH1@example.test"));
        assert!(!t.verify_staff_address(&rcpts, "MDA-2026-000043", "tech1@example.test"));
        assert!(!t.verify_staff_address(&rcpts, "MDA-2026-000042", "tech2@example.test"));
        assert!(!t.verify_staff_address(
            &["helpdesk@example.test".to_string()],
            "MDA-2026-000042",
            "tech1@example.test"
        ));
    }
}
