//! `folio run` as a service: the signals (SIGTERM and SIGINT stop, SIGHUP reloads), and what
//! systemd is told through `sd_notify` (`Type=notify` in `systemd/folio.service`):
//!
//! - `READY=1` once the database is open and migrated and every loop has started: the mailbox
//!   worker has logged in and selected its folder (so a wrong password fails the start, where
//!   `systemctl start` shows it, instead of a "running" daemon that never reads mail);
//! - `WATCHDOG=1` every half `WatchdogSec=`, only while no loop is past the deadline it set
//!   itself (see [`crate::heartbeat`]): a hung IMAP session or database stops the pings, and
//!   systemd kills and restarts folio;
//! - `RELOADING=1` on SIGHUP, then `READY=1` when the workers run on the new configuration;
//! - `STOPPING=1`, and `STATUS=` lines for `systemctl status`.
//!
//! Outside systemd (`NOTIFY_SOCKET` and `WATCHDOG_USEC` unset) the notifications do nothing.
//!
//! A reload reads and checks the configuration and every file it names first
//! ([`crate::daemon::reload`]); on any problem the daemon keeps running as it was and logs each
//! problem. Otherwise the workers stop as on SIGTERM (finishing the current batch; every step
//! is crash-safe anyway) and start again on the new configuration, in the same process.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::clock::Clock;
use crate::config::{Config, Env};
use crate::daemon::reload;
use crate::daemon::DaemonError;
use crate::heartbeat::Heartbeats;
use crate::store::{Store, StoreError};

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
}

/// What a signal asks of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Stop,
    Reload,
}

/// SIGTERM, SIGINT and SIGHUP.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop,
            _ = self.int.recv() => Request::Stop,
            _ = self.hup.recv() => Request::Reload,
        }
    }
}

/// Tells systemd `states`; nothing outside systemd. A failure is logged, never fatal: the
/// daemon's work does not depend on being watched.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Runs the daemon on `config` (read from `config_path`, secrets from `env`) until SIGTERM or
/// SIGINT, reloading it on SIGHUP.
pub async fn serve(
    config_path: &Path,
    config: Config,
    clock: Arc<dyn Clock>,
    import_existing: bool,
    env: &dyn Env,
) -> Result<(), ServiceError> {
    let mut signals = Signals::new().map_err(ServiceError::Signals)?;
    let heartbeats = Heartbeats::new();
    let _watchdog = sd_notify::watchdog_enabled().map(|period| {
        tracing::info!(period = ?period, "systemd watchdog enabled");
        AbortOnDrop(tokio::spawn(watchdog(heartbeats.clone(), period)))
    });
    let mut config = config;
    // After a reload, until the workers have started on the new configuration: the one to go
    // back to if they cannot (its database will not open, its SMTP set-up fails).
    let mut previous: Option<Config> = None;
    loop {
        notify(&[NotifyState::Status("opening the database")]);
        let store = match Store::open(&config.database.url).await {
            Ok(store) => store,
            Err(e) => match previous.take() {
                Some(old) => {
                    tracing::error!(
                        error = %e, file = %config_path.display(), key = "database.url",
                        "reload: cannot open the new database; going on with the previous configuration"
                    );
                    config = old;
                    continue;
                }
                None => return Err(e.into()),
            },
        };
        notify(&[NotifyState::Status(&format!(
            "logging in to {}:{}",
            config.imap.host, config.imap.port
        ))]);
        let (trigger, shutdown) = crate::shutdown::channel();
        // In a block of its own: the running workers borrow `config` until they end. It gives
        // the configuration to run on next, and the one to fall back to.
        let (next, fallback) = {
            let run = crate::daemon::run(
                &config,
                clock.clone(),
                store,
                import_existing,
                shutdown,
                &heartbeats,
            );
            tokio::pin!(run);
            let mut announced = false;
            loop {
                tokio::select! {
                    ended = &mut run => {
                        // The workers end only when told to; an error is one of start-up.
                        match (ended, previous.take()) {
                            (Ok(()), _) => return Ok(()),
                            (Err(e), Some(old)) => {
                                tracing::error!(
                                    error = %e, file = %config_path.display(),
                                    "reload: the workers cannot start on the new configuration; going on with the previous one"
                                );
                                break (old, None);
                            }
                            (Err(e), None) => return Err(e.into()),
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_millis(100)), if !announced => {
                        if heartbeats.all_ready() {
                            announced = true;
                            previous = None;
                            notify(&[
                                NotifyState::Ready,
                                NotifyState::Status(&format!(
                                    "watching {} on {}:{}",
                                    config.imap.folder, config.imap.host, config.imap.port
                                )),
                            ]);
                        }
                    }
                    request = signals.next() => match request {
                        Request::Stop => {
                            tracing::info!("stop requested; finishing the current batch");
                            notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
                            trigger.trigger();
                            (&mut run).await?;
                            return Ok(());
                        }
                        Request::Reload => match reload::load_checked(config_path, env) {
                            Err(problems) => {
                                for p in &problems {
                                    tracing::error!(problem = %p, "reload refused; running on the previous configuration");
                                }
                                notify(&[NotifyState::Status(&format!(
                                    "reload refused ({} problem(s) in {}); running on the previous configuration",
                                    problems.len(),
                                    config_path.display()
                                ))]);
                            }
                            Ok(checked) => {
                                for key in reload::needs_restart(&config, &checked.config) {
                                    tracing::warn!(file = %config_path.display(), key, "reload: this setting takes effect at the next restart");
                                }
                                tracing::info!(file = %config_path.display(), "reloading: finishing the current batch, then restarting the workers on the new configuration");
                                notify(&[NotifyState::Reloading, NotifyState::Status("reloading")]);
                                trigger.trigger();
                                (&mut run).await?;
                                break (checked.config, Some(config.clone()));
                            }
                        },
                    },
                }
            }
        };
        config = next;
        previous = fallback;
    }
}

/// Aborts the task when dropped: the pinger must not outlive [`serve`].
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Pings the watchdog every half `period` while no loop is overdue.
async fn watchdog(heartbeats: Heartbeats, period: Duration) {
    let mut told = false;
    loop {
        match verdict(&heartbeats) {
            Verdict::Ping => {
                notify(&[NotifyState::Watchdog]);
                told = false;
            }
            Verdict::Withhold(overdue) if !told => {
                told = true;
                for (name, by) in &overdue {
                    tracing::error!(
                        worker = name, overdue_by = ?by,
                        "worker stuck past its deadline; watchdog pings withheld so systemd restarts folio"
                    );
                }
                let names: Vec<&str> = overdue.iter().map(|(n, _)| *n).collect();
                notify(&[NotifyState::Status(&format!("stuck: {}", names.join(", ")))]);
            }
            Verdict::Withhold(_) => {}
        }
        tokio::time::sleep(period / 2).await;
    }
}

/// Whether the watchdog is pinged now.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ping,
    /// Not pinged: these loops are past their deadline, by this much.
    Withhold(Vec<(&'static str, Duration)>),
}

fn verdict(heartbeats: &Heartbeats) -> Verdict {
    let overdue = heartbeats.overdue();
    if overdue.is_empty() {
        Verdict::Ping
    } else {
        Verdict::Withhold(overdue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::Heartbeat;

    #[test]
    fn a_stuck_worker_stops_the_pings_and_its_return_resumes_them() {
        let heartbeats = Heartbeats::new();
        let imap = Heartbeat::new("mailbox worker");
        let sender = Heartbeat::new("outbox sender");
        heartbeats.watch(&[&imap, &sender]);
        // The IMAP session promises to be back soon and is not.
        imap.within(Duration::from_millis(200));
        sender.idle();
        assert_eq!(verdict(&heartbeats), Verdict::Ping);
        std::thread::sleep(Duration::from_millis(300));
        match verdict(&heartbeats) {
            Verdict::Withhold(overdue) => assert_eq!(overdue[0].0, "mailbox worker"),
            Verdict::Ping => panic!("a stuck worker must stop the pings"),
        }
        imap.within(Duration::from_secs(60));
        assert_eq!(verdict(&heartbeats), Verdict::Ping);
    }
}
