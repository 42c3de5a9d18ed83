//! Mail as it arrives: bytes → [`mail::InboundMail`] (MIME, charsets, HTML to text), automatic
//! mail recognised ([`classify`]), quoted history and forwards found ([`quote`]), subjects,
//! phone notes and authentication results read. Pure, except [`imap`], the IMAP adapter.

pub mod authentication;
pub mod classify;
pub mod html_text;
pub mod imap;
pub mod mail;
pub mod phone_note;
pub mod quote;
pub mod subject;
