//! The help desk's rules, pure: no I/O, no clock. An analysed message plus what the store
//! knows → a decision ([`decide`]): which ticket, which changes ([`ticket`], [`command`]), whom
//! to route to ([`routing`], [`catalog`]), which mails to queue ([`notice`]), and why, under
//! the site's [`policy`]. [`notice_samples`] holds a realistic mail of every kind, for checking
//! and previewing templates.
//! A requester's short answers are read by [`validation`] (to "your request was resolved,
//! please confirm") and [`survey`] (to a satisfaction survey). [`report`] sums up a period
//! for the admins; [`stall`] says when mail stuck in the mailbox is worth an alarm.

pub mod alert;
pub mod analysis;
mod answer_text;
pub mod catalog;
pub mod command;
pub mod decide;
pub mod digest;
pub mod known;
pub mod lifecycle;
pub mod notice;
pub mod notice_samples;
pub mod plan;
pub mod policy;
pub mod report;
pub mod requester;
pub mod routing;
pub mod sla;
pub mod stall;
pub mod survey;
pub mod ticket;
pub mod tokens;
pub mod validation;
