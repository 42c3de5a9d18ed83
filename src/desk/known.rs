//! What the rules need to know from the database about a batch of messages: the request
//! ([`Lookup`], built from the analyses by [`crate::desk::plan::Planner::lookup`]) and the answer
//! ([`Known`], read by `store::Batch::lookup` in the batch's transaction). Plain data, so the plan
//! is a pure function of it and tests build it by hand.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::desk::routing::Workload;
use crate::desk::ticket::TicketRef;

/// What a batch needs looked up.
#[derive(Debug, Default)]
pub struct Lookup<'a> {
    pub dedup_keys: Vec<&'a str>,
    /// Message-IDs the messages answer or report on (In-Reply-To, References, a DSN's
    /// original): looked up among the mails we sent.
    pub parent_ids: Vec<&'a str>,
    /// Folios mentioned in subjects and bodies, and those of our verified Message-IDs.
    pub folios: Vec<String>,
    /// Addresses mail may be queued to, for the per-address cap.
    pub addresses: Vec<&'a str>,
    /// Senders who asked for their tickets (`mis folios`).
    pub senders: Vec<&'a str>,
    /// Start of the per-address cap's window.
    pub since: DateTime<Utc>,
    /// Start of the hourly caps' window.
    pub hour_ago: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// A mail we sent, as a reply or bounce refers to it.
#[derive(Debug, Clone)]
pub struct SentMail {
    pub outbox_id: i64,
    pub to: String,
    pub ticket_id: Option<i64>,
    /// Its template's name (`survey`, `resolved`, …).
    pub template: String,
}

/// What the database knows about a batch.
#[derive(Debug, Default)]
pub struct Known {
    /// When it was looked up: the batch's "now".
    pub now: DateTime<Utc>,
    pub dedup_keys: HashSet<String>,
    /// Our outgoing Message-ID → that mail.
    pub sent: HashMap<String, SentMail>,
    /// Folio → ticket (every ticket the batch refers to).
    pub tickets: HashMap<String, TicketRef>,
    /// Ticket id → folio.
    pub folio_of: HashMap<i64, String>,
    /// Address ([`crate::desk::policy::cap_key`]: its `+tag` removed) → mails queued to it (and
    /// to its +tagged forms) within the window.
    pub recent_mails: HashMap<String, u32>,
    /// Domain → mails queued to it within the last hour.
    pub recent_domains: HashMap<String, u32>,
    /// Mails queued within the last hour.
    pub recent_total: u32,
    /// Addresses not to mail (they bounced).
    pub failing: HashSet<String>,
    pub workload: Workload,
    /// Sender → their active tickets (as requester or participant), newest first.
    pub sender_tickets: HashMap<String, Vec<TicketRef>>,
}

impl Known {
    /// The ticket with this id, if the batch looked it up.
    pub fn ticket_by_id(&self, id: i64) -> Option<&TicketRef> {
        self.folio_of.get(&id).and_then(|f| self.tickets.get(f))
    }
}
