//! The daemon: wires the store, pipeline, mailbox worker and sender together and runs them until
//! shutdown.

pub mod alarm;
pub mod alerts;
pub mod health;
pub mod http;
pub mod instance;
pub mod mailbox;
pub mod pipeline;
pub mod reload;
pub mod report;
pub mod scheduler;
pub mod service;
pub mod status;
pub mod telemetry;
pub mod templates;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{Config, MailAuth};
use crate::daemon::alarm::StallAlarm;
use crate::daemon::health::{Health, Role};
use crate::daemon::instance::Instance;
use crate::daemon::mailbox::Mailbox;
use crate::daemon::pipeline::{Pipeline, SetupError};
use crate::daemon::scheduler::{Scheduler, SchedulerError};
use crate::daemon::telemetry::Telemetry;
use crate::heartbeat::Heartbeats;
use crate::outbound::render::Templates;
use crate::outbound::sender::{SendCounters, Sender};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Smtp(#[from] crate::outbound::smtp::SetupError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Http(#[from] crate::daemon::http::BindError),
    #[error(transparent)]
    OAuth(#[from] crate::oauth::endpoint::EndpointError),
}

/// The pieces shared by `run` and `ingest`.
pub struct Parts {
    pub store: Store,
    pub pipeline: Arc<Pipeline>,
    pub sender: Arc<Sender>,
    pub scheduler: Arc<Scheduler>,
    /// What `/healthz` reads; the loops update it.
    pub health: Arc<Health>,
    /// What `/metrics` renders: recording only when `[http] listen` is set.
    pub telemetry: Arc<Telemetry>,
    /// `[oauth2]`'s token source, when a login uses it: its
    /// [`status`](crate::oauth::TokenSource::status) is what health checks and metrics read.
    pub oauth: Option<Arc<crate::oauth::TokenSource>>,
}

/// Builds the pipeline and sender from the configuration, on the given clock and store.
pub async fn assemble(
    config: &Config,
    clock: Arc<dyn Clock>,
    store: Store,
) -> Result<Parts, DaemonError> {
    let tokens = crate::desk::tokens::Tokens::new(store.site_secret().await?);
    let telemetry = match config.http.listen {
        Some(_) => Telemetry::on(),
        None => Telemetry::off(),
    };
    let pipeline = Arc::new(
        Pipeline::new(config, store.clone(), clock.clone(), tokens.clone())?
            .with_telemetry(telemetry.clone()),
    );
    let templates = Arc::new(Templates::new(&config.templates.dir));
    let samples = crate::desk::notice_samples::all_contexts(&pipeline.policy());
    for e in templates.check_strictly(&config.templates.language, &samples) {
        // Not fatal: only mail using that template stays queued until it is fixed.
        tracing::error!(problem = %e, "template problem: mail using it stays queued until it is fixed");
    }
    let sender = Arc::new(
        Sender::new(
            config,
            store.clone(),
            templates,
            clock.clone(),
            pipeline.ingest_busy(),
            tokens,
        )?
        .with_counters(SendCounters {
            sent: telemetry.mail_sent.clone(),
            failed: telemetry.mail_failed.clone(),
            retried: telemetry.mail_retried.clone(),
        }),
    );
    let oauth = match &config.oauth2 {
        Some(o) => Some(Arc::new(crate::oauth::TokenSource::new(o, clock.clone())?)),
        None => None,
    };
    if let (Some(source), MailAuth::OAuth2) = (&oauth, config.smtp.auth) {
        sender.set_token_source(source.clone());
    }
    let scheduler = Arc::new(
        Scheduler::new(
            config,
            store.clone(),
            pipeline.policy(),
            clock,
            pipeline.outbox_ready(),
        )
        .with_telemetry(telemetry.clone()),
    );
    Ok(Parts {
        store,
        pipeline,
        sender,
        scheduler,
        health: Health::new(telemetry.clone()),
        telemetry,
        oauth,
    })
}

/// Runs the mailbox worker, the sender and the scheduler (and, when configured, the HTTP
/// listener and the stall alarm) on `clock` and `store` until `shutdown`, their heartbeats
/// watched in `heartbeats`; closes the store at the end. An `[http] listen` address that cannot
/// be bound stops it before it starts. Several instances may run on one database: the one
/// holding the mailbox lease reads mail ([`instance`]); every one sends and sweeps.
pub async fn run(
    config: &Config,
    clock: Arc<dyn Clock>,
    store: Store,
    import_existing: bool,
    shutdown: Shutdown,
    heartbeats: &Heartbeats,
) -> Result<(), DaemonError> {
    let me = instance::identity(clock.now(), config.instance_name.clone());
    let instance = Instance::register(store.clone(), clock.clone(), me).await?;
    let store = store.claiming_as(instance.id());
    let parts = assemble(config, clock.clone(), store).await?;
    let listener = match config.http.listen {
        Some(addr) => Some(crate::daemon::http::bind(addr, &config.http.listen_origin).await?),
        None => None,
    };
    tracing::info!(
        instance = %instance.name(),
        database = %Store::describe(&config.database.url),
        imap = %format!("{}:{}", config.imap.host, config.imap.port),
        smtp = %format!("{}:{}", config.smtp.host, config.smtp.port),
        "folio started"
    );
    let instance = instance.telling_catch_ups(parts.pipeline.ingest_busy());
    let role = instance.role();
    let instance_task = tokio::spawn(instance.run(parts.health.clone(), shutdown.clone()));
    let http_task = listener.map(|l| {
        crate::daemon::http::serve(
            l,
            parts.health.clone(),
            parts.telemetry.clone(),
            parts.store.clone(),
            clock.clone(),
            parts.oauth.clone(),
            shutdown.clone(),
        )
    });
    let alarm_task = config.alarms.stall_after.map(|stall_after| {
        let alarm = StallAlarm {
            store: parts.store.clone(),
            policy: parts.pipeline.policy(),
            clock: clock.clone(),
            health: parts.health.clone(),
            telemetry: parts.telemetry.clone(),
            outbox_ready: parts.pipeline.outbox_ready(),
            folder: config.imap.folder.clone(),
            stall_after,
            bounce_suppression: config.limits.bounce_suppression,
            max_attachment_bytes: config.limits.max_attachment_bytes,
        };
        tokio::spawn(alarm.run(shutdown.clone()))
    });
    let mut mailbox = Mailbox::new(
        config.imap.clone(),
        parts.pipeline.clone(),
        parts.store.clone(),
        clock,
        import_existing,
    )
    .observed(parts.health.clone(), parts.telemetry.clone())
    .during_backlog(config.smtp.during_backlog);
    if let (Some(source), MailAuth::OAuth2) = (&parts.oauth, config.imap.auth) {
        mailbox = mailbox.with_token_source(source.clone());
    }
    heartbeats.watch(&[
        mailbox.heartbeat(),
        parts.sender.heartbeat(),
        parts.scheduler.heartbeat(),
    ]);
    let scheduler_task = parts.scheduler.clone().start(shutdown.clone()).await?;
    let sender_task = tokio::spawn(
        parts
            .sender
            .clone()
            .run(parts.pipeline.outbox_ready(), shutdown.clone()),
    );
    let oauth_tasks = parts.oauth.clone().map(|source| {
        let alerts =
            alerts::mail_oauth_failures(&source, parts.scheduler.clone(), shutdown.clone());
        (tokio::spawn(source.run(shutdown.clone())), alerts)
    });
    read_mail_while_holding(&mailbox, role, shutdown).await;
    if let Some((refresher, alerts)) = oauth_tasks {
        let _ = refresher.await;
        let _ = alerts.await;
    }
    let _ = sender_task.await;
    let _ = scheduler_task.await;
    let _ = instance_task.await;
    for task in [http_task, alarm_task].into_iter().flatten() {
        let _ = task.await;
    }
    parts.store.close().await;
    tracing::info!("folio stopped");
    Ok(())
}

/// Runs the mailbox worker whenever this instance holds the mailbox lease, and stands by
/// otherwise, until `shutdown`.
async fn read_mail_while_holding(
    mailbox: &Mailbox,
    mut role: tokio::sync::watch::Receiver<Role>,
    mut shutdown: Shutdown,
) {
    loop {
        // Standing by is started and waits on nothing that can hang: the service is ready and
        // the watchdog has no deadline for the worker until it holds the mailbox. (The holder
        // is ready once it has logged in.)
        if *role.borrow() != Role::Active {
            mailbox.heartbeat().ready();
            mailbox.heartbeat().idle();
        }
        tokio::select! {
            held = role.wait_for(|r| *r == Role::Active) => if held.is_err() { return },
            _ = shutdown.wait() => return,
        }
        // The worker stops when shutdown comes or the lease is lost, whichever is first.
        let (stop, stopped) = crate::shutdown::channel();
        let mut lost = role.clone();
        let mut outer = shutdown.clone();
        let watch = async move {
            tokio::select! {
                _ = lost.wait_for(|r| *r != Role::Active) => {}
                _ = outer.wait() => {}
            }
            stop.trigger();
        };
        tokio::join!(mailbox.run(stopped), watch);
        if shutdown.is_triggered() {
            return;
        }
        tracing::warn!("the mailbox lease was lost: reading no mail until it is won again");
    }
}
