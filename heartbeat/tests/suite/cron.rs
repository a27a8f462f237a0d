//! Cron arithmetic on epoch-ms instants: month ends, leap days, 5-field weekdays, coalescing
//! counts, and sub-second instants.

use automaton_heartbeat::CronSchedule;

use super::support::utc;

fn next(schedule: &str, at: i64) -> i64 {
    CronSchedule::parse(schedule)
        .unwrap()
        .next_after(at)
        .unwrap()
}

#[test]
fn leap_day_schedule_waits_for_the_next_leap_year() {
    let feb29 = CronSchedule::parse("0 0 29 2 *").unwrap();
    assert_eq!(
        feb29.next_after(utc(2025, 3, 1, 0, 0, 0)),
        Some(utc(2028, 2, 29, 0, 0, 0))
    );
    assert_eq!(
        feb29.next_after(utc(2028, 2, 29, 0, 0, 0)),
        Some(utc(2032, 2, 29, 0, 0, 0))
    );
    // 1900-style centuries are not leap years, but 2000 was: from 1999 the next is 2000.
    assert_eq!(
        feb29.next_after(utc(1999, 1, 1, 0, 0, 0)),
        Some(utc(2000, 2, 29, 0, 0, 0))
    );
}

#[test]
fn every_day_crosses_feb_28_into_the_leap_day_and_month_ends() {
    let daily = "30 23 * * *";
    assert_eq!(
        next(daily, utc(2028, 2, 28, 23, 30, 0)),
        utc(2028, 2, 29, 23, 30, 0)
    );
    assert_eq!(
        next(daily, utc(2028, 2, 29, 23, 30, 0)),
        utc(2028, 3, 1, 23, 30, 0)
    );
    assert_eq!(
        next(daily, utc(2029, 2, 28, 23, 30, 0)),
        utc(2029, 3, 1, 23, 30, 0)
    );
    assert_eq!(
        next(daily, utc(2030, 12, 31, 23, 30, 0)),
        utc(2031, 1, 1, 23, 30, 0)
    );
}

#[test]
fn the_31st_skips_shorter_months() {
    let day31 = CronSchedule::parse("0 0 31 * *").unwrap();
    let mut at = utc(2030, 1, 1, 0, 0, 0);
    let mut fires = Vec::new();
    for _ in 0..7 {
        at = day31.next_after(at).unwrap();
        fires.push(at);
    }
    assert_eq!(
        fires,
        [
            utc(2030, 1, 31, 0, 0, 0),
            utc(2030, 3, 31, 0, 0, 0),
            utc(2030, 5, 31, 0, 0, 0),
            utc(2030, 7, 31, 0, 0, 0),
            utc(2030, 8, 31, 0, 0, 0),
            utc(2030, 10, 31, 0, 0, 0),
            utc(2030, 12, 31, 0, 0, 0),
        ]
    );
}

#[test]
fn five_field_weekdays_mean_standard_cron_days() {
    // 2030-01-01 is a Tuesday; the 6th a Sunday, the 7th a Monday.
    let tuesday = utc(2030, 1, 1, 12, 0, 0);
    assert_eq!(next("0 9 * * 1", tuesday), utc(2030, 1, 7, 9, 0, 0));
    assert_eq!(next("0 9 * * 0", tuesday), utc(2030, 1, 6, 9, 0, 0));
    assert_eq!(next("0 9 * * 7", tuesday), utc(2030, 1, 6, 9, 0, 0));
    assert_eq!(next("0 9 * * MON", tuesday), utc(2030, 1, 7, 9, 0, 0));
    // Friday 09:00 → Monday 09:00 for weekdays.
    assert_eq!(
        next("0 9 * * 1-5", utc(2030, 1, 4, 9, 0, 0)),
        utc(2030, 1, 7, 9, 0, 0)
    );
    assert_eq!(
        next("0 9 * * 5-7", utc(2030, 1, 1, 12, 0, 0)),
        utc(2030, 1, 4, 9, 0, 0)
    );
}

#[test]
fn latest_at_or_before_includes_the_instant_itself() {
    let quarter = CronSchedule::parse("*/15 * * * *").unwrap();
    let fire = utc(2030, 1, 1, 10, 15, 0);
    assert_eq!(quarter.latest_at_or_before(fire), Some(fire));
    assert_eq!(
        quarter.latest_at_or_before(fire - 1),
        Some(utc(2030, 1, 1, 10, 0, 0))
    );
    assert_eq!(quarter.latest_at_or_before(fire + 999), Some(fire));
    // Across a month end and a year end.
    assert_eq!(
        quarter.latest_at_or_before(utc(2031, 1, 1, 0, 14, 59)),
        Some(utc(2031, 1, 1, 0, 0, 0))
    );
    assert_eq!(
        quarter.latest_at_or_before(utc(2030, 12, 31, 23, 59, 59)),
        Some(utc(2030, 12, 31, 23, 45, 0))
    );
    let feb29 = CronSchedule::parse("0 0 29 2 *").unwrap();
    assert_eq!(
        feb29.latest_at_or_before(utc(2031, 6, 1, 0, 0, 0)),
        Some(utc(2028, 2, 29, 0, 0, 0))
    );
}

#[test]
fn first_at_or_after_and_sub_second_instants() {
    let every_second = CronSchedule::parse("* * * * * *").unwrap();
    let at = utc(2030, 1, 1, 10, 0, 0);
    assert_eq!(every_second.next_after(at + 500), Some(at + 1_000));
    assert_eq!(every_second.next_after(at), Some(at + 1_000));
    assert_eq!(every_second.first_at_or_after(at), Some(at));
    assert_eq!(every_second.first_at_or_after(at + 1), Some(at + 1_000));
}

#[test]
fn count_between_counts_the_half_open_range_and_caps() {
    let minutely = CronSchedule::parse("* * * * *").unwrap();
    let start = utc(2030, 1, 1, 0, 1, 0);
    let ten_hours_later = utc(2030, 1, 1, 10, 0, 0);
    assert_eq!(minutely.count_between(start, ten_hours_later, 100_000), 599);
    assert_eq!(minutely.count_between(start, start, 100_000), 0);
    assert_eq!(minutely.count_between(start, ten_hours_later, 10), 10);
}

#[test]
fn a_schedule_past_its_last_year_has_no_next_firing() {
    let once = CronSchedule::parse("0 0 12 1 1 * 2030").unwrap();
    assert_eq!(
        once.next_after(utc(2029, 6, 1, 0, 0, 0)),
        Some(utc(2030, 1, 1, 12, 0, 0))
    );
    assert_eq!(once.next_after(utc(2030, 1, 1, 12, 0, 0)), None);
    assert_eq!(once.latest_at_or_before(utc(2029, 1, 1, 0, 0, 0)), None);
}
