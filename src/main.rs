//! The `folio` binary: command-line parsing, logging set-up and the subcommands (the templates
//! commands' work is in `folio::daemon::templates`). The only place that uses `anyhow`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use sha2::Digest;

use folio::clock::{Clock, SystemClock};
use folio::config::{Config, LogFormat, ProcessEnv};
use folio::daemon::pipeline::{self, Disposition, RawMessage};
use folio::desk::analysis;
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
        /// Serve /healthz and /metrics on this address (`127.0.0.1:9464`, or a port on
        /// loopback); overrides `http.listen` and FOLIO_HTTP_LISTEN, so instances sharing one
        /// configuration file can each have their own.
        #[arg(long, value_name = "ADDR")]
        http_listen: Option<String>,
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
    /// A period's figures: tickets opened by service, status and priority, time to first
    /// response and to resolution, SLA breaches, satisfaction and its comments
    /// (docs/reports.md).
    Report(folio::daemon::report::ReportArgs),
    /// One screen from the database (daemon running or not): each instance's heartbeat, the
    /// one holding the mailbox, the backlog, the outbox, the latest errors, the quarantine.
    Status {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write the whole site (tickets, mail, outbox, schedule, the site secret) as JSON lines,
    /// to move it to another database (docs/operations.md).
    Export {
        /// The file to write [default: standard output].
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read an export into database.url, which must be new and empty (docs/operations.md).
    Import {
        /// The export to read [default: standard input].
        #[arg(long, short)]
        input: Option<PathBuf>,
    },
    /// Check and preview the mail templates (docs/templates.md).
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Render every template against sample mails in strict mode; print each problem with its
    /// file, line and a hint. Exit status 1 on any problem.
    Check {
        /// A language folder, or `all` (default: every folder in templates.dir).
        #[arg(long)]
        lang: Option<String>,
    },
    /// Show what a requester would get: the Subject and text part of template NAME.
    Preview {
        /// The template (`confirmation`, `survey`, …).
        name: String,
        /// The language folder (default: the ticket's language, or templates.language).
        #[arg(long)]
        lang: Option<String>,
        /// Build the sample mail around this ticket of the database.
        #[arg(long)]
        ticket: Option<String>,
        /// Also write the HTML part to this file.
        #[arg(long)]
        html: Option<PathBuf>,
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
        Command::Run {
            import_existing,
            http_listen,
        } => {
            let mut config = load_config(&cli.config)?;
            config.http = config
                .http
                .with_flag(http_listen.as_deref())
                .map_err(anyhow::Error::msg)?;
            init_logging(config.log.format, &config.log.level);
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            // Signals, systemd's notifications and SIGHUP reloads: folio::daemon::service.
            folio::daemon::service::serve(&cli.config, config, clock, import_existing, &ProcessEnv)
                .await?;
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
                // Mail-derived text is escaped for the terminal (see `folio::terminal`).
                TicketsCommand::List { json, limit } => {
                    let tickets = store.tickets(limit).await?;
                    if json {
                        println!("{}", folio::terminal::json(&tickets)?);
                    } else {
                        print!("{}", folio::terminal::ticket_list(&tickets));
                    }
                }
                TicketsCommand::Show { folio, json } => {
                    let Some(t) = store.ticket(&folio).await? else {
                        anyhow::bail!("no ticket with folio {}", folio::terminal::line(&folio));
                    };
                    if json {
                        println!("{}", folio::terminal::json(&t)?);
                    } else {
                        print!("{}", folio::terminal::ticket_detail(&t));
                    }
                }
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig => check_config(&cli.config),
        Command::Templates { command } => templates(&cli.config, command).await,
        Command::Export { output } => {
            let config = load_config(&cli.config)?;
            let store = open_existing_database(&cli.config, &config).await?;
            let moved = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("--output {}", path.display()))?;
                    store.export(&mut std::io::BufWriter::new(file)).await
                }
                None => store.export(&mut std::io::stdout().lock()).await,
            };
            store.close().await;
            eprint!(
                "exported from {}:\n{}",
                Store::describe(&config.database.url),
                moved?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { input } => {
            let config = load_config(&cli.config)?;
            let store = Store::open(&config.database.url).await?;
            let moved = match &input {
                Some(path) => {
                    let file = std::fs::File::open(path)
                        .with_context(|| format!("--input {}", path.display()))?;
                    store.import(std::io::BufReader::new(file)).await
                }
                None => store.import(std::io::stdin().lock()).await,
            };
            store.close().await;
            let moved = moved.with_context(|| {
                format!("importing into {}", Store::describe(&config.database.url))
            })?;
            eprint!(
                "imported into {}:\n{moved}",
                Store::describe(&config.database.url)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => {
            let config = load_config(&cli.config)?;
            print!(
                "{}",
                folio::daemon::status::run(&config, &SystemClock, json).await?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => {
            let config = load_config(&cli.config)?;
            print!(
                "{}",
                folio::daemon::report::run(&config, &SystemClock, &args).await?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `folio templates check|preview` (the work is in `folio::daemon::templates`).
async fn templates(config_path: &Path, command: TemplatesCommand) -> Result<ExitCode> {
    use folio::daemon::templates as cli_templates;
    let config = load_config(config_path)?;
    match command {
        TemplatesCommand::Check { lang } => {
            let languages = cli_templates::languages(&config, lang.as_deref());
            let report = cli_templates::check(&config, languages);
            for finding in &report.findings {
                eprintln!("{finding}");
            }
            println!("{report}");
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        TemplatesCommand::Preview {
            name,
            lang,
            ticket,
            html,
        } => {
            let store = match &ticket {
                Some(_) => Some(open_existing_database(config_path, &config).await?),
                None => None,
            };
            let about = store.as_ref().zip(ticket.as_deref());
            let preview = cli_templates::preview(&config, &name, lang.as_deref(), about).await;
            if let Some(store) = store {
                store.close().await;
            }
            let preview = preview?;
            println!("{}", preview.terminal_text());
            if let Some(file) = html {
                std::fs::write(&file, &preview.rendered.html)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                eprintln!("folio: the HTML part is in {}", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The database of `config`, which must exist already: opening a missing one would create an
/// empty database (with a new site secret) and answer from it.
async fn open_existing_database(config_path: &Path, config: &Config) -> Result<Store> {
    if !Store::exists(&config.database.url) {
        anyhow::bail!(
            "{}: database.url: no database at {} (folio creates it, with the site secret, at its first start)",
            config_path.display(),
            Store::describe(&config.database.url)
        );
    }
    Ok(Store::open(&config.database.url).await?)
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
    // At most one byte more than the limit is held in memory; the rest of a bigger message is
    // read (so the delivering MTA sees it taken) and counted, not kept.
    let max = config.limits.max_message_bytes;
    let mut bytes = Vec::new();
    let mut stdin = std::io::stdin().lock();
    let read = (&mut stdin)
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .and_then(|n| {
            let rest = if n as u64 > max {
                std::io::copy(&mut stdin, &mut std::io::sink())?
            } else {
                0
            };
            Ok(n as u64 + rest)
        });
    let size = match read {
        Ok(size) => size,
        Err(e) => {
            eprintln!("folio ingest: cannot read standard input: {e}");
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = match Store::open(&config.database.url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("folio ingest: {e}");
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    let parts = match folio::daemon::assemble(&config, clock.clone(), store).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("folio ingest: {e}");
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    let source = format!("stdin:{}", hex::encode(&sha2::Sha256::digest(&bytes)[..12]));
    let outcome = if size > max {
        let head = analysis::header_section(&bytes, 64 * 1024).to_vec();
        drop(bytes);
        parts
            .pipeline
            .quarantine_oversize(&source, &head, size)
            .await
    } else {
        let raw = RawMessage {
            source,
            bytes,
            seen_at: clock.now(),
        };
        parts.pipeline.process_waiting(raw).await
    };
    let outcome = match outcome {
        Ok(o) => o,
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
        Disposition::Quarantined(reason) => {
            println!("quarantined: {}", folio::terminal::line(reason))
        }
        Disposition::Deferred => println!("deferred"),
    }
    if !queue_only {
        // Long enough for every send to finish or time out by itself: cutting a send short
        // could leave a mail the server accepted unrecorded (it would go out again).
        let timeout = parts.sender.lease();
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
    // inspect must work on a machine without secrets: fall back to defaults when the
    // configuration does not validate, and say so.
    // No database either: tokens cannot be checked (a secret of its own verifies nothing).
    let tokens = folio::desk::tokens::Tokens::new(b"folio inspect: no site secret".to_vec());
    let (policy, directory, limits) = match load_config(config_path) {
        Ok(config) => (
            pipeline::policy_of(&config, tokens)?,
            pipeline::directory_of(&config)?,
            config.limits,
        ),
        Err(e) => {
            eprintln!("folio inspect: using default settings ({e:#})");
            (
                folio::desk::policy::Policy::with_defaults("", tokens),
                Default::default(),
                folio::config::LimitsConfig::default(),
            )
        }
    };
    let cannot_read = || format!("cannot read {}", file.display());
    let size = std::fs::metadata(file).with_context(cannot_read)?.len();
    // Too big: the daemon quarantines it from its size alone; so does inspect, reading only
    // its headers.
    if let Some(reason) = analysis::oversize_reason(size, &limits) {
        let mut head = Vec::new();
        std::fs::File::open(file)
            .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
            .with_context(cannot_read)?;
        let headers = String::from_utf8_lossy(analysis::header_section(&head, head.len()));
        if json {
            let value = serde_json::json!({
                "size": size,
                "decision": {"action": "quarantine", "reason": reason},
                "headers": headers,
            });
            println!("{}", folio::terminal::json(&value)?);
        } else {
            println!(
                "Size:       {size} bytes\nDecision:   quarantine ({})\n\n{}",
                folio::terminal::line(&reason),
                folio::terminal::block(&headers)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bytes = std::fs::read(file).with_context(cannot_read)?;
    let analysis = analysis::analyze(&bytes, &directory, &policy, limits.max_attachment_bytes)
        .map_err(anyhow::Error::msg)
        .with_context(|| file.display().to_string())?;
    let value = pipeline::inspect_json(&analysis, &policy, &limits);
    if json {
        println!("{}", folio::terminal::json(&value)?);
    } else {
        print!(
            "{}",
            folio::terminal::inspect(&analysis, &value["decision"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check_config(path: &Path) -> Result<ExitCode> {
    // The same check a running daemon makes on SIGHUP before it takes a new configuration.
    match folio::daemon::reload::load_checked(path, &ProcessEnv) {
        Ok(checked) => {
            let config = &checked.config;
            let shown = |f: &Option<PathBuf>| {
                f.as_ref()
                    .map(|f| f.display().to_string())
                    .unwrap_or_else(|| "none".into())
            };
            println!(
                "{}: OK (templates: {}; catalog: {}; directory: {})",
                path.display(),
                checked.languages.join(", "),
                shown(&config.catalog.file),
                shown(&config.directory.file)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `folio staff addresses`: the personal tokenised address of every staff member (it needs the
/// site secret, kept in the database).
async fn staff_addresses(config_path: &Path, json: bool) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    // A new database would have a new secret: addresses that prove nothing to the real one.
    let store = open_existing_database(config_path, &config).await?;
    let tokens = folio::desk::tokens::Tokens::new(store.site_secret().await?);
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
