//! The business calendar and the spans of time the ticket lifecycle waits: "remind after 2
//! business days", "survey after 1h", "close after 5 business days".
//!
//! Pure: no I/O and no clock. Every function takes the instant it works from, so "two business
//! days after closing" is a function of the time the caller's clock gave it, and a test of the
//! year's end runs on fixed instants.
//!
//! A [`Calendar`] is a time zone, the workdays of the week, one range of opening hours (the same
//! every workday) and a list of holidays (local dates). Its *open time* is, on every workday that
//! is not a holiday, the local opening hours mapped to real instants in its time zone. Local
//! times that daylight saving skips (a gap) are read as the first instant after the gap (the
//! moment the clocks jump), and local times it repeats as their first occurrence; so an office
//! opening at 02:00 on the night clocks jump from 02:00 to 03:00 opens at 03:00, and a whole-day
//! calendar in New York is open 23 hours on that day and 25 on the day clocks go back.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Timelike, Utc,
    Weekday,
};
use chrono_tz::Tz;

/// What the calendar's searches return when no answer exists within [`SEARCH_YEARS`] (a
/// calendar whose every day is a holiday) or before the end of chrono's range: "never". A
/// due time of `NEVER` is never reached, which is the honest outcome of a calendar that is
/// never open.
pub const NEVER: DateTime<Utc> = DateTime::<Utc>::MAX_UTC;

/// How far ahead a search for open time looks, in years. The longest span ([`Span::parse`]
/// accepts at most 366 business days) needs seven years of a calendar open one day a week;
/// ten leave room for holidays, and still bound the work of a calendar that is never open
/// (every day of the decade a holiday) to a few thousand days.
pub const SEARCH_YEARS: u32 = 10;

/// [`SEARCH_YEARS`] in days.
const SEARCH_DAYS: usize = SEARCH_YEARS as usize * 366;

/// The longest span [`Span::parse`] accepts, in days (wall or business): a help desk waits
/// days or weeks; a span of years is a typo, and the bound keeps every search finite.
pub const MAX_SPAN_DAYS: u32 = 366;

/// The accepted forms, for error messages.
const SPAN_FORMS: &str =
    "a duration like \"90s\", \"5m\", \"4h\", \"1h 30m\", \"3 days\" or \"2 weeks\", \
     or business time like \"2 business days\", \"4 business hours\" or \"30 business minutes\" \
     (also \"2 días hábiles\", \"4 horas hábiles\", \"30 minutos hábiles\")";

/// A length of time in wall time (real elapsed time) or business time (the calendar's open
/// time), as written in the configuration: `"24h"`, `"3 days"`, `"2 business days"`,
/// `"4 business hours"`. What each kind means when added to an instant is [`Calendar::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Real elapsed time, whatever the calendar says ("survey 1h after closing").
    Wall(TimeDelta),
    /// This much open business time ("4 business hours", "30 business minutes").
    BusinessTime(TimeDelta),
    /// This many business days, keeping the local time of day ("2 business days").
    BusinessDays(u32),
}

/// Why a span could not be read; each message names what was written and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("expected {SPAN_FORMS}, got {text:?}")]
    Unrecognised { text: String },
    #[error("must be greater than zero, got {text:?}")]
    Zero { text: String },
    #[error("must be whole seconds, got {text:?}")]
    SubSecond { text: String },
    #[error(
        "must be at most {MAX_SPAN_DAYS} days (or {MAX_SPAN_DAYS} business days, or {} business \
         hours), got {text:?}",
        MAX_SPAN_DAYS * 24
    )]
    TooLong { text: String },
}

/// The units of business time, as written in English and Spanish (folded: lower case, no
/// accents), with their length in minutes; `None` for days, which are counted, not timed.
const BUSINESS_UNITS: &[(&str, Option<u32>)] = &[
    ("day", None),
    ("days", None),
    ("hour", Some(60)),
    ("hours", Some(60)),
    ("minute", Some(1)),
    ("minutes", Some(1)),
    ("dia", None),
    ("dias", None),
    ("hora", Some(60)),
    ("horas", Some(60)),
    ("minuto", Some(1)),
    ("minutos", Some(1)),
];

impl Span {
    /// Reads a span: wall time in humantime's syntax (`"90s"`, `"4h"`, `"1h 30m"`, `"3 days"`,
    /// `"2 weeks"`), or business time as `N business days|hours|minutes` (also the singular,
    /// and the Spanish `N días|horas|minutos hábiles`), case-insensitive. A span is whole
    /// seconds, greater than zero, and at most [`MAX_SPAN_DAYS`] days long (in business time:
    /// that many business days, or that many times 24 business hours).
    pub fn parse(text: &str) -> Result<Span, SpanError> {
        let folded = crate::fold::fold(text.trim());
        let words: Vec<&str> = folded.split_whitespace().collect();
        let business = words
            .iter()
            .any(|w| matches!(*w, "business" | "habil" | "habiles"));
        if business {
            parse_business(text, &words)
        } else {
            parse_wall(text)
        }
    }

    /// Whether this span counts the calendar's open time rather than real time.
    pub fn is_business(&self) -> bool {
        !matches!(self, Span::Wall(_))
    }
}

/// `N business <unit>` or `N <unidad> hábil(es)`, already folded into `words`.
fn parse_business(text: &str, words: &[&str]) -> Result<Span, SpanError> {
    let unrecognised = || SpanError::Unrecognised { text: text.into() };
    let (count, unit) = match words {
        [n, "business", unit] => (*n, *unit),
        [n, unit, "habil" | "habiles"] => (*n, *unit),
        _ => return Err(unrecognised()),
    };
    let minutes_per_unit = BUSINESS_UNITS
        .iter()
        .find(|(word, _)| *word == unit)
        .ok_or_else(unrecognised)?
        .1;
    // Only digits: "1.5 business days" or "-2 business days" are not counts.
    if !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unrecognised());
    }
    let too_long = || SpanError::TooLong { text: text.into() };
    let n: u32 = count.parse().map_err(|_| too_long())?;
    if n == 0 {
        return Err(SpanError::Zero { text: text.into() });
    }
    match minutes_per_unit {
        None if n <= MAX_SPAN_DAYS => Ok(Span::BusinessDays(n)),
        Some(per) if u64::from(n) * u64::from(per) <= u64::from(MAX_SPAN_DAYS) * 24 * 60 => {
            Ok(Span::BusinessTime(TimeDelta::minutes(i64::from(n * per))))
        }
        _ => Err(too_long()),
    }
}

/// Wall time in humantime's syntax; humantime is case-sensitive ("M" is months, "m" minutes),
/// so only what it refuses is tried again in lower case ("3 Days").
fn parse_wall(text: &str) -> Result<Span, SpanError> {
    let trimmed = text.trim();
    let duration = humantime::parse_duration(trimmed)
        .or_else(|_| humantime::parse_duration(&trimmed.to_lowercase()))
        .map_err(|_| SpanError::Unrecognised { text: text.into() })?;
    if duration.is_zero() {
        return Err(SpanError::Zero { text: text.into() });
    }
    if duration.subsec_nanos() != 0 {
        return Err(SpanError::SubSecond { text: text.into() });
    }
    if duration.as_secs() > u64::from(MAX_SPAN_DAYS) * 86_400 {
        return Err(SpanError::TooLong { text: text.into() });
    }
    // At most MAX_SPAN_DAYS days, so the seconds fit an i64.
    let seconds =
        i64::try_from(duration.as_secs()).map_err(|_| SpanError::TooLong { text: text.into() })?;
    Ok(Span::Wall(TimeDelta::seconds(seconds)))
}

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(s: &str) -> Result<Span, SpanError> {
        Span::parse(s)
    }
}

impl fmt::Display for Span {
    /// The canonical form, which [`Span::parse`] reads back to the same span: wall time as
    /// days, hours, minutes and seconds (`"1d 2h"`, `"1m 30s"`); business time in its largest
    /// whole unit (`"2 business days"`, `"1 business hour"`, `"90 business minutes"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Span::Wall(d) => {
                let total = d.num_seconds();
                let parts = [
                    (total / 86_400, "d"),
                    (total % 86_400 / 3_600, "h"),
                    (total % 3_600 / 60, "m"),
                    (total % 60, "s"),
                ];
                let shown: Vec<String> = parts
                    .iter()
                    .filter(|(n, _)| *n != 0)
                    .map(|(n, unit)| format!("{n}{unit}"))
                    .collect();
                if shown.is_empty() {
                    f.write_str("0s")
                } else {
                    f.write_str(&shown.join(" "))
                }
            }
            Span::BusinessTime(d) => {
                let minutes = d.num_minutes();
                if minutes % 60 == 0 {
                    plural(f, minutes / 60, "business hour")
                } else {
                    plural(f, minutes, "business minute")
                }
            }
            Span::BusinessDays(n) => plural(f, i64::from(n), "business day"),
        }
    }
}

fn plural(f: &mut fmt::Formatter<'_>, n: i64, unit: &str) -> fmt::Result {
    let s = if n == 1 { "" } else { "s" };
    write!(f, "{n} {unit}{s}")
}

/// Why a calendar could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("at least one workday is needed: a calendar that is never open has no business time")]
    NoWorkdays,
    #[error(
        "expected opening and closing times like \"09:00-18:00\" (\"00:00-24:00\" for the whole \
         day), got {text:?}"
    )]
    HoursSyntax { text: String },
    #[error(
        "the opening must be before the closing (a range past midnight is not supported), got \
         {text:?}"
    )]
    HoursOrder { text: String },
}

/// The opening hours of every workday: from `open` (inclusive) to `close` (exclusive), local
/// time, in minutes after midnight; `close` may be 24:00, the end of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    open: u32,
    close: u32,
}

/// Minutes in a day: 24:00.
const DAY_MINUTES: u32 = 24 * 60;

impl Hours {
    /// The whole day, `"00:00-24:00"`.
    pub const WHOLE_DAY: Hours = Hours {
        open: 0,
        close: DAY_MINUTES,
    };

    /// Reads `"HH:MM-HH:MM"` (`"9:00-18:00"` too); `"24:00"` is allowed as the closing.
    pub fn parse(text: &str) -> Result<Hours, CalendarError> {
        let syntax = || CalendarError::HoursSyntax { text: text.into() };
        let (open, close) = text.trim().split_once('-').ok_or_else(syntax)?;
        let (open, close) = (minutes_of(open.trim()), minutes_of(close.trim()));
        match (open, close) {
            (Some(open), Some(close)) if open < close => Ok(Hours { open, close }),
            (Some(_), Some(_)) => Err(CalendarError::HoursOrder { text: text.into() }),
            _ => Err(syntax()),
        }
    }
}

/// `"H:MM"` or `"HH:MM"` (up to `"24:00"`) → minutes after midnight.
fn minutes_of(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if !(1..=2).contains(&h.len()) || m.len() != 2 {
        return None;
    }
    let number = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (h, m) = (number(h)?, number(m)?);
    let minutes = h * 60 + m;
    (m <= 59 && minutes <= DAY_MINUTES).then_some(minutes)
}

/// Minutes after midnight as `"HH:MM"`.
fn clock_time(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl FromStr for Hours {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Hours, CalendarError> {
        Hours::parse(s)
    }
}

impl fmt::Display for Hours {
    /// `"09:00-18:00"`, as [`Hours::parse`] reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", clock_time(self.open), clock_time(self.close))
    }
}

/// When the help desk is open: a time zone, the workdays, the opening hours of every workday
/// and the holidays (see the module doc for daylight saving). Built from validated parts, it
/// always has open time ahead (a workday, a non-empty range of hours, a finite list of
/// holidays), so its searches end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    timezone: Tz,
    /// Indexed by `Weekday::num_days_from_monday`.
    workdays: [bool; 7],
    hours: Hours,
    holidays: BTreeSet<NaiveDate>,
}

/// One stretch of open time, `[open, close)`.
type Window = (DateTime<Utc>, DateTime<Utc>);

impl Calendar {
    /// A calendar from its parts; refuses one without workdays (it would never be open).
    pub fn new(
        timezone: Tz,
        workdays: &[Weekday],
        hours: Hours,
        holidays: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Calendar, CalendarError> {
        if workdays.is_empty() {
            return Err(CalendarError::NoWorkdays);
        }
        let mut days = [false; 7];
        for day in workdays {
            days[day.num_days_from_monday() as usize] = true;
        }
        Ok(Calendar {
            timezone,
            workdays: days,
            hours,
            holidays: holidays.into_iter().collect(),
        })
    }

    /// Always open: every day, the whole day, UTC, no holidays. Business time is then wall
    /// time, which makes it the calendar of tests that are not about the calendar.
    pub fn always() -> Calendar {
        Calendar {
            timezone: Tz::UTC,
            workdays: [true; 7],
            hours: Hours::WHOLE_DAY,
            holidays: BTreeSet::new(),
        }
    }

    /// The time zone the hours, workdays and holidays are read in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The workdays, Monday first.
    pub fn workdays(&self) -> Vec<Weekday> {
        (0..7u8)
            .filter(|i| self.workdays[usize::from(*i)])
            .filter_map(|i| Weekday::try_from(i).ok())
            .collect()
    }

    /// The opening hours of every workday.
    pub fn hours(&self) -> Hours {
        self.hours
    }

    /// The holidays, in order.
    pub fn holidays(&self) -> &BTreeSet<NaiveDate> {
        &self.holidays
    }

    /// Whether the local date `date` is a workday that is not a holiday.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        self.workdays[date.weekday().num_days_from_monday() as usize]
            && !self.holidays.contains(&date)
    }

    /// Whether `t` falls in open time (the opening instant included, the closing excluded).
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let date = self.local_date(t);
        // The day before and after as well: around a daylight-saving change at midnight an
        // instant's local date and the day whose window holds it can differ.
        [date.pred_opt(), Some(date), date.succ_opt()]
            .into_iter()
            .flatten()
            .filter_map(|d| self.window(d))
            .any(|(open, close)| open <= t && t < close)
    }

    /// `t` itself when it is open time, else the next opening ("the survey waits for business
    /// hours"). [`NEVER`] when the calendar is not open in the next [`SEARCH_YEARS`].
    pub fn next_open(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.windows_from(t)
            .find(|(_, close)| *close > t)
            .map_or(NEVER, |(open, _)| open.max(t))
    }

    /// `from` plus `span`, the due time of something that waits `span`. What the kinds of span
    /// mean (the choices of ServiceDesk Plus' and Zammad's business-hours clocks):
    ///
    /// - [`Span::Wall`]: real elapsed time; the calendar plays no part ("1h" after 17:30 on a
    ///   Friday is 18:30 that Friday).
    /// - [`Span::BusinessTime`]: the clock runs only in open time, starting at `from`, or at the
    ///   next opening when `from` is outside it. A due time that falls exactly at a closing is
    ///   that closing, not the next opening: 4 business hours from 14:00 with hours 09:00-18:00
    ///   is 18:00 the same day.
    /// - [`Span::BusinessDays`]: the same local time of day, that many business days later;
    ///   from outside open time, counting starts at the next opening (2 business days from a
    ///   Friday 19:00 is Wednesday 09:00: Monday 09:00 plus two). When that local time does not
    ///   exist on the landing day (a daylight-saving gap) the result is the first instant after
    ///   the gap; when it occurs twice, its first occurrence.
    ///
    /// Saturates: [`NEVER`] when the calendar has no open time in the next [`SEARCH_YEARS`]
    /// or the result is past the end of chrono's range.
    pub fn add(&self, from: DateTime<Utc>, span: Span) -> DateTime<Utc> {
        match span {
            Span::Wall(d) => from.checked_add_signed(d).unwrap_or(NEVER),
            Span::BusinessTime(d) => self.add_business_time(from, d),
            Span::BusinessDays(n) => self.add_business_days(from, n),
        }
    }

    /// The open time between `a` and `b` (zero when `b` is not after `a`): what an SLA clock
    /// that stops outside business hours shows. The work is one step per local day between
    /// them.
    pub fn business_time_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> TimeDelta {
        if b <= a {
            return TimeDelta::zero();
        }
        let first = self.local_date(a);
        let first = first.pred_opt().unwrap_or(first);
        let last = self.local_date(b);
        let last = last.succ_opt().unwrap_or(last);
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .filter_map(|d| self.window(d))
            .map(|(open, close)| {
                let (start, end) = (open.max(a), close.min(b));
                if end > start {
                    end - start
                } else {
                    TimeDelta::zero()
                }
            })
            .fold(TimeDelta::zero(), |sum, d| sum + d)
    }

    fn add_business_time(&self, from: DateTime<Utc>, span: TimeDelta) -> DateTime<Utc> {
        let mut left = span.max(TimeDelta::zero());
        for (open, close) in self.windows_from(from) {
            if close <= from {
                continue;
            }
            let start = open.max(from);
            let available = close - start;
            if left <= available {
                return start + left;
            }
            left -= available;
        }
        NEVER
    }

    fn add_business_days(&self, from: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let start = self.next_open(from);
        if start == NEVER || days == 0 {
            return start;
        }
        let local = start.with_timezone(&self.timezone);
        let landing = local
            .date_naive()
            .iter_days()
            .skip(1)
            .take(SEARCH_DAYS)
            .filter(|d| self.is_business_day(*d))
            .nth(days as usize - 1);
        landing
            .and_then(|day| self.instant(day.and_time(local.time())))
            .unwrap_or(NEVER)
    }

    /// The open windows of the local dates from the day before `t`'s on, in order, for
    /// [`SEARCH_DAYS`] days.
    fn windows_from(&self, t: DateTime<Utc>) -> impl Iterator<Item = Window> + '_ {
        let date = self.local_date(t);
        date.pred_opt()
            .unwrap_or(date)
            .iter_days()
            .take(SEARCH_DAYS)
            .filter_map(|d| self.window(d))
    }

    /// The open window of the local date `date`: `None` on a day off, and when a
    /// daylight-saving gap swallows the whole range of hours.
    fn window(&self, date: NaiveDate) -> Option<Window> {
        if !self.is_business_day(date) {
            return None;
        }
        let at = |minutes: u32| {
            date.and_time(NaiveTime::MIN)
                .checked_add_signed(TimeDelta::minutes(i64::from(minutes)))
        };
        let open = self.instant(at(self.hours.open)?)?;
        let close = self.instant(at(self.hours.close)?)?;
        (open < close).then_some((open, close))
    }

    /// The instant the local clocks show `local`: its first occurrence when daylight saving
    /// repeats it, the first instant after the gap when daylight saving skips it. `None` only
    /// past the end of chrono's range.
    fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        if let Some(t) = self.timezone.from_local_datetime(&local).earliest() {
            return Some(t.with_timezone(&Utc));
        }
        // In a gap: the first whole minute that exists is the moment the clocks jumped (zones
        // change offset on whole minutes). No gap in the tz database is longer than a day
        // (Samoa skipped 2011-12-30), so two days of minutes always find it.
        let minute = local.with_second(0)?.with_nanosecond(0)?;
        (1..=2 * i64::from(DAY_MINUTES))
            .filter_map(|m| minute.checked_add_signed(TimeDelta::minutes(m)))
            .find_map(|l| self.timezone.from_local_datetime(&l).earliest())
            .map(|t| t.with_timezone(&Utc))
    }

    /// The local date of `t` in the calendar's time zone.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.timezone).date_naive()
    }

    /// The first instant of the local date `date` (local midnight, or the moment the clocks
    /// jump when daylight saving skips midnight): where a report's day begins. [`NEVER`] past
    /// the end of chrono's range.
    pub fn start_of_day(&self, date: NaiveDate) -> DateTime<Utc> {
        self.instant(date.and_time(NaiveTime::MIN)).unwrap_or(NEVER)
    }
}

#[cfg(test)]
mod tests {
    use chrono_tz::America::{Mexico_City, New_York};

    use super::*;

    const WEEKDAYS: [Weekday; 5] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    const EVERY_DAY: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// The instant a clock in `tz` shows this local time (which must exist once).
    fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn mx(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        local(Mexico_City, y, mo, d, h, mi)
    }

    fn ny(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        local(New_York, y, mo, d, h, mi)
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        local(Tz::UTC, y, mo, d, h, mi)
    }

    fn span(text: &str) -> Span {
        Span::parse(text).unwrap()
    }

    fn hours(h: i64) -> TimeDelta {
        TimeDelta::hours(h)
    }

    fn second() -> TimeDelta {
        TimeDelta::seconds(1)
    }

    /// The default calendar of `config/folio.toml`, with the holidays of the year's end.
    fn mexico() -> Calendar {
        Calendar::new(
            Mexico_City,
            &WEEKDAYS,
            Hours::parse("09:00-18:00").unwrap(),
            [date(2026, 12, 25), date(2027, 1, 1)],
        )
        .unwrap()
    }

    fn new_york(days: &[Weekday], h: &str) -> Calendar {
        Calendar::new(New_York, days, Hours::parse(h).unwrap(), []).unwrap()
    }

    #[test]
    fn spans_read_wall_and_business_time_and_print_canonically() {
        let cases = [
            ("90s", Span::Wall(TimeDelta::seconds(90)), "1m 30s"),
            ("5m", Span::Wall(TimeDelta::minutes(5)), "5m"),
            ("4h", Span::Wall(hours(4)), "4h"),
            ("24h", Span::Wall(hours(24)), "1d"),
            ("3 days", Span::Wall(TimeDelta::days(3)), "3d"),
            ("1 day", Span::Wall(TimeDelta::days(1)), "1d"),
            ("3 Days", Span::Wall(TimeDelta::days(3)), "3d"),
            ("2 weeks", Span::Wall(TimeDelta::days(14)), "14d"),
            ("1h 30m", Span::Wall(TimeDelta::minutes(90)), "1h 30m"),
            ("2 business days", Span::BusinessDays(2), "2 business days"),
            ("1 business day", Span::BusinessDays(1), "1 business day"),
            (
                "  2   Business   DAYS ",
                Span::BusinessDays(2),
                "2 business days",
            ),
            (
                "4 business hours",
                Span::BusinessTime(hours(4)),
                "4 business hours",
            ),
            (
                "1 business hour",
                Span::BusinessTime(hours(1)),
                "1 business hour",
            ),
            (
                "30 business minutes",
                Span::BusinessTime(TimeDelta::minutes(30)),
                "30 business minutes",
            ),
            (
                "120 business minutes",
                Span::BusinessTime(hours(2)),
                "2 business hours",
            ),
            ("2 días hábiles", Span::BusinessDays(2), "2 business days"),
            ("1 día hábil", Span::BusinessDays(1), "1 business day"),
            ("2 dias habiles", Span::BusinessDays(2), "2 business days"),
            (
                "4 horas hábiles",
                Span::BusinessTime(hours(4)),
                "4 business hours",
            ),
            (
                "30 MINUTOS HÁBILES",
                Span::BusinessTime(TimeDelta::minutes(30)),
                "30 business minutes",
            ),
        ];
        for (text, expected, canonical) in cases {
            assert_eq!(Span::parse(text), Ok(expected), "{text:?}");
            assert_eq!(expected.to_string(), canonical, "{text:?}");
            assert_eq!(canonical.parse::<Span>(), Ok(expected), "{canonical:?}");
        }
        assert!(span("2 business days").is_business());
        assert!(!span("2 days").is_business());
    }

    #[test]
    fn span_errors_say_what_is_accepted() {
        let e = Span::parse("soon").unwrap_err().to_string();
        assert!(e.contains("got \"soon\""), "{e}");
        for form in [
            "\"4h\"",
            "\"3 days\"",
            "\"2 business days\"",
            "\"4 horas hábiles\"",
        ] {
            assert!(e.contains(form), "{e}");
        }
        for text in [
            "2 business weeks",
            "business days",
            "1.5 business days",
            "-2 business days",
            "2 business_days",
            "2 business days ago",
            "two business days",
            "2 días",
        ] {
            assert_eq!(
                Span::parse(text),
                Err(SpanError::Unrecognised { text: text.into() })
            );
        }
        for text in ["0s", "0 business days", "0 horas hábiles"] {
            assert_eq!(
                Span::parse(text),
                Err(SpanError::Zero { text: text.into() })
            );
        }
        assert_eq!(
            Span::parse("1500ms"),
            Err(SpanError::SubSecond {
                text: "1500ms".into()
            })
        );
        assert_eq!(span("366 days"), Span::Wall(TimeDelta::days(366)));
        assert_eq!(span("8784 business hours"), Span::BusinessTime(hours(8784)));
        for text in [
            "367 days",
            "367 business days",
            "8785 business hours",
            "99999999999 business days",
        ] {
            assert_eq!(
                Span::parse(text),
                Err(SpanError::TooLong { text: text.into() })
            );
        }
    }

    #[test]
    fn hours_are_one_range_and_24_00_ends_the_day() {
        let h = Hours::parse("09:00-18:00").unwrap();
        assert_eq!(h.to_string(), "09:00-18:00");
        assert_eq!(
            " 9:00 - 18:30 ".parse::<Hours>().unwrap().to_string(),
            "09:00-18:30"
        );
        assert_eq!(Hours::parse("00:00-24:00"), Ok(Hours::WHOLE_DAY));
        assert_eq!(Hours::WHOLE_DAY.to_string(), "00:00-24:00");
        for text in [
            "9-18",
            "09:00",
            "09:00-18",
            "09:60-18:00",
            "09:00-24:01",
            "25:00-26:00",
            "0900-1800",
            "09:0-18:00",
            "a:00-18:00",
            "",
        ] {
            assert_eq!(
                Hours::parse(text),
                Err(CalendarError::HoursSyntax { text: text.into() })
            );
        }
        for text in ["18:00-09:00", "09:00-09:00", "24:00-24:00"] {
            assert_eq!(
                Hours::parse(text),
                Err(CalendarError::HoursOrder { text: text.into() })
            );
        }
    }

    #[test]
    fn a_calendar_needs_a_workday() {
        assert_eq!(
            Calendar::new(Tz::UTC, &[], Hours::WHOLE_DAY, []),
            Err(CalendarError::NoWorkdays)
        );
        let c = mexico();
        assert_eq!(c.workdays(), WEEKDAYS.to_vec());
        assert_eq!(c.timezone(), Mexico_City);
        assert_eq!(c.hours().to_string(), "09:00-18:00");
        assert_eq!(c.holidays().len(), 2);
    }

    #[test]
    fn weekends_are_closed_and_business_time_waits_for_monday() {
        let c = mexico();
        // Mexico City keeps UTC-6 all year (no daylight saving since 2022).
        assert_eq!(mx(2026, 3, 6, 9, 0), utc(2026, 3, 6, 15, 0));
        assert!(c.is_open(mx(2026, 3, 6, 17, 0)), "Friday afternoon");
        assert!(!c.is_open(mx(2026, 3, 7, 11, 0)), "Saturday");
        assert!(!c.is_open(mx(2026, 3, 8, 11, 0)), "Sunday");
        assert_eq!(c.next_open(mx(2026, 3, 7, 11, 0)), mx(2026, 3, 9, 9, 0));
        // Two hours on Friday, two on Monday.
        assert_eq!(
            c.add(mx(2026, 3, 6, 16, 0), span("4 business hours")),
            mx(2026, 3, 9, 11, 0)
        );
        assert_eq!(
            c.add(mx(2026, 3, 7, 11, 0), span("30 business minutes")),
            mx(2026, 3, 9, 9, 30)
        );
        assert_eq!(
            c.business_time_between(mx(2026, 3, 6, 17, 0), mx(2026, 3, 9, 10, 0)),
            hours(2)
        );
        // Wall time ignores the calendar.
        assert_eq!(
            c.add(mx(2026, 3, 6, 17, 30), span("1h")),
            mx(2026, 3, 6, 18, 30)
        );
        assert_eq!(
            c.add(mx(2026, 3, 6, 17, 30), span("2 days")),
            mx(2026, 3, 8, 17, 30)
        );
    }

    #[test]
    fn business_days_keep_the_time_of_day_from_the_next_opening() {
        let c = mexico();
        // Friday 19:00 is closed: Monday 09:00 plus two business days.
        assert_eq!(
            c.add(mx(2026, 3, 6, 19, 0), span("2 business days")),
            mx(2026, 3, 11, 9, 0)
        );
        assert_eq!(
            c.add(mx(2026, 3, 6, 10, 30), span("2 business days")),
            mx(2026, 3, 10, 10, 30)
        );
        assert_eq!(
            c.add(mx(2026, 3, 7, 12, 0), span("1 business day")),
            mx(2026, 3, 10, 9, 0),
            "Saturday counts from Monday's opening"
        );
        assert_eq!(
            c.add(mx(2026, 3, 9, 7, 0), span("1 business day")),
            mx(2026, 3, 10, 9, 0),
            "before the opening counts from the opening"
        );
        assert_eq!(
            c.add(mx(2026, 3, 9, 17, 59), span("5 business days")),
            mx(2026, 3, 16, 17, 59)
        );
    }

    #[test]
    fn the_opening_is_open_and_the_closing_is_not() {
        let c = mexico();
        let (opening, closing) = (mx(2026, 3, 9, 9, 0), mx(2026, 3, 9, 18, 0));
        assert!(c.is_open(opening));
        assert!(!c.is_open(opening - second()));
        assert!(c.is_open(closing - second()));
        assert!(!c.is_open(closing));
        assert_eq!(c.next_open(opening), opening);
        assert_eq!(c.next_open(opening - second()), opening);
        assert_eq!(c.next_open(closing), mx(2026, 3, 10, 9, 0));
        // A due time that falls exactly at the closing is the closing, not the next opening.
        assert_eq!(
            c.add(mx(2026, 3, 9, 14, 0), span("4 business hours")),
            closing
        );
        assert_eq!(c.add(opening, span("9 business hours")), closing);
        assert_eq!(
            c.add(mx(2026, 3, 9, 14, 0) + second(), span("4 business hours")),
            mx(2026, 3, 10, 9, 0) + second()
        );
        assert_eq!(
            c.add(closing, span("1 business minute")),
            mx(2026, 3, 10, 9, 1)
        );
        assert_eq!(c.business_time_between(opening, closing), hours(9));
        assert_eq!(
            c.business_time_between(opening - hours(1), closing + hours(1)),
            hours(9)
        );
    }

    #[test]
    fn the_years_end_skips_weekends_and_both_holidays() {
        let c = mexico();
        let christmas_eve = mx(2026, 12, 24, 10, 0); // a Thursday
        assert!(!c.is_business_day(date(2026, 12, 25)));
        assert!(!c.is_open(mx(2026, 12, 25, 10, 0)), "Christmas, a Friday");
        assert!(!c.is_open(mx(2027, 1, 1, 10, 0)), "New Year, a Friday");
        assert_eq!(c.next_open(mx(2026, 12, 24, 18, 0)), mx(2026, 12, 28, 9, 0));
        assert_eq!(
            c.add(christmas_eve, span("4 business days")),
            mx(2026, 12, 31, 10, 0)
        );
        assert_eq!(
            c.add(christmas_eve, span("5 business days")),
            mx(2027, 1, 4, 10, 0)
        );
        assert_eq!(
            c.add(mx(2026, 12, 31, 17, 0), span("2 business hours")),
            mx(2027, 1, 4, 10, 0)
        );
        // Open on the 24th, 28th, 29th, 30th and 31st: nine hours each.
        assert_eq!(
            c.business_time_between(mx(2026, 12, 24, 9, 0), mx(2027, 1, 4, 9, 0)),
            hours(5 * 9)
        );
    }

    #[test]
    fn business_time_follows_the_local_clock_across_daylight_saving() {
        let c = new_york(&WEEKDAYS, "09:00-18:00");
        // Spring: on Sunday 2027-03-14 the clocks go from 02:00 to 03:00. The opening stays at
        // 09:00 local time; in UTC it moves an hour earlier.
        assert_eq!(ny(2027, 3, 12, 9, 0), utc(2027, 3, 12, 14, 0));
        assert_eq!(ny(2027, 3, 15, 9, 0), utc(2027, 3, 15, 13, 0));
        assert_eq!(c.next_open(ny(2027, 3, 13, 12, 0)), utc(2027, 3, 15, 13, 0));
        assert_eq!(
            c.add(ny(2027, 3, 12, 10, 0), span("1 business day")),
            ny(2027, 3, 15, 10, 0)
        );
        assert_eq!(
            c.add(ny(2027, 3, 12, 17, 0), span("2 business hours")),
            ny(2027, 3, 15, 10, 0)
        );
        // Autumn: on Sunday 2027-11-07 the clocks go from 02:00 back to 01:00.
        assert_eq!(ny(2027, 11, 5, 9, 0), utc(2027, 11, 5, 13, 0));
        assert_eq!(ny(2027, 11, 8, 9, 0), utc(2027, 11, 8, 14, 0));
        assert_eq!(
            c.add(ny(2027, 11, 5, 10, 0), span("1 business day")),
            ny(2027, 11, 8, 10, 0)
        );
        assert_eq!(
            c.business_time_between(ny(2027, 11, 5, 17, 0), ny(2027, 11, 8, 10, 0)),
            hours(2)
        );
    }

    #[test]
    fn a_whole_day_calendar_has_days_of_23_and_25_hours() {
        let c = new_york(&EVERY_DAY, "00:00-24:00");
        assert_eq!(
            c.business_time_between(ny(2027, 3, 14, 0, 0), ny(2027, 3, 15, 0, 0)),
            hours(23)
        );
        assert_eq!(
            c.business_time_between(ny(2027, 11, 7, 0, 0), ny(2027, 11, 8, 0, 0)),
            hours(25)
        );
        // Always open, so business time is wall time across the change.
        let jump = utc(2027, 3, 14, 7, 0); // 03:00 EDT, the instant after 01:59:59 EST
                                           // 06:30 UTC is the second 01:30 of 2027-11-07 (standard time).
        for t in [jump - second(), jump, utc(2027, 11, 7, 6, 30)] {
            assert!(c.is_open(t), "{t}");
            assert_eq!(c.next_open(t), t);
        }
        let evening = ny(2027, 3, 13, 22, 0);
        assert_eq!(c.add(evening, span("6 business hours")), evening + hours(6));
        // 02:30 does not exist on 2027-03-14: a business day after 02:30 on the 13th is the
        // first instant after the gap.
        assert_eq!(c.add(ny(2027, 3, 13, 2, 30), span("1 business day")), jump);
        // 01:30 happens twice on 2027-11-07: its first occurrence, still daylight time.
        assert_eq!(
            c.add(ny(2027, 11, 6, 1, 30), span("1 business day")),
            utc(2027, 11, 7, 5, 30)
        );
    }

    #[test]
    fn hours_that_start_in_a_gap_open_when_the_clocks_jump() {
        let c = new_york(&EVERY_DAY, "02:00-04:00");
        let jump = utc(2027, 3, 14, 7, 0); // 03:00 EDT
        assert_eq!(c.next_open(ny(2027, 3, 14, 0, 0)), jump);
        assert!(!c.is_open(jump - second()));
        assert!(c.is_open(jump));
        assert_eq!(
            c.business_time_between(ny(2027, 3, 14, 0, 0), ny(2027, 3, 15, 0, 0)),
            hours(1)
        );
        assert_eq!(
            c.business_time_between(ny(2027, 3, 13, 0, 0), ny(2027, 3, 14, 0, 0)),
            hours(2)
        );
    }

    #[test]
    fn the_always_open_calendar_makes_business_time_wall_time() {
        let c = Calendar::always();
        let t = utc(2026, 12, 25, 23, 59);
        assert!(c.is_open(t));
        assert_eq!(c.next_open(t), t);
        assert_eq!(c.add(t, span("4 business hours")), t + hours(4));
        assert_eq!(c.add(t, span("2 business days")), t + TimeDelta::days(2));
        let later = t + TimeDelta::days(3) + hours(1);
        assert_eq!(c.business_time_between(t, later), later - t);
        assert_eq!(c.workdays(), EVERY_DAY.to_vec());
        assert_eq!(c.hours(), Hours::WHOLE_DAY);
    }

    #[test]
    fn business_time_between_undoes_add_and_adds_up() {
        let c = mexico();
        let (a, m, b) = (
            mx(2026, 12, 23, 16, 0),
            mx(2026, 12, 31, 12, 0),
            mx(2027, 1, 5, 11, 0),
        );
        assert_eq!(c.business_time_between(b, a), TimeDelta::zero());
        assert_eq!(c.business_time_between(a, a), TimeDelta::zero());
        assert_eq!(
            c.business_time_between(a, m) + c.business_time_between(m, b),
            c.business_time_between(a, b)
        );
        // From every hour of two weeks around the year's end (open or not, holiday or not).
        let start = mx(2026, 12, 21, 0, 17);
        for h in 0..14 * 24 {
            let from = start + hours(h);
            for text in ["1 business minute", "4 business hours", "25 business hours"] {
                let Span::BusinessTime(length) = span(text) else {
                    unreachable!("{text} is business time")
                };
                let due = c.add(from, span(text));
                assert_eq!(
                    c.business_time_between(from, due),
                    length,
                    "{from} + {text}"
                );
                assert!(c.is_open(due - second()), "{from} + {text} = {due}");
            }
            let due = c.add(from, span("2 business days"));
            assert!(c.is_open(due), "{from} + 2 business days = {due}");
            assert_eq!(c.business_time_between(from, due), hours(18), "{from}");
        }
    }

    #[test]
    fn a_calendar_never_open_for_ten_years_saturates_at_never() {
        let t = utc(2026, 1, 1, 0, 0);
        let every_day = date(2026, 1, 1).iter_days().take(11 * 366);
        let c = Calendar::new(Tz::UTC, &[Weekday::Mon], Hours::WHOLE_DAY, every_day).unwrap();
        assert!(!c.is_open(t));
        assert_eq!(c.next_open(t), NEVER);
        assert_eq!(c.add(t, span("1 business hour")), NEVER);
        assert_eq!(c.add(t, span("1 business day")), NEVER);
        assert_eq!(
            c.business_time_between(t, t + TimeDelta::days(400)),
            TimeDelta::zero()
        );
        assert_eq!(c.add(t, span("1h")), t + hours(1), "wall time still passes");
        // The end of chrono's range saturates too.
        assert_eq!(Calendar::always().add(NEVER - hours(1), span("2h")), NEVER);
        assert_eq!(
            Calendar::always().add(NEVER - hours(1), span("1 business day")),
            NEVER
        );
    }

    #[test]
    fn a_day_starts_at_local_midnight_or_when_the_clocks_jump_past_it() {
        assert_eq!(
            mexico().start_of_day(date(2026, 11, 30)),
            mx(2026, 11, 30, 0, 0)
        );
        assert_eq!(
            mexico().local_date(mx(2026, 11, 30, 23, 59)),
            date(2026, 11, 30)
        );
        assert_eq!(
            mexico().local_date(utc(2026, 12, 1, 5, 59)),
            date(2026, 11, 30)
        );
        // São Paulo skipped midnight on 2018-11-04 (00:00 BRT became 01:00 BRST): the day
        // began at 01:00 local, 03:00 UTC.
        let sao_paulo = Calendar::new(
            chrono_tz::America::Sao_Paulo,
            &WEEKDAYS,
            Hours::WHOLE_DAY,
            [],
        )
        .unwrap();
        assert_eq!(
            sao_paulo.start_of_day(date(2018, 11, 4)),
            utc(2018, 11, 4, 3, 0)
        );
    }
}
