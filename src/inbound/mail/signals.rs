//! Signs of automatic mail (auto-replies, mailing lists, loops, delivery reports) as plain
//! header facts.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::headers::clean_id;

/// Our loop-detection header, on every mail folio sends; its value is the help desk's address.
pub const LOOP_HEADER: &str = "X-Folio-Loop";

/// The header facts automatic-mail classification looks at; extracted here so `classify` is
/// pure and parser-independent.
#[derive(Debug, Clone, Default)]
pub struct AutoSignals {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: Option<String>,
    pub list_unsubscribe: bool,
    pub x_autoreply: Option<String>,
    pub x_autorespond: Option<String>,
    pub x_auto_response_suppress: Option<String>,
    /// Values of every `X-Loop` header.
    pub x_loop: Vec<String>,
    /// Value of our own `X-Folio-Loop` header, if present.
    pub folio_loop: Option<String>,
    /// `Return-Path: <>` (the null sender of bounces and auto-replies).
    pub return_path_empty: bool,
    /// `multipart/report; report-type=delivery-status` or a `message/delivery-status` part.
    pub delivery_report: bool,
    /// The Message-ID of the original message inside a delivery report.
    pub report_original_message_id: Option<String>,
    /// A delivery report that only says "delayed, still trying" (`Action: delayed` or a 4.x.x
    /// status and no failure): not a hard bounce.
    pub report_only_delayed: bool,
}

/// The [`AutoSignals`] of `msg`.
pub(super) fn signals(msg: &Message) -> AutoSignals {
    let raw = |name: &str| {
        msg.header_raw(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let x_loop = msg
        .headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case("X-Loop"))
        .map(|(_, v)| v.trim().to_lowercase())
        .collect();
    let return_path_empty = msg
        .header_raw("Return-Path")
        .is_some_and(|v| clean_id(v).is_empty());
    let report = DeliveryReport::read(msg);
    AutoSignals {
        auto_submitted: raw("Auto-Submitted"),
        precedence: raw("Precedence"),
        list_id: raw("List-Id"),
        list_unsubscribe: raw("List-Unsubscribe").is_some(),
        x_autoreply: raw("X-Autoreply"),
        x_autorespond: raw("X-Autorespond"),
        x_auto_response_suppress: raw("X-Auto-Response-Suppress"),
        x_loop,
        folio_loop: raw(LOOP_HEADER),
        return_path_empty,
        delivery_report: report.is_report,
        report_original_message_id: report.original_message_id,
        report_only_delayed: report.delayed && !report.failed,
    }
}

/// What a delivery report (bounce or delay notice) says, if the message is one.
#[derive(Debug, Default)]
struct DeliveryReport {
    /// `multipart/report; report-type=delivery-status` or a `message/delivery-status` part.
    is_report: bool,
    original_message_id: Option<String>,
    /// Some recipient `Action: failed` or a 5.x.x status.
    failed: bool,
    /// Some recipient `Action: delayed` or a 4.x.x status.
    delayed: bool,
}

impl DeliveryReport {
    fn read(msg: &Message) -> DeliveryReport {
        let root_is_report = msg.root_part().content_type().is_some_and(|ct| {
            ct.c_type.eq_ignore_ascii_case("multipart")
                && ct
                    .c_subtype
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
                && ct
                    .attribute("report-type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
        });
        let mut report = DeliveryReport {
            is_report: root_is_report,
            ..DeliveryReport::default()
        };
        for part in &msg.parts {
            if part.is_content_type("message", "delivery-status")
                || part.is_content_type("message", "global-delivery-status")
            {
                report.is_report = true;
                report.read_status(part.contents());
            }
            if report.original_message_id.is_none() {
                report.original_message_id = match &part.body {
                    PartType::Message(m) if root_is_report => m.message_id().map(clean_id),
                    PartType::Text(t) if part.is_content_type("text", "rfc822-headers") => {
                        MessageParser::default()
                            .parse(t.as_bytes())
                            .and_then(|m| m.message_id().map(clean_id))
                    }
                    _ => None,
                };
            }
        }
        report
    }

    /// The `Action:` and `Status:` lines of a delivery-status part.
    fn read_status(&mut self, contents: &[u8]) {
        let text = String::from_utf8_lossy(contents).to_lowercase();
        for line in text.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("action:") {
                self.failed |= v.trim().starts_with("failed");
                self.delayed |= v.trim().starts_with("delayed");
            } else if let Some(v) = line.strip_prefix("status:") {
                self.failed |= v.trim().starts_with('5');
                self.delayed |= v.trim().starts_with('4');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    fn report(status: &str) -> String {
        format!(
            "From: MAILER-DAEMON@x.test\r\nReturn-Path: <>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nNo entregado\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x.test\r\n\r\n{status}\r\n\
--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <orig@x.test>\r\nSubject: s\r\n\r\n--b--\r\n"
        )
    }

    #[test]
    fn delivery_reports_say_what_they_report() {
        let failed = parse(report("Action: failed\r\nStatus: 5.1.1").as_bytes(), 0).signals;
        assert!(failed.delivery_report && failed.return_path_empty);
        assert_eq!(
            failed.report_original_message_id.as_deref(),
            Some("orig@x.test")
        );
        assert!(!failed.report_only_delayed);
        let delayed = parse(report("Action: delayed\r\nStatus: 4.4.7").as_bytes(), 0).signals;
        assert!(delayed.delivery_report && delayed.report_only_delayed);
        let plain = parse(b"From: a@x.test\r\nReturn-Path: <a@x.test>\r\n\r\nx\r\n", 0).signals;
        assert!(!plain.delivery_report && !plain.return_path_empty);
    }
}
