//! The `folio` binary: command-line parsing, logging set-up and the subcommands. The only place
//! that uses `anyhow`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use sha2::Digest;

use folio::config::{Config, LogFormat, ProcessEnv};
use folio::pipeline::{self, Disposition, RawMessage};
use folio::render::Templates;
use folio::store::Store;

/// EX_TEMPFAIL from sysexits.h: the MTA keeps the message and retries.
const EX_TEMPFAIL: u8 = 75;

#[derive(Parser)]
#[command(
    name = "folio",
    version,
    about = "Email-driven help desk: mailbox → ticket → confirmation"
)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "FOLIO_CONFIG",
        default_value = "config/folio.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: watch the mailbox, open tickets, send confirmations.
    Run {
        /// Also process mail that was already in the folder before folio's first start.
        #[arg(long)]
        import_existing: bool,
    },
    /// Process one message from standard input (for an MTA pipe). Exit code 75 on a temporary
    /// failure so the MTA retries.
    Ingest {
        /// Only queue the confirmation; leave sending to the daemon.
        #[arg(long)]
        queue_only: bool,
    },
    /// Show what folio extracts from a message and what it would decide, without a database.
    Inspect {
        /// The .eml file.
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List or show tickets.
    Tickets {
        #[command(subcommand)]
        command: TicketsCommand,
    },
    /// Check the configuration, templates and directory file; print every problem.
    CheckConfig,
    /// Staff members (technicians and phone agents).
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Each technician's and phone agent's personal address: a phone note or forward sent to
    /// it is proven theirs (give it to them for their address book).
    Addresses {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TicketsCommand {
    /// The newest tickets first.
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One ticket with its messages and outgoing mail.
    Show {
        folio: String,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread: folio's work is short CPU bursts between I/O waits (parsing a message takes
    // ~16 µs), and a multi-thread runtime spent more time waking and parking its workers than
    // the work itself (measured: docs/benchmarks.md). SQLite runs on sqlx's own thread.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("folio: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("folio: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: &Path) -> Result<Config> {
    Ok(Config::load(path, &ProcessEnv)?)
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run { import_existing } => {
            let config = load_config(&cli.config)?;
            init_logging(config.log.format, &config.log.level);
            let (trigger, shutdown) = folio::shutdown::channel();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("stop requested; finishing the current batch");
                trigger.trigger();
            });
            folio::daemon::run(&config, import_existing, shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest { queue_only } => ingest(&cli.config, queue_only).await,
        Command::Staff {
            command: StaffCommand::Addresses { json },
        } => staff_addresses(&cli.config, json).await,
        Command::Inspect { file, json } => inspect(&cli.config, &file, json),
        Command::Tickets { command } => {
            let config = load_config(&cli.config)?;
            let store = Store::open(&config.database.url).await?;
            match command {
                TicketsCommand::List { json, limit } => {
                    let tickets = store.tickets(limit).await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&tickets)?);
                    } else {
                        for t in tickets {
                            println!(
                                "{}  {:<8} {:<7} {:<24} {:<24} {}  {}",
                                t.folio,
                                t.status,
                                t.priority,
                                t.assignee.as_deref().unwrap_or("-"),
                                t.requester_email,
                                t.created_at,
                                t.subject
                            );
                        }
                    }
                }
                TicketsCommand::Show { folio, json } => {
                    let Some(t) = store.ticket(&folio).await? else {
                        anyhow::bail!("no ticket with folio {folio}");
                    };
                    if json {
                        println!("{}", serde_json::to_string_pretty(&t)?);
                    } else {
                        let s = &t.ticket;
                        println!("Folio:        {}", s.folio);
                        println!("Estado:       {}", s.status);
                        println!("Asunto:       {}", s.subject);
                        println!(
                            "Solicitante:  {} <{}>",
                            s.requester_name.as_deref().unwrap_or("-"),
                            s.requester_email
                        );
                        println!(
                            "Departamento: {}",
                            s.requester_department.as_deref().unwrap_or("-")
                        );
                        println!(
                            "Teléfono:     {}",
                            s.requester_phone.as_deref().unwrap_or("-")
                        );
                        println!("Creado:       {}", s.created_at);
                        println!(
                            "Servicio:     {}  ({}, prioridad {})",
                            s.service.as_deref().unwrap_or("-"),
                            s.ticket_type.as_deref().unwrap_or("-"),
                            s.priority
                        );
                        println!("Asignado a:   {}", s.assignee.as_deref().unwrap_or("-"));
                        if let Some(by) = &s.opened_by {
                            println!("Registró:     {by} (canal {})", s.channel);
                        }
                        for p in &t.participants {
                            if p["role"] == "cc" {
                                println!("Participante: {}", p["email"].as_str().unwrap_or("-"));
                            }
                        }
                        if let Some(r) = &t.routing {
                            println!("Enrutamiento:");
                            for line in r.lines() {
                                println!("  {line}");
                            }
                        }
                        for m in &t.messages {
                            println!(
                                "\n--- {} from {} ({}{}) ---\n{}",
                                m.stored_at,
                                m.from_email.as_deref().unwrap_or("-"),
                                m.decision_reason,
                                if m.internal { ", interno" } else { "" },
                                m.new_content.as_deref().unwrap_or(&m.body_text)
                            );
                        }
                        for e in &t.events {
                            println!(
                                "\n*** {} {} {}: {}",
                                e.created_at,
                                e.kind,
                                e.actor.as_deref().unwrap_or("-"),
                                e.detail
                            );
                        }
                        for o in &t.outgoing {
                            println!(
                                "\n>>> {} to {}: {} (attempts {}){}",
                                o.template,
                                o.to,
                                o.status,
                                o.attempts,
                                o.last_error
                                    .as_deref()
                                    .map(|e| format!(" last error: {e}"))
                                    .unwrap_or_default()
                            );
                        }
                    }
                }
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig => check_config(&cli.config),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn ingest(config_path: &Path, queue_only: bool) -> Result<ExitCode> {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("folio ingest: {e:#}");
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    init_logging(config.log.format, &config.log.level);
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("folio ingest: cannot read standard input: {e}");
        return Ok(ExitCode::from(EX_TEMPFAIL));
    }
    let parts = match folio::daemon::assemble(&config).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("folio ingest: {e}");
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    let raw = RawMessage {
        source: format!("stdin:{}", hex::encode(&sha2::Sha256::digest(&bytes)[..12])),
        bytes,
        seen_at: chrono::Utc::now(),
    };
    let outcome = match parts.pipeline.process(std::slice::from_ref(&raw)).await {
        Ok(mut o) => o.remove(0),
        Err(e) => {
            eprintln!("folio ingest: {e}");
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    match &outcome.disposition {
        Disposition::Processed => println!(
            "{} ({})",
            outcome.folio.as_deref().unwrap_or("no ticket"),
            outcome.decision
        ),
        Disposition::Quarantined(reason) => println!("quarantined: {reason}"),
    }
    if !queue_only {
        // Long enough for every send to finish or time out by itself: cutting a send short
        // could leave a mail the server accepted unrecorded (it would go out again).
        let timeout = parts.sender.lease;
        match tokio::time::timeout(timeout, parts.sender.send_due(None)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not send now; the mail stays queued"),
            Err(_) => tracing::warn!("sending timed out; the mail stays queued"),
        }
    }
    parts.store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn inspect(config_path: &Path, file: &Path, json: bool) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    // inspect must work on a machine without secrets: fall back to defaults when the
    // configuration does not validate, and say so.
    // No database either: tokens cannot be checked (a random secret verifies nothing).
    let tokens = folio::tokens::Tokens::new(uuid::Uuid::now_v7().as_bytes().to_vec());
    let (policy, directory, max_attachment) = match load_config(config_path) {
        Ok(config) => (
            pipeline::policy_of(&config, tokens)?,
            pipeline::directory_of(&config)?,
            config.limits.max_attachment_bytes,
        ),
        Err(e) => {
            eprintln!("folio inspect: using default settings ({e:#})");
            (
                folio::decide::Policy::with_defaults("", tokens),
                Default::default(),
                u64::MAX,
            )
        }
    };
    let analysis = pipeline::analyze(&bytes, &directory, &policy, max_attachment)
        .map_err(anyhow::Error::msg)
        .with_context(|| file.display().to_string())?;
    let value = pipeline::inspect_json(&analysis, &policy);
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        let m = &analysis.mail;
        println!(
            "From:       {} <{}>",
            m.from_name.as_deref().unwrap_or(""),
            m.from_email.as_deref().unwrap_or("-")
        );
        println!("Subject:    {}", m.subject);
        println!("Message-ID: {}", m.message_id.as_deref().unwrap_or("-"));
        println!("Automatic:  {}", analysis.verdict.reason);
        println!(
            "Folio ref:  {}",
            analysis.folio_reference.as_deref().unwrap_or("-")
        );
        println!("Decision:   {}", value["decision"]);
        println!("Attachments: {}", m.attachments.len());
        println!("\n{}", m.body_text);
    }
    Ok(ExitCode::SUCCESS)
}

fn check_config(path: &Path) -> Result<ExitCode> {
    let config = match Config::load(path, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut problems = Vec::new();
    let templates = Templates::new(&config.templates.dir);
    let mut languages = vec![config.templates.language.clone()];
    for other in ["es", "en"] {
        if other != config.templates.language && config.templates.dir.join(other).is_dir() {
            languages.push(other.to_string());
        }
    }
    for lang in &languages {
        if let Err(e) = templates.check(lang) {
            problems.push(e.to_string());
        }
    }
    if let Err(e) = pipeline::directory_of(&config) {
        problems.push(e.to_string());
    }
    if let Some(f) = &config.catalog.file {
        if let Err(e) = folio::catalog::Catalog::load(f) {
            problems.push(e.to_string());
        }
    }
    if problems.is_empty() {
        println!(
            "{}: OK (templates: {}; catalog: {}; directory: {})",
            path.display(),
            languages.join(", "),
            config
                .catalog
                .file
                .as_ref()
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| "none".into()),
            config
                .directory
                .file
                .as_ref()
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| "none".into())
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for p in problems {
            eprintln!("{p}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// `folio staff addresses`: the personal tokenised address of every staff member (it needs the
/// site secret, kept in the database).
async fn staff_addresses(config_path: &Path, json: bool) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    // Opening a missing database would create one with a new secret, and print addresses
    // that prove nothing to the real one.
    let file = config
        .database
        .url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let file = file.split('?').next().unwrap_or(file);
    if !Path::new(file).exists() {
        anyhow::bail!(
            "{}: database.url: no database at {file} (the site secret is created there at folio's first start)",
            config_path.display()
        );
    }
    let store = Store::open(&config.database.url).await?;
    let tokens = folio::tokens::Tokens::new(store.site_secret().await?);
    store.close().await;
    let policy = pipeline::policy_of(&config, tokens)?;
    let catalog = &policy.catalog;
    let staff = catalog
        .technicians
        .iter()
        .map(|t| ("technician", t.name.as_str(), t.email.as_str()))
        .chain(
            catalog
                .agents
                .iter()
                .map(|a| ("agent", a.name.as_str(), a.email.as_str())),
        );
    let rows: Vec<serde_json::Value> = staff
        .map(|(role, name, email)| {
            serde_json::json!({
                "role": role,
                "name": name,
                "email": email,
                "address": policy.tokens.personal_address(&policy.helpdesk_address, email),
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &rows {
            println!(
                "{:<10} {:<32} {}",
                r["role"].as_str().unwrap_or_default(),
                r["email"].as_str().unwrap_or_default(),
                r["address"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
