//! `[schedule]` is checked by config/ with croner, the parser tokio-cron-scheduler uses, so that
//! a file `folio check-config` passes is one the daemon can schedule. This test holds the two to
//! the same answers, so an upgrade of either that makes them disagree fails here rather than at
//! the daemon's start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use folio::config::{Config, Env};
use tokio_cron_scheduler::Job;

struct NoEnv;
impl Env for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

fn config_with_sweep(expression: &str) -> Result<Config, folio::config::ConfigError> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let text = format!(
        "[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"helpdesk@example.test\"\npassword = \"x\"\n\
         [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n\
         [templates]\ndir = \"{dir}/mail-templates\"\n\
         [schedule]\nsweep = {expression:?}\n"
    );
    Config::parse(Path::new("f.toml"), &text, &NoEnv)
}

#[test]
fn the_config_accepts_exactly_the_schedules_the_scheduler_accepts() {
    let expressions = [
        "0 * * * * *",
        "0 0 8 * * Mon-Fri",
        "0 0 9 * * Mon",
        "*/30 * * * * *",
        "0 0 8 * * 1-5",
        "0 0 8 1 * *",
        "0 0 8 * * Mon-Fri 2027",
        "@hourly",
        "0 0 8 L * *",
        // Refused by both.
        "* * * * *",
        "0 8 * * Mon-Fri",
        "0 0 8 * * Lun-Vie",
        "0 61 * * * *",
        "0 0 24 * * *",
        "every minute",
        "",
        "0 0 8 * * * * *",
    ];
    let mut accepted = 0;
    for expression in expressions {
        let config = config_with_sweep(expression);
        let scheduler = Job::new(expression, |_, _| {});
        assert_eq!(
            config.is_ok(),
            scheduler.is_ok(),
            "{expression:?}: the config says {:?}, the scheduler {:?}",
            config.as_ref().map(|_| "ok").map_err(ToString::to_string),
            scheduler
                .as_ref()
                .map(|_| "ok")
                .map_err(ToString::to_string),
        );
        accepted += usize::from(config.is_ok());
    }
    assert!(
        accepted >= 8,
        "only {accepted} accepted: is the test right?"
    );
}
