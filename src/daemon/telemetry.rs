//! The daemon's numbers for Prometheus (`/metrics`): counters the shell's loops bump as work
//! happens, gauges set when scraped, and the time a message spends in processing.
//!
//! Each daemon keeps its own recorder rather than installing the `metrics` crate's global one:
//! two daemons in one test process (or a test next to a daemon) never count into each other,
//! and without an HTTP listener nothing is recorded at all ([`Telemetry::off`]: every handle
//! is a no-op). `docs/operations.md` lists every metric with its meaning.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The verdicts `folio_messages_processed_total` is labelled with: ordinary mail and each kind
/// of automatic mail (`inbound::classify::AutoKind`).
pub const VERDICTS: [&str; 5] = ["human", "auto_reply", "bounce", "bulk", "loop"];

/// The buckets of `folio_processing_seconds`: from a message alone (a few ms) to a batch
/// waiting on a slow disk or a big attachment (seconds).
const PROCESSING_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The handles the loops record into, and the renderer of the text format.
pub struct Telemetry {
    /// `None` when off: nothing to render.
    handle: Option<PrometheusHandle>,
    processed: Vec<(&'static str, Counter)>,
    pub quarantined: Counter,
    pub tickets_opened: Counter,
    pub mail_sent: Counter,
    pub mail_failed: Counter,
    pub mail_retried: Counter,
    pub imap_reconnects: Counter,
    pub scheduled_items_done: Counter,
    pub stall_alarms: Counter,
    pub processing_seconds: Histogram,
    pub outbox_depth: Gauge,
    pub outbox_oldest_age_seconds: Gauge,
    pub mailbox_connected: Gauge,
    pub mailbox_waiting: Gauge,
    pub database_up: Gauge,
    pub stalled: Gauge,
    pub oauth2_ok: Counter,
    pub oauth2_errors: Counter,
    pub oauth2_failing: Gauge,
    pub oauth2_token_expiry_seconds: Gauge,
}

/// What one metric is: its name, kind and help line.
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

const HELP: &[(&str, Kind, &str)] = &[
    ("folio_messages_processed_total", Kind::Counter, "Messages stored (or recognised as already stored) and filed away, by the classifier's verdict."),
    ("folio_messages_quarantined_total", Kind::Counter, "Messages moved to the quarantine folder (unusable, over a limit, analysis failed)."),
    ("folio_tickets_opened_total", Kind::Counter, "Tickets opened from mail."),
    ("folio_mail_sent_total", Kind::Counter, "Mails the SMTP server accepted."),
    ("folio_mail_failed_total", Kind::Counter, "Mails given up on: refused permanently (5xx) or failing past smtp.max_age."),
    ("folio_mail_retries_total", Kind::Counter, "Temporary send failures (the mail is retried later)."),
    ("folio_imap_reconnects_total", Kind::Counter, "IMAP sessions that failed and were reconnected with backoff."),
    ("folio_scheduled_items_done_total", Kind::Counter, "Due items (reminders, closings, surveys, service-level warnings) done by the sweep."),
    ("folio_stall_alarms_total", Kind::Counter, "Stall episodes alarmed (alarms.stall_after)."),
    ("folio_processing_seconds", Kind::Histogram, "Seconds from the start of a batch's processing until its message was stored."),
    ("folio_outbox_depth", Kind::Gauge, "Mails waiting in the outbox (pending), read when scraped."),
    ("folio_outbox_oldest_age_seconds", Kind::Gauge, "Age of the oldest pending mail in the outbox (0 when empty), read when scraped."),
    ("folio_mailbox_connected", Kind::Gauge, "1 while the IMAP session is up."),
    ("folio_mailbox_waiting_messages", Kind::Gauge, "Messages last seen waiting in the watched folder."),
    ("folio_database_up", Kind::Gauge, "1 when the database answered the scrape's query."),
    ("folio_oauth2_refreshes_total", Kind::Counter, "OAuth2 token requests, by result (ok, error), since start."),
    ("folio_oauth2_failing", Kind::Gauge, "1 while the OAuth2 token endpoint fails (from the first failed request to the next success)."),
    ("folio_oauth2_token_expiry_seconds", Kind::Gauge, "Seconds until the current OAuth2 access token expires (0: none, or expired)."),
    ("folio_stalled", Kind::Gauge, "1 while mail waits in the folder and nothing was processed for alarms.stall_after."),
];

impl Telemetry {
    /// Nothing recorded, nothing rendered: no HTTP listener is configured.
    pub fn off() -> Arc<Telemetry> {
        Arc::new(Telemetry {
            handle: None,
            processed: VERDICTS.iter().map(|v| (*v, Counter::noop())).collect(),
            quarantined: Counter::noop(),
            tickets_opened: Counter::noop(),
            mail_sent: Counter::noop(),
            mail_failed: Counter::noop(),
            mail_retried: Counter::noop(),
            imap_reconnects: Counter::noop(),
            scheduled_items_done: Counter::noop(),
            stall_alarms: Counter::noop(),
            processing_seconds: Histogram::noop(),
            outbox_depth: Gauge::noop(),
            outbox_oldest_age_seconds: Gauge::noop(),
            mailbox_connected: Gauge::noop(),
            mailbox_waiting: Gauge::noop(),
            database_up: Gauge::noop(),
            stalled: Gauge::noop(),
            oauth2_ok: Counter::noop(),
            oauth2_errors: Counter::noop(),
            oauth2_failing: Gauge::noop(),
            oauth2_token_expiry_seconds: Gauge::noop(),
        })
    }

    /// A recorder of its own, every metric registered up front so each is rendered (at 0)
    /// from the first scrape.
    pub fn on() -> Arc<Telemetry> {
        let builder = PrometheusBuilder::new().set_buckets_for_metric(
            Matcher::Full("folio_processing_seconds".into()),
            &PROCESSING_BUCKETS,
        );
        let recorder = match builder {
            Ok(b) => b.build_recorder(),
            // The buckets are a non-empty constant: this cannot happen.
            Err(e) => unreachable!("folio_processing_seconds buckets: {e}"),
        };
        for (name, kind, help) in HELP {
            let (name, help) = (*name, *help);
            match kind {
                Kind::Counter => recorder.describe_counter(name.into(), None, help.into()),
                Kind::Gauge => recorder.describe_gauge(name.into(), None, help.into()),
                Kind::Histogram => {
                    recorder.describe_histogram(name.into(), Some(Unit::Seconds), help.into())
                }
            }
        }
        let meta = Metadata::new(module_path!(), metrics::Level::INFO, None);
        let counter = |name: &'static str| recorder.register_counter(&Key::from_name(name), &meta);
        let gauge = |name: &'static str| recorder.register_gauge(&Key::from_name(name), &meta);
        let processed = VERDICTS
            .iter()
            .map(|v| {
                let key = Key::from_parts(
                    "folio_messages_processed_total",
                    vec![Label::new("verdict", *v)],
                );
                (*v, recorder.register_counter(&key, &meta))
            })
            .collect();
        Arc::new(Telemetry {
            handle: Some(recorder.handle()),
            processed,
            quarantined: counter("folio_messages_quarantined_total"),
            tickets_opened: counter("folio_tickets_opened_total"),
            mail_sent: counter("folio_mail_sent_total"),
            mail_failed: counter("folio_mail_failed_total"),
            mail_retried: counter("folio_mail_retries_total"),
            imap_reconnects: counter("folio_imap_reconnects_total"),
            scheduled_items_done: counter("folio_scheduled_items_done_total"),
            stall_alarms: counter("folio_stall_alarms_total"),
            processing_seconds: recorder
                .register_histogram(&Key::from_name("folio_processing_seconds"), &meta),
            outbox_depth: gauge("folio_outbox_depth"),
            outbox_oldest_age_seconds: gauge("folio_outbox_oldest_age_seconds"),
            mailbox_connected: gauge("folio_mailbox_connected"),
            mailbox_waiting: gauge("folio_mailbox_waiting_messages"),
            database_up: gauge("folio_database_up"),
            stalled: gauge("folio_stalled"),
            oauth2_ok: recorder.register_counter(
                &Key::from_parts(
                    "folio_oauth2_refreshes_total",
                    vec![Label::new("result", "ok")],
                ),
                &meta,
            ),
            oauth2_errors: recorder.register_counter(
                &Key::from_parts(
                    "folio_oauth2_refreshes_total",
                    vec![Label::new("result", "error")],
                ),
                &meta,
            ),
            oauth2_failing: gauge("folio_oauth2_failing"),
            oauth2_token_expiry_seconds: gauge("folio_oauth2_token_expiry_seconds"),
        })
    }

    /// Counts a processed message under its verdict (`human`, or an automatic kind).
    pub fn processed(&self, verdict: &str) {
        if let Some((_, c)) = self.processed.iter().find(|(v, _)| *v == verdict) {
            c.increment(1);
        }
    }

    /// The Prometheus text format; empty when off.
    pub fn render(&self) -> String {
        self.handle.as_ref().map(|h| h.render()).unwrap_or_default()
    }

    /// Folds the recorded processing times into the histogram, so they do not pile up in
    /// memory between scrapes (the HTTP task calls it on a timer).
    pub fn upkeep(&self) {
        if let Some(h) = &self.handle {
            h.run_upkeep();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_rendered_from_the_start_with_its_help() {
        let t = Telemetry::on();
        let text = t.render();
        for (name, _, _) in HELP {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        }
        assert!(text.contains("folio_tickets_opened_total 0\n"), "{text}");
        assert!(
            text.contains("folio_messages_processed_total{verdict=\"bounce\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn counts_land_under_their_names_and_the_histogram_has_buckets() {
        let t = Telemetry::on();
        t.processed("human");
        t.processed("human");
        t.processed("no such verdict");
        t.tickets_opened.increment(1);
        t.outbox_depth.set(3.0);
        t.processing_seconds.record(0.02);
        t.upkeep();
        let text = t.render();
        assert!(
            text.contains("folio_messages_processed_total{verdict=\"human\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("folio_tickets_opened_total 1\n"), "{text}");
        assert!(text.contains("folio_outbox_depth 3\n"), "{text}");
        assert!(
            text.contains("folio_processing_seconds_bucket{le=\"0.025\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("folio_processing_seconds_count 1\n"),
            "{text}"
        );
        // Two daemons in one process count apart.
        assert!(Telemetry::on()
            .render()
            .contains("folio_tickets_opened_total 0\n"));
    }

    #[test]
    fn off_records_and_renders_nothing() {
        let t = Telemetry::off();
        t.processed("human");
        t.mail_sent.increment(1);
        assert_eq!(t.render(), "");
    }
}
