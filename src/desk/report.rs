//! The figures of a period for the help desk's admins (`folio report`, and later the weekly
//! summary): tickets by service, status and priority, time to first response and to
//! resolution (mean and 90th percentile, in wall time and in business time), SLA breaches,
//! and the satisfaction survey's average, distribution and comments.
//!
//! Pure: plain rows in (the tickets opened in the period and the survey answers given in it,
//! as the store reads them), a [`Report`] out. No I/O and no clock: "yesterday" comes from an
//! instant the caller gives ([`Period::resolve`]). `docs/reports.md` explains each figure.
//!
//! Two populations, on purpose: the ticket figures are about the tickets **opened** in the
//! period (a cohort: how the week's requests fared, as of when the report runs), the survey
//! figures about the answers **given** in the period (a ticket closed last week may be rated
//! this week, and its comment belongs in this week's reading).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

use crate::calendar::Calendar;
use crate::desk::catalog::{Catalog, Priority};
use crate::desk::ticket::Status;

/// The period a report covers: the local dates `from` to `to`, **both included**, in the
/// calendar's time zone; as instants, `[start, end)` (`end` is the start of the day after
/// `to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    /// The first day.
    pub from: NaiveDate,
    /// The last day, included.
    pub to: NaiveDate,
    /// The time zone the days are read in (`calendar.timezone`).
    pub timezone: String,
    /// The first instant of `from`.
    pub start: DateTime<Utc>,
    /// The first instant after `to` (excluded).
    pub end: DateTime<Utc>,
    #[serde(skip)]
    tz: Tz,
}

/// Why a period cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("the last day {to} is before the first day {from}")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("{date} is out of the range of dates folio can count")]
    OutOfRange { date: NaiveDate },
}

/// How many days a period has when only its end is given: a week, like the weekly summary.
pub const DEFAULT_DAYS: u64 = 7;

impl Period {
    /// The days `from` to `to`, both included, in `calendar`'s time zone.
    pub fn days(
        from: NaiveDate,
        to: NaiveDate,
        calendar: &Calendar,
    ) -> Result<Period, PeriodError> {
        if to < from {
            return Err(PeriodError::Reversed { from, to });
        }
        let after = to.succ_opt().ok_or(PeriodError::OutOfRange { date: to })?;
        let tz = calendar.timezone();
        Ok(Period {
            from,
            to,
            timezone: tz.name().to_string(),
            start: calendar.start_of_day(from),
            end: calendar.start_of_day(after),
            tz,
        })
    }

    /// The period the command line asks for, with its defaults: `to` is yesterday (the last
    /// whole day before `now`, in the calendar's time zone), `from` is [`DEFAULT_DAYS`] − 1
    /// days before `to` (so a bare `folio report` is the last seven whole days).
    pub fn resolve(
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        now: DateTime<Utc>,
        calendar: &Calendar,
    ) -> Result<Period, PeriodError> {
        let today = calendar.local_date(now);
        let to = match to {
            Some(to) => to,
            None => today
                .pred_opt()
                .ok_or(PeriodError::OutOfRange { date: today })?,
        };
        let from = match from {
            Some(from) => from,
            None => to
                .checked_sub_days(chrono::Days::new(DEFAULT_DAYS - 1))
                .ok_or(PeriodError::OutOfRange { date: to })?,
        };
        Period::days(from, to, calendar)
    }

    /// Whether `t` falls in the period.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// `t` on the local clock of the period's time zone (for people to read).
    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }
}

/// One ticket opened in the period, as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub folio: String,
    /// The catalogue's service id; `None` on tickets opened before routing existed.
    pub service: Option<String>,
    pub status: Status,
    pub priority: Priority,
    pub created_at: DateTime<Utc>,
    /// A technician's first public reply or change of status.
    pub first_response_at: Option<DateTime<Utc>>,
    /// When it was last resolved (kept when it is reopened).
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was last closed.
    pub closed_at: Option<DateTime<Utc>>,
    pub response_breached: bool,
    pub resolution_breached: bool,
}

impl Ticket {
    /// When it was resolved, if it is resolved now: resolved or closed, at its last resolution,
    /// or at its closing when it was closed without being resolved first (`#cerrar`). A
    /// ticket reopened after a resolution is not resolved, whatever `resolved_at` says.
    pub fn resolution(&self) -> Option<DateTime<Utc>> {
        match self.status {
            Status::Resolved | Status::Closed => self.resolved_at.or(self.closed_at),
            Status::Open | Status::Pending => None,
        }
    }
}

/// One satisfaction survey answer given in the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The folio of the ticket it rates.
    pub folio: String,
    /// 1 to 5.
    pub rating: u8,
    /// What the requester wrote besides the rating: hostile text, printed only escaped.
    pub comment: Option<String>,
    pub answered_at: DateTime<Utc>,
}

/// What a report is made from (the store's `report_rows`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    /// The tickets opened in the period.
    pub tickets: Vec<Ticket>,
    /// The survey answers given in the period.
    pub answers: Vec<Answer>,
}

/// The figures of a period. Serialised as `folio report --format json` prints it; durations
/// are whole seconds, and `null` where there is nothing to measure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub period: Period,
    /// Tickets opened in the period.
    pub tickets: usize,
    /// Tickets opened in the period per service: every service of the catalogue (those with
    /// none too, so weeks line up), then services the catalogue no longer has; most tickets
    /// first, then catalogue order.
    pub by_service: Vec<ServiceCount>,
    /// Per status, as they are now: `open`, `pending`, `resolved`, `closed`.
    #[serde(serialize_with = "as_map")]
    pub by_status: Vec<(&'static str, usize)>,
    /// Per priority, as they are now: `baja`, `media`, `alta`, `critica`.
    #[serde(serialize_with = "as_map")]
    pub by_priority: Vec<(&'static str, usize)>,
    /// From opening to a technician's first public reply or change of status.
    pub first_response: TimeTo,
    /// From opening to the resolution ([`Ticket::resolution`]).
    pub resolution: TimeTo,
    pub sla_breaches: Breaches,
    pub satisfaction: Satisfaction,
}

/// Tickets of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceCount {
    /// The service id; `null` for tickets with no service.
    pub id: Option<String>,
    /// The catalogue's name (the id when the catalogue no longer has it).
    pub name: String,
    pub tickets: usize,
}

/// How long the period's tickets took to reach a moment (first response, resolution).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeTo {
    /// Tickets that reached it: the ones measured.
    pub measured: usize,
    /// Tickets that have not reached it yet: left out of the figures, not counted as zero.
    pub still_open: usize,
    /// Real elapsed time.
    pub wall: Figures,
    /// Open time of the business calendar only (nights, weekends and holidays left out), as
    /// the SLA counts.
    pub business: Figures,
}

/// Mean and 90th percentile of some durations, in whole seconds; `None` without durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Figures {
    /// The arithmetic mean, rounded to the nearest second.
    pub mean_seconds: Option<i64>,
    /// The 90th percentile by the nearest-rank method ([`p90`]).
    pub p90_seconds: Option<i64>,
}

/// SLA breaches among the period's tickets (as of when the report runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Breaches {
    /// Tickets whose first-response target passed unanswered.
    pub first_response: usize,
    /// Tickets whose resolution target passed unresolved.
    pub resolution: usize,
    /// Tickets that breached either target (one ticket counted once).
    pub tickets: usize,
}

/// The survey answers given in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Satisfaction {
    pub answers: usize,
    /// The mean rating, rounded to two decimals; `None` without answers.
    pub average: Option<f64>,
    /// How many answers gave each rating, 1 to 5.
    #[serde(serialize_with = "as_map")]
    pub distribution: Vec<(u8, usize)>,
    /// The answers that carry a comment, newest first.
    pub comments: Vec<Comment>,
}

/// A survey answer's comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    pub folio: String,
    pub rating: u8,
    /// As the requester wrote it: hostile text (escape it before printing).
    pub comment: String,
    pub answered_at: DateTime<Utc>,
}

/// Pairs written as a JSON object, in their order (a map type would sort them).
fn as_map<K: Serialize, S: Serializer>(pairs: &[(K, usize)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

const STATUSES: [Status; 4] = [
    Status::Open,
    Status::Pending,
    Status::Resolved,
    Status::Closed,
];

impl Report {
    /// The figures of `rows` for `period`, naming services from `catalog` and measuring
    /// business time on `calendar`. Rows outside the period (a ticket not opened in it, an
    /// answer not given in it) are left out.
    pub fn build(rows: &Rows, period: &Period, catalog: &Catalog, calendar: &Calendar) -> Report {
        let tickets: Vec<&Ticket> = rows
            .tickets
            .iter()
            .filter(|t| period.contains(t.created_at))
            .collect();
        let answers: Vec<&Answer> = rows
            .answers
            .iter()
            .filter(|a| period.contains(a.answered_at))
            .collect();
        let count = |keep: &dyn Fn(&Ticket) -> bool| tickets.iter().filter(|t| keep(t)).count();
        Report {
            period: period.clone(),
            tickets: tickets.len(),
            by_service: by_service(&tickets, catalog),
            by_status: STATUSES
                .iter()
                .map(|s| (s.as_str(), count(&|t| t.status == *s)))
                .collect(),
            by_priority: Priority::ALL
                .iter()
                .map(|p| (p.as_str(), count(&|t| t.priority == *p)))
                .collect(),
            first_response: time_to(&tickets, calendar, |t| t.first_response_at),
            resolution: time_to(&tickets, calendar, Ticket::resolution),
            sla_breaches: Breaches {
                first_response: count(&|t| t.response_breached),
                resolution: count(&|t| t.resolution_breached),
                tickets: count(&|t| t.response_breached || t.resolution_breached),
            },
            satisfaction: satisfaction(&answers),
        }
    }
}

fn by_service(tickets: &[&Ticket], catalog: &Catalog) -> Vec<ServiceCount> {
    let mut counts: Vec<ServiceCount> = catalog
        .services
        .iter()
        .map(|s| ServiceCount {
            id: Some(s.id.clone()),
            name: s.name.clone(),
            tickets: 0,
        })
        .collect();
    for t in tickets {
        match counts.iter_mut().find(|c| c.id == t.service) {
            Some(c) => c.tickets += 1,
            None => counts.push(ServiceCount {
                id: t.service.clone(),
                name: t
                    .service
                    .as_deref()
                    .map_or_else(|| "(no service)".to_string(), |id| catalog.service_name(id)),
                tickets: 1,
            }),
        }
    }
    // Stable: equal counts keep catalogue order, then the order the others were met in.
    counts.sort_by_key(|c| std::cmp::Reverse(c.tickets));
    counts
}

/// The time each ticket took from its opening to `reached` (when it has), in both clocks.
fn time_to(
    tickets: &[&Ticket],
    calendar: &Calendar,
    reached: impl Fn(&Ticket) -> Option<DateTime<Utc>>,
) -> TimeTo {
    let mut wall = Vec::with_capacity(tickets.len());
    let mut business = Vec::with_capacity(tickets.len());
    for t in tickets {
        if let Some(at) = reached(t) {
            // A moment stamped before the opening (clocks of two hosts) counts as no time.
            wall.push((at - t.created_at).max(TimeDelta::zero()).num_seconds());
            business.push(
                calendar
                    .business_time_between(t.created_at, at)
                    .num_seconds(),
            );
        }
    }
    TimeTo {
        measured: wall.len(),
        still_open: tickets.len() - wall.len(),
        wall: figures(wall),
        business: figures(business),
    }
}

fn figures(mut seconds: Vec<i64>) -> Figures {
    seconds.sort_unstable();
    Figures {
        mean_seconds: mean(&seconds),
        p90_seconds: p90(&seconds),
    }
}

/// The arithmetic mean of non-negative durations, rounded to the nearest second (halves up);
/// `None` for none.
pub fn mean(seconds: &[i64]) -> Option<i64> {
    let n = i128::try_from(seconds.len()).ok().filter(|n| *n > 0)?;
    let sum: i128 = seconds.iter().map(|s| i128::from(*s)).sum();
    i64::try_from((2 * sum + n) / (2 * n)).ok()
}

/// The 90th percentile of `sorted` (ascending) by the **nearest-rank** method: the smallest
/// value that at least 90 % of the values are less than or equal to, i.e. the value of rank
/// ⌈0.9 × n⌉ (1-based). Always one of the values, never an interpolation: of 10 values the
/// 9th, of 11 the 10th, of 1 that one; `None` for none.
pub fn p90(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    let rank = (9 * n).div_ceil(10);
    sorted.get(rank.checked_sub(1)?).copied()
}

fn satisfaction(answers: &[&Answer]) -> Satisfaction {
    let rated: Vec<&Answer> = answers
        .iter()
        .copied()
        .filter(|a| (1..=5).contains(&a.rating))
        .collect();
    let sum: u64 = rated.iter().map(|a| u64::from(a.rating)).sum();
    let average =
        (!rated.is_empty()).then(|| (sum as f64 / rated.len() as f64 * 100.0).round() / 100.0);
    let mut comments: Vec<Comment> = rated
        .iter()
        .filter_map(|a| {
            let text = a.comment.as_deref().map(str::trim).unwrap_or_default();
            (!text.is_empty()).then(|| Comment {
                folio: a.folio.clone(),
                rating: a.rating,
                comment: text.to_string(),
                answered_at: a.answered_at,
            })
        })
        .collect();
    comments.sort_by(|a, b| {
        b.answered_at
            .cmp(&a.answered_at)
            .then_with(|| a.folio.cmp(&b.folio))
    });
    Satisfaction {
        answers: rated.len(),
        average,
        distribution: (1..=5u8)
            .map(|r| (r, rated.iter().filter(|a| a.rating == r).count()))
            .collect(),
        comments,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Weekday};
    use chrono_tz::America::Mexico_City;

    use super::*;
    use crate::calendar::Hours;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Local time in Mexico City (UTC-6 all year).
    fn mx(m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Mexico_City
            .with_ymd_and_hms(2026, m, d, h, mi, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn mexico() -> Calendar {
        Calendar::new(
            Mexico_City,
            &[
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            Hours::parse("09:00-18:00").unwrap(),
            [],
        )
        .unwrap()
    }

    /// The week of Monday 2026-11-30 to Sunday 2026-12-06.
    fn week() -> Period {
        Period::days(date(2026, 11, 30), date(2026, 12, 6), &mexico()).unwrap()
    }

    fn catalog() -> Catalog {
        let text = r#"
            [assignment]
            default_service = "correo"
            [[group]]
            id = "soporte"
            [[service]]
            id = "correo"
            name = "Correo institucional"
            group = "soporte"
            [[service]]
            id = "impresoras"
            name = "Impresoras"
            group = "soporte"
        "#;
        Catalog::parse(std::path::Path::new("catalog.toml"), text).unwrap()
    }

    fn ticket(n: u32, created_at: DateTime<Utc>) -> Ticket {
        Ticket {
            folio: format!("MDA-2026-{n:06}"),
            service: Some("correo".into()),
            status: Status::Open,
            priority: Priority::Media,
            created_at,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            response_breached: false,
            resolution_breached: false,
        }
    }

    fn answer(n: u32, rating: u8, comment: Option<&str>, at: DateTime<Utc>) -> Answer {
        Answer {
            folio: format!("MDA-2026-{n:06}"),
            rating,
            comment: comment.map(str::to_string),
            answered_at: at,
        }
    }

    #[test]
    fn a_period_is_whole_local_days_with_the_last_one_included() {
        let p = week();
        assert_eq!(p.start, mx(11, 30, 0, 0));
        assert_eq!(p.end, mx(12, 7, 0, 0));
        assert_eq!(p.timezone, "America/Mexico_City");
        assert!(p.contains(mx(12, 6, 23, 59)) && !p.contains(mx(12, 7, 0, 0)));
        assert!(!p.contains(mx(11, 29, 23, 59)));
        assert_eq!(
            p.local(mx(12, 1, 10, 30)).to_string(),
            "2026-12-01 10:30:00"
        );
        let one_day = Period::days(date(2026, 12, 1), date(2026, 12, 1), &mexico()).unwrap();
        assert_eq!(one_day.end - one_day.start, TimeDelta::days(1));
        assert_eq!(
            Period::days(date(2026, 12, 6), date(2026, 11, 30), &mexico()),
            Err(PeriodError::Reversed {
                from: date(2026, 12, 6),
                to: date(2026, 11, 30)
            })
        );
    }

    #[test]
    fn without_dates_the_period_is_the_seven_days_before_today() {
        // Monday 2026-12-07 at 01:00 in Mexico City is still Monday there (07:00 UTC).
        let now = mx(12, 7, 1, 0);
        assert_eq!(Period::resolve(None, None, now, &mexico()), Ok(week()));
        // Only the end: the week that ends there; only the start: up to yesterday.
        let p = Period::resolve(None, Some(date(2026, 12, 2)), now, &mexico()).unwrap();
        assert_eq!((p.from, p.to), (date(2026, 11, 26), date(2026, 12, 2)));
        let p = Period::resolve(Some(date(2026, 12, 1)), None, now, &mexico()).unwrap();
        assert_eq!((p.from, p.to), (date(2026, 12, 1), date(2026, 12, 6)));
        // 23:30 on Sunday 2026-12-06 in Mexico City is already Monday in UTC: the local date
        // decides, so yesterday is Saturday.
        let late = mx(12, 6, 23, 30);
        let p = Period::resolve(None, None, late, &mexico()).unwrap();
        assert_eq!(p.to, date(2026, 12, 5));
    }

    #[test]
    fn p90_is_the_nearest_rank() {
        assert_eq!(p90(&[]), None);
        assert_eq!(p90(&[7]), Some(7));
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(p90(&ten), Some(9), "rank ⌈9⌉ = 9");
        let eleven: Vec<i64> = (1..=11).collect();
        assert_eq!(p90(&eleven), Some(10), "rank ⌈9.9⌉ = 10");
        let twenty: Vec<i64> = (1..=20).map(|x| x * 100).collect();
        assert_eq!(p90(&twenty), Some(1800), "rank 18");
        assert_eq!(p90(&[1, 2]), Some(2), "rank ⌈1.8⌉ = 2");
        assert_eq!(p90(&[5, 5, 5, 100]), Some(100), "rank ⌈3.6⌉ = 4");
    }

    #[test]
    fn the_mean_rounds_to_the_nearest_second() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1, 2]), Some(2), "1.5 rounds up");
        assert_eq!(mean(&[1, 1, 2]), Some(1), "1.33 rounds down");
        assert_eq!(mean(&[3600, 7200, 10800]), Some(7200));
        assert_eq!(mean(&[i64::MAX, i64::MAX]), Some(i64::MAX), "no overflow");
    }

    #[test]
    fn business_time_leaves_out_the_weekend_and_wall_time_does_not() {
        // Friday 2026-12-04 17:00 → Monday 2026-12-07 10:00: 65 hours of wall time, two of
        // business time (one on Friday, one on Monday). Opened in the period, answered after.
        let mut t = ticket(1, mx(12, 4, 17, 0));
        t.first_response_at = Some(mx(12, 7, 10, 0));
        t.status = Status::Closed;
        t.resolved_at = Some(mx(12, 7, 10, 0));
        let rows = Rows {
            tickets: vec![t],
            answers: vec![],
        };
        let r = Report::build(&rows, &week(), &catalog(), &mexico());
        for time in [&r.first_response, &r.resolution] {
            assert_eq!((time.measured, time.still_open), (1, 0));
            assert_eq!(time.wall.mean_seconds, Some(65 * 3600));
            assert_eq!(time.wall.p90_seconds, Some(65 * 3600));
            assert_eq!(time.business.mean_seconds, Some(2 * 3600));
            assert_eq!(time.business.p90_seconds, Some(2 * 3600));
        }
    }

    #[test]
    fn times_are_measured_only_on_the_tickets_that_got_there() {
        // Ten tickets opened Monday 09:00, answered after 1..=10 hours; two more unanswered.
        let mut tickets: Vec<Ticket> = (1..=10)
            .map(|h| {
                let mut t = ticket(h, mx(11, 30, 9, 0));
                t.first_response_at = Some(mx(11, 30, 9 + h, 0).min(mx(11, 30, 18, 0)));
                t
            })
            .collect();
        // The last answer, 19:00, is after closing: an hour of wall time more, no business time.
        tickets[9].first_response_at = Some(mx(11, 30, 19, 0));
        tickets.push(ticket(11, mx(12, 1, 9, 0)));
        tickets.push(ticket(12, mx(12, 1, 9, 0)));
        // Resolved, then reopened: not resolved.
        tickets[0].resolved_at = Some(mx(11, 30, 12, 0));
        // Resolved.
        tickets[1].status = Status::Resolved;
        tickets[1].resolved_at = Some(mx(11, 30, 13, 0));
        // Closed with #cerrar, never resolved: the closing is the resolution.
        tickets[2].status = Status::Closed;
        tickets[2].closed_at = Some(mx(11, 30, 15, 0));
        let rows = Rows {
            tickets,
            answers: vec![],
        };
        let r = Report::build(&rows, &week(), &catalog(), &mexico());
        let f = &r.first_response;
        assert_eq!((f.measured, f.still_open), (10, 2));
        // Wall: 1..=8 h, 9 h (18:00), 10 h (19:00): mean 5.5 h; p90 = rank 9 = 9 h.
        assert_eq!(f.wall.mean_seconds, Some(5 * 3600 + 1800));
        assert_eq!(f.wall.p90_seconds, Some(9 * 3600));
        // Business: 1..=9 h, 9 h: mean 5.4 h; p90 9 h.
        assert_eq!(f.business.mean_seconds, Some(5 * 3600 + 24 * 60));
        assert_eq!(f.business.p90_seconds, Some(9 * 3600));
        let res = &r.resolution;
        assert_eq!((res.measured, res.still_open), (2, 10));
        assert_eq!(res.wall.mean_seconds, Some(5 * 3600), "4 h and 6 h");
        assert_eq!(res.wall.p90_seconds, Some(6 * 3600));
        assert_eq!(
            r.by_status,
            vec![("open", 10), ("pending", 0), ("resolved", 1), ("closed", 1)]
        );
    }

    #[test]
    fn counts_by_service_status_priority_and_breaches() {
        let mut tickets: Vec<Ticket> = (1..=6).map(|n| ticket(n, mx(12, 2, 10, 0))).collect();
        tickets[0].service = Some("impresoras".into());
        tickets[1].service = Some("impresoras".into());
        tickets[2].service = Some("viejo".into());
        tickets[3].service = None;
        tickets[0].priority = Priority::Critica;
        tickets[1].priority = Priority::Alta;
        tickets[2].status = Status::Pending;
        tickets[0].response_breached = true;
        tickets[0].resolution_breached = true;
        tickets[1].resolution_breached = true;
        // Opened the Sunday before: not in the period.
        tickets.push(ticket(7, mx(11, 29, 23, 0)));
        let rows = Rows {
            tickets,
            answers: vec![],
        };
        let r = Report::build(&rows, &week(), &catalog(), &mexico());
        assert_eq!(r.tickets, 6);
        let services: Vec<(Option<&str>, &str, usize)> = r
            .by_service
            .iter()
            .map(|s| (s.id.as_deref(), s.name.as_str(), s.tickets))
            .collect();
        assert_eq!(
            services,
            vec![
                (Some("correo"), "Correo institucional", 2),
                (Some("impresoras"), "Impresoras", 2),
                (Some("viejo"), "viejo", 1),
                (None, "(no service)", 1),
            ]
        );
        assert_eq!(
            r.by_status,
            vec![("open", 5), ("pending", 1), ("resolved", 0), ("closed", 0)]
        );
        assert_eq!(
            r.by_priority,
            vec![("baja", 0), ("media", 4), ("alta", 1), ("critica", 1)]
        );
        assert_eq!(
            r.sla_breaches,
            Breaches {
                first_response: 1,
                resolution: 2,
                tickets: 2
            }
        );
    }

    #[test]
    fn satisfaction_averages_two_decimals_and_lists_comments_newest_first() {
        let answers = vec![
            answer(1, 5, Some("Excelente"), mx(12, 1, 10, 0)),
            answer(2, 4, Some("  "), mx(12, 2, 10, 0)),
            answer(3, 2, Some("Tardaron\u{1b}[2J"), mx(12, 3, 10, 0)),
            answer(4, 5, None, mx(12, 3, 11, 0)),
            // Given after the period: another week's.
            answer(5, 1, Some("Mal"), mx(12, 7, 9, 0)),
        ];
        let rows = Rows {
            tickets: vec![],
            answers,
        };
        let r = Report::build(&rows, &week(), &catalog(), &mexico());
        let s = &r.satisfaction;
        assert_eq!(s.answers, 4);
        assert_eq!(s.average, Some(4.0));
        assert_eq!(s.distribution, vec![(1, 0), (2, 1), (3, 0), (4, 1), (5, 2)]);
        let comments: Vec<(&str, u8, &str)> = s
            .comments
            .iter()
            .map(|c| (c.folio.as_str(), c.rating, c.comment.as_str()))
            .collect();
        assert_eq!(
            comments,
            vec![
                ("MDA-2026-000003", 2, "Tardaron\u{1b}[2J"),
                ("MDA-2026-000001", 5, "Excelente"),
            ]
        );
        let thirds = Rows {
            tickets: vec![],
            answers: vec![
                answer(1, 5, None, mx(12, 1, 10, 0)),
                answer(2, 5, None, mx(12, 1, 10, 0)),
                answer(3, 4, None, mx(12, 1, 10, 0)),
            ],
        };
        let r = Report::build(&thirds, &week(), &catalog(), &mexico());
        assert_eq!(r.satisfaction.average, Some(4.67));
    }

    #[test]
    fn an_empty_period_has_zero_counts_and_no_means() {
        let r = Report::build(&Rows::default(), &week(), &catalog(), &mexico());
        assert_eq!(r.tickets, 0);
        assert_eq!(r.first_response.measured, 0);
        assert_eq!(r.first_response.wall, Figures::default());
        assert_eq!(r.resolution.business, Figures::default());
        assert_eq!(r.satisfaction.average, None);
        assert!(r.by_service.iter().all(|s| s.tickets == 0));
        assert_eq!(r.by_service.len(), 2, "the catalogue's services, with none");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["first_response"]["wall"]["mean_seconds"],
            serde_json::Value::Null
        );
        assert_eq!(json["satisfaction"]["average"], serde_json::Value::Null);
        assert_eq!(json["by_status"]["open"], 0);
        assert_eq!(json["satisfaction"]["distribution"]["5"], 0);
        assert_eq!(json["period"]["from"], "2026-11-30");
        assert_eq!(json["period"]["to"], "2026-12-06");
        assert_eq!(json["period"]["start"], "2026-11-30T06:00:00Z");
        assert!(json["period"].get("tz").is_none());
    }
}
