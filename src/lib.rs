//! folio: an email-driven help-desk daemon. `ARCHITECTURE.md` is the map; in short:
//!
//! ```text
//! daemon::mailbox: inbound::imap (fetch) → daemon::pipeline: desk::analysis (parse, classify,
//!   requester, quotes) → desk::plan (desk::decide per message) → store (one transaction)
//!   → inbound::imap (file away)
//! outbound::sender: outbox → outbound::render → outbound::smtp
//! ```
//!
//! - [`inbound`]: mail as it arrives: MIME, HTML, quotes, classification, IMAP.
//! - [`oauth`]: OAuth2 access tokens for the IMAP and SMTP logins (XOAUTH2, OAUTHBEARER).
//! - [`desk`]: the help desk's rules, pure: who may do what on which ticket, and what to send.
//! - [`outbound`]: mail as it leaves: templates, MIME construction, the outbox worker, SMTP.
//! - [`store`]: the database, the only place that knows SQL.
//! - [`daemon`]: the shell that drives the rest: the pipeline and the mailbox worker, and the
//!   commands' work (`folio templates`, `report`, `status`).
//! - Foundations every room may use: [`config`] (set-up), [`calendar`] (business hours and
//!   the lifecycle's spans, pure), [`clock`] (injected time), [`shutdown`], [`heartbeat`] (the loops'
//!   liveness, for the watchdog), [`tls`], [`folio`]
//!   (the reference number's format), [`fold`] (matching typed words), [`terminal`] (what the
//!   CLI prints).

pub mod calendar;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod desk;
pub mod fold;
pub mod folio;
pub mod heartbeat;
pub mod inbound;
pub mod oauth;
pub mod outbound;
pub mod shutdown;
pub mod store;
pub mod terminal;
pub mod tls;
