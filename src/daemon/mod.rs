//! The daemon: wires the store, pipeline, mailbox worker and sender together and runs them until
//! shutdown.

pub mod alerts;
pub mod mailbox;
pub mod pipeline;
pub mod report;
pub mod scheduler;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{Config, MailAuth};
use crate::daemon::mailbox::Mailbox;
use crate::daemon::pipeline::{Pipeline, SetupError};
use crate::daemon::scheduler::{Scheduler, SchedulerError};
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
    #[error(transparent)]
    OAuth(#[from] crate::oauth::endpoint::EndpointError),
}

/// The pieces shared by `run` and `ingest`.
pub struct Parts {
    pub store: Store,
    pub pipeline: Arc<Pipeline>,
    pub sender: Arc<Sender>,
    pub scheduler: Arc<Scheduler>,
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
    let oauth = match &config.oauth2 {
        Some(o) => Some(Arc::new(crate::oauth::TokenSource::new(o, clock.clone())?)),
        None => None,
    };
    if let (Some(source), MailAuth::OAuth2) = (&oauth, config.smtp.auth) {
        sender.set_token_source(source.clone());
    }
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
        oauth,
    })
}

/// Runs the mailbox worker, the sender and the scheduler on `clock` and `store` until
/// `shutdown`; closes the store at the end.
pub async fn run(
    config: &Config,
    clock: Arc<dyn Clock>,
    store: Store,
    import_existing: bool,
    shutdown: Shutdown,
) -> Result<(), DaemonError> {
    let parts = assemble(config, clock.clone(), store).await?;
    tracing::info!(
        database = %Store::describe(&config.database.url),
        imap = %format!("{}:{}", config.imap.host, config.imap.port),
        smtp = %format!("{}:{}", config.smtp.host, config.smtp.port),
        "folio started"
    );
    let scheduler_task = parts.scheduler.clone().start(shutdown.clone()).await?;
    let sender_task = tokio::spawn(
        parts
            .sender
            .clone()
            .run(parts.pipeline.outbox_ready(), shutdown.clone()),
    );
    let mut mailbox = Mailbox::new(
        config.imap.clone(),
        parts.pipeline.clone(),
        parts.store.clone(),
        clock,
        import_existing,
    );
    if let (Some(source), MailAuth::OAuth2) = (&parts.oauth, config.imap.auth) {
        mailbox = mailbox.with_token_source(source.clone());
    }
    let oauth_tasks = parts.oauth.clone().map(|source| {
        let alerts =
            alerts::mail_oauth_failures(&source, parts.scheduler.clone(), shutdown.clone());
        (tokio::spawn(source.run(shutdown.clone())), alerts)
    });
    mailbox.run(shutdown).await;
    if let Some((refresher, alerts)) = oauth_tasks {
        let _ = refresher.await;
        let _ = alerts.await;
    }
    let _ = sender_task.await;
    let _ = scheduler_task.await;
    parts.store.close().await;
    tracing::info!("folio stopped");
    Ok(())
}
