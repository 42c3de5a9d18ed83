//! Mail as it leaves: the outbox worker ([`sender`]) claims queued mail, renders it
//! ([`render`]), builds the MIME message ([`outgoing`]) and sends it ([`smtp`]).

pub mod outgoing;
pub mod render;
pub mod sender;
pub mod smtp;
