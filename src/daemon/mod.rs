//! The daemon: wires the store, pipeline, mailbox worker and sender together and runs them until
//! shutdown.

pub mod mailbox;
pub mod pipeline;
pub mod reload;
pub mod report;
pub mod scheduler;
pub mod service;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::mailbox::Mailbox;
use crate::daemon::pipeline::{Pipeline, SetupError};
use crate::daemon::scheduler::{Scheduler, SchedulerError};
use crate::heartbeat::Heartbeats;
use crate::outbound::render::Templates;
use crate::outbound::sender::Sender;
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
}

/// The pieces shared by `run` and `ingest`.
pub struct Parts {
    pub store: Store,
    pub pipeline: Arc<Pipeline>,
    pub sender: Arc<Sender>,
    pub scheduler: Arc<Scheduler>,
}

/// Builds the pipeline and sender from the configuration, on the given clock and store.
pub async fn assemble(
    config: &Config,
    clock: Arc<dyn Clock>,
    store: Store,
) -> Result<Parts, DaemonError> {
    let tokens = crate::desk::tokens::Tokens::new(store.site_secret().await?);
    let pipeline = Arc::new(Pipeline::new(
        config,
        store.clone(),
        clock.clone(),
        tokens.clone(),
    )?);
    let templates = Arc::new(Templates::new(&config.templates.dir));
    let samples = crate::desk::notice_samples::all_contexts(&pipeline.policy());
    for e in templates.check_strictly(&config.templates.language, &samples) {
        // Not fatal: only mail using that template stays queued until it is fixed.
        tracing::error!(problem = %e, "template problem: mail using it stays queued until it is fixed");
    }
    let sender = Arc::new(Sender::new(
        config,
        store.clone(),
        templates,
        clock.clone(),
        pipeline.ingest_busy(),
        tokens,
    )?);
    let scheduler = Arc::new(Scheduler::new(
        config,
        store.clone(),
        pipeline.policy(),
        clock,
        pipeline.outbox_ready(),
    ));
    Ok(Parts {
        store,
        pipeline,
        sender,
        scheduler,
    })
}

/// Runs the mailbox worker, the sender and the scheduler on `clock` and `store` until
/// `shutdown`, their heartbeats watched in `heartbeats`; closes the store at the end.
pub async fn run(
    config: &Config,
    clock: Arc<dyn Clock>,
    store: Store,
    import_existing: bool,
    shutdown: Shutdown,
    heartbeats: &Heartbeats,
) -> Result<(), DaemonError> {
    let parts = assemble(config, clock.clone(), store).await?;
    tracing::info!(
        database = %Store::describe(&config.database.url),
        imap = %format!("{}:{}", config.imap.host, config.imap.port),
        smtp = %format!("{}:{}", config.smtp.host, config.smtp.port),
        "folio started"
    );
    let mailbox = Mailbox::new(
        config.imap.clone(),
        parts.pipeline.clone(),
        parts.store.clone(),
        clock,
        import_existing,
    );
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
    mailbox.run(shutdown).await;
    let _ = sender_task.await;
    let _ = scheduler_task.await;
    parts.store.close().await;
    tracing::info!("folio stopped");
    Ok(())
}
