//! folio: an email-driven help-desk daemon.
//!
//! The pipeline, top to bottom (see `ARCHITECTURE.md`):
//!
//! ```text
//! imap (fetch) → mail::parse → classify → requester → quote → decide → store (one transaction)
//!             → imap (move to Procesados) … sender: outbox → render → smtp
//! ```
//!
//! Functional core (no I/O, no clock): [`mail`], [`classify`], [`folio`], [`requester`],
//! [`subject`], [`quote`], [`command`], [`phone_note`], [`catalog`], [`routing`], [`ticket`],
//! [`tokens`], [`authentication`], [`decide`], [`outgoing`], [`terminal`], [`html_text`].
//! At the edge: [`render`] (reads the template files), [`config`] (reads the config file).
//! I/O shell: [`store`], [`imap`], [`smtp`], [`tls`], [`sender`], [`pipeline`], [`daemon`],
//! [`clock`], [`shutdown`].

pub mod authentication;
pub mod catalog;
pub mod classify;
pub mod clock;
pub mod command;
pub mod config;
pub mod daemon;
pub mod decide;
pub mod folio;
pub mod html_text;
pub mod imap;
pub mod mail;
pub mod outgoing;
pub mod phone_note;
pub mod pipeline;
pub mod quote;
pub mod render;
pub mod requester;
pub mod routing;
pub mod sender;
pub mod shutdown;
pub mod smtp;
pub mod store;
pub mod subject;
pub mod terminal;
pub mod ticket;
pub mod tls;
pub mod tokens;
