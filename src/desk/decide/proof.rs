//! Proof that a staff member really wrote a mail: the From address alone proves nothing.

use super::Decider;
use crate::desk::ticket::TicketRef;

impl Decider<'_> {
    /// The sender's domain authenticated by a trusted server (aligned DKIM/SPF pass), described.
    pub(super) fn identity_pass(&self) -> Option<String> {
        let domain = self.sender().rsplit_once('@').map(|(_, d)| d)?;
        crate::inbound::authentication::aligned_pass(
            &self.a.mail.authentication_results,
            &self.policy.trusted_authserv_ids,
            domain,
        )
    }

    /// Whether the mail was sent to the sender's personal tokenised address (`tokens`).
    pub(super) fn personal_proof(&self) -> bool {
        let m = &self.a.mail;
        let recipients = m.to.iter().chain(&m.cc).chain(&m.envelope_to);
        self.policy
            .tokens
            .verify_personal_address(recipients, self.sender())
    }

    /// Proof that a technician's mail is really theirs, described; `None` without proof.
    pub(super) fn proof(&self, t: &TicketRef) -> Option<String> {
        let m = &self.a.mail;
        let sender = self.sender();
        let recipients = m.to.iter().chain(&m.cc).chain(&m.envelope_to);
        if self
            .policy
            .tokens
            .verify_staff_address(recipients, &t.folio, sender)
        {
            return Some("replied to the ticket's tokenised address".into());
        }
        self.identity_pass()
    }
}
