//! Cron schedules: the one place that turns what a person writes in `heartbeat.yml` into the
//! form the `cron` crate evaluates, so the config check and the scheduler agree, and the
//! arithmetic the scheduler does with it ([`CronSchedule`]) on epoch-millisecond instants.
//!
//! People write standard 5-field cron (`minute hour day-of-month month day-of-week`, Sunday is
//! 0 or 7). The `cron` crate wants seconds first (6 or 7 fields) and numbers Sunday 1 through
//! Saturday 7. Prefixing a `0` seconds field alone would silently move every numeric weekday
//! by one day (`* * * * 1`, Monday, would run on Sundays), so numeric day-of-week items are
//! translated as well. Standard cron also runs when *either* a restricted day-of-month or a
//! restricted day-of-week matches, while the `cron` crate needs *both*; rather than change the
//! meaning, such 5-field expressions are refused with a hint to split them. This translation is
//! hand-written because no published crate converts between the two dialects; the parsing and
//! evaluation itself stays with the `cron` crate.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// A checked schedule, ready for arithmetic on epoch-millisecond instants.
///
/// Expressions are evaluated in UTC, and fire on whole seconds: every instant this returns is
/// a multiple of 1000 ms.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    normalized: String,
    schedule: cron::Schedule,
}

impl CronSchedule {
    /// Checks `written` (as in `heartbeat.yml`) and prepares it; see [`normalize_schedule`].
    pub fn parse(written: &str) -> Result<Self> {
        let normalized = normalize_schedule(written)?;
        Self::from_normalized(&normalized)
    }

    /// Prepares an expression already in the `cron` crate's form (as stored in state.db).
    pub fn from_normalized(normalized: &str) -> Result<Self> {
        let schedule =
            cron::Schedule::from_str(normalized).map_err(|error| Error::InvalidSchedule {
                schedule: normalized.to_owned(),
                reason: error
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            })?;
        Ok(Self {
            normalized: normalized.to_owned(),
            schedule,
        })
    }

    /// The expression in the `cron` crate's 6/7-field form.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The first firing strictly after `at_ms`, or `None` when there is none (a 7-field
    /// expression past its last year, or beyond the representable range).
    pub fn next_after(&self, at_ms: i64) -> Option<i64> {
        // Firings fall on whole seconds, so flooring to the second loses nothing: the first
        // firing after the floor is also the first one after `at_ms`.
        let after = whole_second(at_ms.div_euclid(1000))?;
        self.schedule
            .after(&after)
            .next()
            .map(|fire| fire.timestamp_millis())
    }

    /// The first firing at or after `at_ms`.
    pub fn first_at_or_after(&self, at_ms: i64) -> Option<i64> {
        self.next_after(at_ms.checked_sub(1)?)
    }

    /// The latest firing at or before `at_ms`, or `None` when there is none.
    pub fn latest_at_or_before(&self, at_ms: i64) -> Option<i64> {
        // The crate's backward search is strictly before its start, and a start on a whole
        // second is taken as-is, so start one second past the floor of `at_ms`.
        let before = whole_second(at_ms.div_euclid(1000).checked_add(1)?)?;
        self.schedule
            .after(&before)
            .next_back()
            .map(|fire| fire.timestamp_millis())
    }

    /// How many firings fall in `[from_ms, until_ms)`, counting at most `cap`.
    pub fn count_between(&self, from_ms: i64, until_ms: i64, cap: u32) -> u32 {
        let Some(start) = from_ms
            .checked_sub(1)
            .and_then(|ms| whole_second(ms.div_euclid(1000)))
        else {
            return 0;
        };
        let counted = self
            .schedule
            .after(&start)
            .take_while(|fire| fire.timestamp_millis() < until_ms)
            .take(cap as usize)
            .count();
        u32::try_from(counted).unwrap_or(cap)
    }
}

/// The UTC instant at `seconds` past the epoch, if chrono can represent it.
fn whole_second(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

/// Checks `schedule` and returns it in the `cron` crate's 6/7-field form.
///
/// Accepts standard 5-field expressions (normalised: a `0` seconds field is prefixed and
/// numeric weekdays are renumbered), the crate's own 6/7-field expressions and its shorthands
/// (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`), which pass through unchanged; in
/// the 6/7-field form, numeric weekdays are the crate's (Sunday is 1).
pub fn normalize_schedule(schedule: &str) -> Result<String> {
    let invalid = |reason: String| Error::InvalidSchedule {
        schedule: schedule.to_owned(),
        reason,
    };
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    let mut restricts_both_days = false;
    let normalized = match fields.as_slice() {
        [] => return Err(invalid("it is empty".to_owned())),
        [shorthand] if shorthand.starts_with('@') => (*shorthand).to_owned(),
        [minute, hour, day_of_month, month, day_of_week] => {
            let restricted = |field: &str| field != "*" && field != "?";
            restricts_both_days = restricted(day_of_month) && restricted(day_of_week);
            let day_of_week = translate_day_of_week(schedule, day_of_week)?;
            format!("0 {minute} {hour} {day_of_month} {month} {day_of_week}")
        }
        [_, _, _, _, _, _] | [_, _, _, _, _, _, _] => fields.join(" "),
        other => {
            return Err(invalid(format!(
                "it has {} fields; expected 5 (minute hour day-of-month month day-of-week), \
                 or 6/7 with seconds first",
                other.len()
            )));
        }
    };
    if let Err(error) = cron::Schedule::from_str(&normalized) {
        // The crate's message is three lines: the expression, a caret, and (not always) what
        // is wrong. Keep it on one line and say which form was checked.
        let text = error.to_string();
        let lines: Vec<&str> = text.lines().collect();
        let reason = match (lines.get(2).map(|line| line.trim()), lines.get(1)) {
            (Some(detail), _) if !detail.is_empty() => {
                format!("{detail} (checked as {normalized:?})")
            }
            (_, Some(caret)) if caret.contains('^') => format!(
                "it does not parse at character {} of {normalized:?}",
                caret.find('^').unwrap_or(0) + 1
            ),
            _ => text.clone(),
        };
        return Err(invalid(reason));
    }
    if restricts_both_days {
        return Err(invalid(
            "it restricts both day-of-month and day-of-week; standard cron runs when either \
             matches but this scheduler needs both, so split it into two entries, one per field"
                .to_owned(),
        ));
    }
    Ok(normalized)
}

/// Renumbers the numeric items of a standard day-of-week field (Sunday 0 or 7 … Saturday 6)
/// to the `cron` crate's numbering (Sunday 1 … Saturday 7). Names (`MON-FRI`) and `*`/`?`
/// mean the same in both and pass through; so does `*/n`, whose days coincide in both.
fn translate_day_of_week(schedule: &str, field: &str) -> Result<String> {
    let invalid = |reason: String| Error::InvalidSchedule {
        schedule: schedule.to_owned(),
        reason,
    };
    let mut items = Vec::new();
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        if !base.bytes().any(|byte| byte.is_ascii_digit()) {
            items.push(item.to_owned());
            continue;
        }
        let number = |text: &str| match text.parse::<u32>() {
            Ok(day) if day <= 7 => Ok(day),
            _ => Err(invalid(format!(
                "day-of-week item {item:?} is not a day: use 0-7 (0 and 7 are Sunday) or SUN-SAT"
            ))),
        };
        let (first, last) = match base.split_once('-') {
            Some((first, last)) => (number(first)?, number(last)?),
            // `5/2` means "from Friday on, every other day", as in the `cron` crate.
            None if step.is_some() => (number(base)?, 6),
            None => (number(base)?, number(base)?),
        };
        if first > last {
            return Err(invalid(format!(
                "day-of-week range {base:?} runs backwards"
            )));
        }
        let step = match step.map(str::parse::<usize>) {
            None => 1,
            Some(Ok(step)) if step > 0 => step,
            Some(_) => {
                return Err(invalid(format!(
                    "day-of-week step in {item:?} must be 1 or more"
                )));
            }
        };
        let days: BTreeSet<u32> = (first..=last)
            .step_by(step)
            .map(|day| day % 7 + 1)
            .collect();
        // Write consecutive days as ranges so the result stays readable (`2-6`, not `2,3,4,5,6`).
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for day in days {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == day => *end = day,
                _ => runs.push((day, day)),
            }
        }
        for (start, end) in runs {
            items.push(match end - start {
                0 => start.to_string(),
                1 => format!("{start},{end}"),
                _ => format!("{start}-{end}"),
            });
        }
    }
    Ok(items.join(","))
}

#[cfg(test)]
mod tests {
    use cron::TimeUnitSpec;

    use super::*;

    #[test]
    fn five_fields_get_a_seconds_field() {
        assert_eq!(
            normalize_schedule("*/15 * * * *").unwrap(),
            "0 */15 * * * *"
        );
        assert_eq!(
            normalize_schedule(" 0  */4 * * * ").unwrap(),
            "0 0 */4 * * *"
        );
    }

    #[test]
    fn six_and_seven_fields_and_shorthands_pass_through() {
        for schedule in [
            "30 */5 * * * *",
            "0 0 12 * * * 2030",
            "@daily",
            "0 0 9 * * MON-FRI",
        ] {
            assert_eq!(normalize_schedule(schedule).unwrap(), schedule);
        }
    }

    #[test]
    fn numeric_weekdays_keep_their_meaning() {
        // (standard 5-field, expected crate form, standard weekdays it must run on)
        let cases: [(&str, &str, &[u32]); 7] = [
            ("0 9 * * 1", "0 0 9 * * 2", &[1]),
            ("0 9 * * 0", "0 0 9 * * 1", &[0]),
            ("0 9 * * 7", "0 0 9 * * 1", &[0]),
            ("0 9 * * 1-5", "0 0 9 * * 2-6", &[1, 2, 3, 4, 5]),
            ("0 9 * * 5-7", "0 0 9 * * 1,6,7", &[0, 5, 6]),
            ("0 9 * * 0-6/2", "0 0 9 * * 1,3,5,7", &[0, 2, 4, 6]),
            ("0 9 * * SAT,1", "0 0 9 * * SAT,2", &[1, 6]),
        ];
        for (standard, expected, weekdays) in cases {
            let normalized = normalize_schedule(standard).unwrap();
            assert_eq!(normalized, expected, "{standard}");
            let schedule = cron::Schedule::from_str(&normalized).unwrap();
            for standard_day in 0..7 {
                assert_eq!(
                    schedule.days_of_week().includes(standard_day + 1),
                    weekdays.contains(&standard_day),
                    "{standard}: weekday {standard_day}"
                );
            }
        }
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("* * * *", "4 fields"),
            ("61 * * * *", "Minutes"),
            ("* * * * foo", "'foo' is not a valid day of the week"),
            ("1,, * * * *", "character 4 of \"0 1,, * * * *\""),
            ("@reboot", "character 1"),
            ("*/15 * * * * * * *", "8 fields"),
            ("0 9 * * 8", "0-7"),
            ("0 9 * * 5-1", "backwards"),
            ("0 9 * * 1/0", "step"),
            ("0 9 1 * MON", "split it into two entries"),
            ("every day", "fields"),
        ];
        for (schedule, needle) in cases {
            let error = normalize_schedule(schedule).unwrap_err();
            assert!(
                matches!(&error, Error::InvalidSchedule { schedule: s, .. } if s == schedule),
                "{schedule}: {error:?}"
            );
            assert!(error.to_string().contains(needle), "{schedule}: {error}");
            assert!(error.hint().contains("*/15 * * * *"));
        }
    }
}
