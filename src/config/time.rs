//! The sections about when things happen: `[calendar]` (when the help desk is open),
//! `[lifecycle]` (how long a ticket's automatic steps wait) and `[schedule]` (when the daemon
//! looks for due work). Like every section, each problem is reported with the file and key and
//! replaced by a usable stand-in, so all of them are listed at once.

use std::path::Path;

use chrono::{NaiveDate, Weekday};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};

use super::raw::{RawCalendar, RawLifecycle, RawPerPriority, RawSchedule, RawSla};
use super::validator::Validator;
use super::{Lifecycle, Schedule, Sla};
use crate::calendar::{Calendar, CalendarError, Hours, Span};
use crate::fold::fold;

/// `calendar.timezone` when not set: the institution is in the State of Mexico.
const DEFAULT_TIMEZONE: Tz = Tz::America__Mexico_City;
/// `calendar.workdays` when not set.
const DEFAULT_WORKDAYS: [Weekday; 5] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
];
/// `calendar.hours` when not set.
const DEFAULT_HOURS: &str = "09:00-18:00";

/// The names of the days as an admin may write them (folded: lower case, no accents), in
/// English and Spanish, short and long.
const DAY_NAMES: &[(&str, Weekday)] = &[
    ("mon", Weekday::Mon),
    ("monday", Weekday::Mon),
    ("lun", Weekday::Mon),
    ("lunes", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("tuesday", Weekday::Tue),
    ("mar", Weekday::Tue),
    ("martes", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("wednesday", Weekday::Wed),
    ("mie", Weekday::Wed),
    ("miercoles", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("thursday", Weekday::Thu),
    ("jue", Weekday::Thu),
    ("jueves", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("friday", Weekday::Fri),
    ("vie", Weekday::Fri),
    ("viernes", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("saturday", Weekday::Sat),
    ("sab", Weekday::Sat),
    ("sabado", Weekday::Sat),
    ("sun", Weekday::Sun),
    ("sunday", Weekday::Sun),
    ("dom", Weekday::Sun),
    ("domingo", Weekday::Sun),
];

/// How a date is written, for messages.
const DATE_FORM: &str = "a date like \"2026-12-25\" (YYYY-MM-DD)";

impl Validator<'_> {
    /// `[calendar]`; with problems, the parts at fault fall back to their defaults.
    pub(super) fn calendar(&mut self, c: RawCalendar) -> Calendar {
        let timezone = self.timezone(c.timezone);
        let workdays = self.workdays(c.workdays);
        let hours_text = c.hours.unwrap_or_else(|| DEFAULT_HOURS.into());
        let hours = Hours::parse(&hours_text).unwrap_or_else(|e| {
            self.issue("calendar.hours", e);
            Hours::WHOLE_DAY
        });
        let mut holidays = Vec::new();
        for (i, value) in c.holidays.unwrap_or_default().iter().enumerate() {
            match holiday(value) {
                Some(date) => holidays.push(date),
                None => self.issue(
                    "calendar.holidays",
                    format!("element {}: expected {DATE_FORM}, got {value}", i + 1),
                ),
            }
        }
        if let Some(file) = c.holidays_file {
            holidays.extend(self.holidays_file(&file));
        }
        Calendar::new(timezone, &workdays, hours, holidays).unwrap_or_else(|e| {
            // Unreachable after the checks above (workdays fall back to the default list);
            // the stand-in keeps validation going all the same.
            self.issue("calendar", e);
            Calendar::always()
        })
    }

    /// `calendar.timezone`: an IANA name; a name right but for its case gets a suggestion.
    fn timezone(&mut self, value: Option<String>) -> Tz {
        let Some(name) = value else {
            return DEFAULT_TIMEZONE;
        };
        let name = name.trim();
        if let Ok(tz) = name.parse::<Tz>() {
            return tz;
        }
        let hint = chrono_tz::TZ_VARIANTS
            .iter()
            .find(|tz| tz.name().eq_ignore_ascii_case(name))
            .map(|tz| format!("; did you mean {:?}?", tz.name()))
            .unwrap_or_default();
        self.issue(
            "calendar.timezone",
            format!(
                "unknown time zone {name:?}: expected an IANA name like \"America/Mexico_City\" \
                 (case matters){hint}"
            ),
        );
        DEFAULT_TIMEZONE
    }

    /// `calendar.workdays`: day names in English or Spanish; the default when the list has no
    /// usable day.
    fn workdays(&mut self, value: Option<Vec<String>>) -> Vec<Weekday> {
        let Some(words) = value else {
            return DEFAULT_WORKDAYS.to_vec();
        };
        if words.is_empty() {
            self.issue("calendar.workdays", CalendarError::NoWorkdays);
        }
        let mut days = Vec::new();
        for word in &words {
            let folded = fold(word.trim());
            match DAY_NAMES.iter().find(|(name, _)| *name == folded) {
                Some((_, day)) => days.push(*day),
                None => self.issue(
                    "calendar.workdays",
                    format!(
                        "{word:?} is not a day of the week: expected \"mon\", \"tue\", \"wed\", \
                         \"thu\", \"fri\", \"sat\", \"sun\" or \"lun\", \"mar\", \"mié\", \
                         \"jue\", \"vie\", \"sáb\", \"dom\""
                    ),
                ),
            }
        }
        if days.is_empty() {
            DEFAULT_WORKDAYS.to_vec()
        } else {
            days
        }
    }

    /// `calendar.holidays_file`: one date per line; `#` starts a comment (a whole line, or
    /// after the date: `2026-12-25  # Navidad`); blank lines are ignored. Problems name the
    /// file and line.
    fn holidays_file(&mut self, file: &Path) -> Vec<NaiveDate> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                self.issue(
                    "calendar.holidays_file",
                    format!("cannot read {}: {e}", file.display()),
                );
                return Vec::new();
            }
        };
        let mut dates = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or_default().trim();
            if entry.is_empty() {
                continue;
            }
            match parse_date(entry) {
                Some(date) => dates.push(date),
                None => self.issue(
                    "calendar.holidays_file",
                    format!(
                        "{}:{}: expected {DATE_FORM}, got {entry:?}",
                        file.display(),
                        i + 1
                    ),
                ),
            }
        }
        dates
    }

    /// `[lifecycle]`; the `Default` of [`Lifecycle`] is this of an empty section.
    pub(super) fn lifecycle(&mut self, l: RawLifecycle) -> Lifecycle {
        Lifecycle {
            confirm_reminder_after: self.span(
                "lifecycle.confirm_reminder_after",
                l.confirm_reminder_after,
                "2 business days",
            ),
            auto_close_after: self.span(
                "lifecycle.auto_close_after",
                l.auto_close_after,
                "5 business days",
            ),
            survey_after: self.span("lifecycle.survey_after", l.survey_after, "1h"),
            survey_reminder_after: self.span(
                "lifecycle.survey_reminder_after",
                l.survey_reminder_after,
                "3 business days",
            ),
        }
    }

    /// `[sla]`; the `Default` of [`Sla`] is this of an empty section.
    pub(super) fn sla(&mut self, s: RawSla) -> Sla {
        let per_priority = |v: &mut Self, what: &str, raw: RawPerPriority, defaults: [&str; 4]| {
            let values = [raw.baja, raw.media, raw.alta, raw.critica];
            let mut out = [Span::BusinessDays(1); 4];
            for (i, ((value, level), default)) in values
                .into_iter()
                .zip(["baja", "media", "alta", "critica"])
                .zip(defaults)
                .enumerate()
            {
                out[i] = v.span(&format!("sla.{what}.{level}"), value, default);
            }
            out
        };
        let first_response = per_priority(
            self,
            "first_response",
            s.first_response,
            [
                "1 business day",
                "4 business hours",
                "2 business hours",
                "30 business minutes",
            ],
        );
        let resolution = per_priority(
            self,
            "resolution",
            s.resolution,
            [
                "10 business days",
                "5 business days",
                "2 business days",
                "1 business day",
            ],
        );
        let warn_at_percent = match s.warn_at_percent {
            None => 75,
            Some(p) if (1..=99).contains(&p) => p as u8,
            Some(p) => {
                self.issue(
                    "sla.warn_at_percent",
                    format!(
                        "{p} is not a share of a target: use 1 to 99 (75 warns at three quarters)"
                    ),
                );
                75
            }
        };
        Sla {
            first_response,
            resolution,
            warn_at_percent,
            unassigned_after: self.span(
                "sla.unassigned_after",
                s.unassigned_after,
                "1 business hour",
            ),
        }
    }

    /// `[schedule]`; the `Default` of [`Schedule`] is this of an empty section.
    pub(super) fn schedule(&mut self, s: RawSchedule) -> Schedule {
        Schedule {
            sweep: self.cron("schedule.sweep", s.sweep, "0 * * * * *"),
            technician_digest: self.cron(
                "schedule.technician_digest",
                s.technician_digest,
                "0 0 8 * * Mon-Fri",
            ),
            weekly_summary: self.cron("schedule.weekly_summary", s.weekly_summary, "0 0 9 * * Mon"),
        }
    }

    /// A span in wall or business time (`"1h"`, `"2 business days"`).
    fn span(&mut self, key: &str, value: Option<String>, default: &str) -> Span {
        let text = value.unwrap_or_else(|| default.to_string());
        Span::parse(&text).unwrap_or_else(|e| {
            self.issue(key, e);
            Span::BusinessDays(1)
        })
    }

    /// A cron expression the scheduler will accept, checked with the very parser
    /// tokio-cron-scheduler 0.15 builds in `Job::new` (seconds required, day of month AND day
    /// of week), so a file that validates is one the daemon can schedule. Returned trimmed.
    fn cron(&mut self, key: &str, value: Option<String>, default: &str) -> String {
        let text = value
            .unwrap_or_else(|| default.to_string())
            .trim()
            .to_string();
        let fields: Vec<&str> = text.split_whitespace().collect();
        let parsed = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&text);
        match parsed {
            Ok(_) => {}
            // The usual mistake: classic five-field cron, which the scheduler refuses.
            Err(_) if fields.len() == 5 => self.issue(
                key,
                format!(
                    "{text:?} has five fields, but the seconds field comes first \
                     (sec min hour day month weekday): add a seconds field: \"0 {}\"",
                    fields.join(" ")
                ),
            ),
            Err(e) => self.issue(
                key,
                format!(
                    "{text:?} is not a schedule tokio-cron-scheduler accepts ({e}): expected six \
                     fields, the seconds field first (sec min hour day month weekday), like \
                     \"0 0 8 * * Mon-Fri\" (day and month names in English)"
                ),
            ),
        }
        text
    }
}

/// A holiday in `calendar.holidays`: a string `"2026-12-25"` or a TOML date `2026-12-25`.
fn holiday(value: &toml::Value) -> Option<NaiveDate> {
    match value {
        toml::Value::String(s) => parse_date(s.trim()),
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
            let d = dt.date?;
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        }
        _ => None,
    }
}

/// Exactly `YYYY-MM-DD` (chrono alone would take `2026-1-5` or `+2026-01-05`), and a real day.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let shape = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shape
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Span;
    use crate::config::tests::{error_of, minimal, NoEnv};
    use crate::config::Config;

    #[test]
    fn dates_are_exactly_yyyy_mm_dd_and_real() {
        assert_eq!(
            parse_date("2026-12-25"),
            NaiveDate::from_ymd_opt(2026, 12, 25)
        );
        for bad in [
            "2026-1-5",
            "2026-13-01",
            "2027-02-29",
            "+2026-01-05",
            "25/12/2026",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn day_names_cover_english_and_spanish_with_or_without_accents() {
        let mut v = Validator::new(Path::new("f.toml"));
        let words = [
            "Mon", "martes", "mié", "MIE", "Jue", "vie", "sáb", "dom", "Sunday",
        ];
        let days = v.workdays(Some(words.iter().map(|w| w.to_string()).collect()));
        assert_eq!(
            days,
            vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
                Weekday::Sun,
            ]
        );
        assert!(v.into_issues().is_empty());
    }

    #[test]
    fn the_cron_check_agrees_with_the_scheduler_on_fields() {
        let mut v = Validator::new(Path::new("f.toml"));
        for ok in [
            "0 * * * * *",
            "0 0 8 * * Mon-Fri",
            "0 0 9 * * MON",
            "0 30 7 1 * * 2027",
        ] {
            assert_eq!(v.cron("k", Some(format!(" {ok} ")), "x"), ok);
        }
        assert!(v.into_issues().is_empty());
        let mut v = Validator::new(Path::new("f.toml"));
        v.cron(
            "schedule.technician_digest",
            Some("0 8 * * Mon-Fri".into()),
            "x",
        );
        v.cron("schedule.sweep", Some("every minute".into()), "x");
        v.cron(
            "schedule.weekly_summary",
            Some("0 0 25 * * Mon".into()),
            "x",
        );
        let issues = v.into_issues();
        assert_eq!(
            issues[0],
            "f.toml: schedule.technician_digest: \"0 8 * * Mon-Fri\" has five fields, but the \
             seconds field comes first (sec min hour day month weekday): add a seconds field: \
             \"0 0 8 * * Mon-Fri\""
        );
        assert!(issues[1].starts_with("f.toml: schedule.sweep: \"every minute\" is not a schedule"));
        assert!(
            issues[1].contains("the seconds field first"),
            "{}",
            issues[1]
        );
        assert!(
            issues[2].starts_with("f.toml: schedule.weekly_summary: "),
            "{}",
            issues[2]
        );
        assert_eq!(issues.len(), 3);
    }

    #[test]
    fn calendar_lifecycle_and_schedule_default_to_the_documented_values() {
        let c = Config::parse(Path::new("f.toml"), &minimal(), &NoEnv).unwrap();
        assert_eq!(c.calendar.timezone(), chrono_tz::America::Mexico_City);
        assert_eq!(
            c.calendar.workdays(),
            vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
        );
        assert_eq!(c.calendar.hours().to_string(), "09:00-18:00");
        assert!(c.calendar.holidays().is_empty());
        assert_eq!(c.lifecycle, Lifecycle::default());
        assert_eq!(c.lifecycle.confirm_reminder_after, Span::BusinessDays(2));
        assert_eq!(c.lifecycle.auto_close_after, Span::BusinessDays(5));
        assert_eq!(
            c.lifecycle.survey_after,
            Span::Wall(chrono::TimeDelta::hours(1))
        );
        assert_eq!(c.lifecycle.survey_reminder_after, Span::BusinessDays(3));
        assert_eq!(c.schedule, Schedule::default());
        assert_eq!(c.schedule.sweep, "0 * * * * *");
        assert_eq!(c.schedule.technician_digest, "0 0 8 * * Mon-Fri");
        assert_eq!(c.schedule.weekly_summary, "0 0 9 * * Mon");
    }

    #[test]
    fn calendar_sections_read_what_the_example_file_shows() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("holidays.txt");
        std::fs::write(
            &file,
            "# Días de asueto\n\n2026-09-16  # Independencia\n  2026-11-02\n",
        )
        .unwrap();
        let text = minimal()
            + &format!(
                "[calendar]\ntimezone = \"America/Tijuana\"\nworkdays = [\"lun\", \"mar\", \"mié\", \"jue\", \"vie\", \"sáb\"]\n\
                 hours = \"08:30-15:00\"\nholidays = [\"2026-12-25\", 2027-01-01]\nholidays_file = {:?}\n\
                 [lifecycle]\nconfirm_reminder_after = \"4 horas hábiles\"\nauto_close_after = \"3 days\"\n\
                 [schedule]\nsweep = \"*/30 * * * * *\"\n",
                file.display().to_string()
            );
        let c = Config::parse(Path::new("f.toml"), &text, &NoEnv).unwrap();
        assert_eq!(c.calendar.timezone(), chrono_tz::America::Tijuana);
        assert_eq!(c.calendar.workdays().len(), 6);
        assert_eq!(c.calendar.hours().to_string(), "08:30-15:00");
        let holidays: Vec<String> = c
            .calendar
            .holidays()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            holidays,
            ["2026-09-16", "2026-11-02", "2026-12-25", "2027-01-01"]
        );
        assert_eq!(
            c.lifecycle.confirm_reminder_after,
            Span::BusinessTime(chrono::TimeDelta::hours(4))
        );
        assert_eq!(
            c.lifecycle.auto_close_after,
            Span::Wall(chrono::TimeDelta::days(3))
        );
        assert_eq!(c.schedule.sweep, "*/30 * * * * *");
    }

    #[test]
    fn each_calendar_problem_names_its_key() {
        let cases = [
            (
                "[calendar]\ntimezone = \"America/Mexico\"\n",
                "f.toml: calendar.timezone: unknown time zone \"America/Mexico\"",
            ),
            (
                "[calendar]\ntimezone = \"america/mexico_city\"\n",
                "did you mean \"America/Mexico_City\"?",
            ),
            (
                "[calendar]\nhours = \"18:00-09:00\"\n",
                "f.toml: calendar.hours: the opening must be before the closing",
            ),
            (
                "[calendar]\nhours = \"9-18\"\n",
                "f.toml: calendar.hours: expected opening and closing times like \"09:00-18:00\"",
            ),
            (
                "[calendar]\nworkdays = [\"mon\", \"funday\"]\n",
                "f.toml: calendar.workdays: \"funday\" is not a day of the week",
            ),
            (
                "[calendar]\nworkdays = []\n",
                "f.toml: calendar.workdays: at least one workday is needed",
            ),
            (
                "[calendar]\nholidays = [\"2026-12-25\", \"2026-13-01\"]\n",
                "f.toml: calendar.holidays: element 2: expected a date like \"2026-12-25\" \
                 (YYYY-MM-DD), got \"2026-13-01\"",
            ),
            (
                "[calendar]\nholidays_file = \"/nonexistent/holidays.txt\"\n",
                "f.toml: calendar.holidays_file: cannot read /nonexistent/holidays.txt",
            ),
            (
                "[lifecycle]\nauto_close_after = \"5 business weeks\"\n",
                "f.toml: lifecycle.auto_close_after: expected a duration like \"90s\"",
            ),
            (
                "[lifecycle]\nsurvey_after = \"0s\"\n",
                "f.toml: lifecycle.survey_after: must be greater than zero",
            ),
            (
                "[schedule]\ntechnician_digest = \"0 8 * * Mon-Fri\"\n",
                "f.toml: schedule.technician_digest: \"0 8 * * Mon-Fri\" has five fields, but \
                 the seconds field comes first (sec min hour day month weekday): add a seconds \
                 field: \"0 0 8 * * Mon-Fri\"",
            ),
            (
                "[schedule]\nsweep = \"0 61 * * * *\"\n",
                "f.toml: schedule.sweep: \"0 61 * * * *\" is not a schedule tokio-cron-scheduler accepts",
            ),
        ];
        for (section, expected) in cases {
            let e = error_of("f.toml", &(minimal() + section));
            assert!(e.contains(expected), "{section}\n{e}");
        }
    }

    #[test]
    fn a_bad_line_of_the_holidays_file_is_named_with_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("holidays.txt");
        std::fs::write(&file, "2026-12-25\n# comment\n25/12/2026\n").unwrap();
        let text = minimal()
            + &format!(
                "[calendar]\nholidays_file = {:?}\n",
                file.display().to_string()
            );
        let e = error_of("f.toml", &text);
        assert!(
            e.contains(&format!(
                "f.toml: calendar.holidays_file: {}:3: expected a date like \"2026-12-25\" \
                 (YYYY-MM-DD), got \"25/12/2026\"",
                file.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_in_the_new_sections_are_errors() {
        for section in [
            "[calendar]\nzone = \"UTC\"\n",
            "[lifecycle]\nclose_after = \"1h\"\n",
            "[schedule]\ndigest = \"0 * * * * *\"\n",
        ] {
            let e = error_of("f.toml", &(minimal() + section));
            assert!(e.contains("unknown field"), "{e}");
        }
    }
}
