//! `folio report`: the shell around [`desk::report`](crate::desk::report). It reads the
//! period from the command line (local dates in `calendar.timezone`), the rows from the
//! database (whether or not the daemon runs: SQLite in WAL mode lets a reader in beside the
//! writer), the services' names from the catalogue, and gives the report as text, CSV or JSON
//! (written by `terminal`, with what came from mail escaped).

use chrono::NaiveDate;

use crate::clock::Clock;
use crate::config::Config;
use crate::desk::catalog::{Catalog, CatalogError};
use crate::desk::report::{Period, PeriodError, Report};
use crate::store::{Store, StoreError};

/// `folio report`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// First day of the period, YYYY-MM-DD, in calendar.timezone [default: six days before
    /// --to, so a week]
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub from: Option<NaiveDate>,
    /// Last day of the period, YYYY-MM-DD, included: --from 2026-11-30 --to 2026-12-06 is
    /// the whole week [default: yesterday]
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub to: Option<NaiveDate>,
    /// Output: text for people, csv (one table: section,key,value,detail) for a spreadsheet,
    /// json for programs.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Csv,
    Json,
}

/// Why there is no report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    // No `#[from]` here and below: the message already carries the cause, which would
    // otherwise be printed twice by `{:#}`.
    #[error("--from/--to: {0}")]
    Period(PeriodError),
    #[error(
        "{config}: database.url: no database at {file} (it is created at folio's first start; \
         there is nothing to report before)"
    )]
    NoDatabase { config: String, file: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the report as CSV: {0}")]
    Csv(csv::Error),
    #[error("cannot write the report as JSON: {0}")]
    Json(serde_json::Error),
}

/// `--from`/`--to`: a date as `YYYY-MM-DD` (clap names the flag in its message).
fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| "expected a date as YYYY-MM-DD, like 2026-11-30".to_string())
}

/// The report `args` ask for, written as they ask (ending with a newline). "Yesterday" is
/// the day before `clock`'s now in the calendar's time zone.
pub async fn run(
    config: &Config,
    clock: &dyn Clock,
    args: &ReportArgs,
) -> Result<String, ReportError> {
    let period = Period::resolve(args.from, args.to, clock.now(), &config.calendar)
        .map_err(ReportError::Period)?;
    let catalog = match &config.catalog.file {
        Some(f) => Catalog::load(f)?,
        None => Catalog::default(),
    };
    if !Store::exists(&config.database.url) {
        return Err(ReportError::NoDatabase {
            config: config.path.display().to_string(),
            file: Store::describe(&config.database.url),
        });
    }
    let store = Store::open(&config.database.url).await?;
    let rows = store.report_rows(period.start, period.end).await;
    store.close().await;
    let report = Report::build(&rows?, &period, &catalog, &config.calendar);
    Ok(match args.format {
        Format::Text => crate::terminal::report(&report),
        Format::Csv => crate::terminal::report_csv(&report).map_err(ReportError::Csv)?,
        Format::Json => crate::terminal::json(&report).map_err(ReportError::Json)? + "\n",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_year_month_day() {
        assert_eq!(
            parse_date("2026-11-30"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
        );
        for bad in ["30/11/2026", "2026-13-01", "2026-02-30", "yesterday", ""] {
            let e = parse_date(bad).unwrap_err();
            assert!(e.contains("YYYY-MM-DD"), "{bad}: {e}");
        }
    }
}
