use super::*;

const DAY: i64 = 86_400;

/// A fixed instant, written in UTC.
fn at(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap().as_second()
}

fn berlin() -> Zone {
    Zone::named("Europe/Berlin").unwrap()
}

fn weekly(days: &[&str], from: &str, to: &str, zone: Option<&Zone>) -> FreezeWindow {
    let days: Vec<String> = days.iter().map(|d| (*d).to_owned()).collect();
    FreezeWindow::weekly(&days, from, to, "r", zone).unwrap()
}

#[test]
fn rfc3339_table() {
    let cases = [
        ("1970-01-01T00:00:00Z", Some(0)),
        ("2026-12-20T00:00:00Z", Some(1_797_724_800)),
        ("2026-12-20T01:00:00+01:00", Some(1_797_724_800)),
        ("2026-12-19T19:00:00-05:00", Some(1_797_724_800)),
        ("2026-12-20 00:00:00.250Z", Some(1_797_724_800)),
        ("2024-02-29T00:00:00Z", Some(1_709_164_800)),
        ("1969-12-31T23:59:59Z", Some(-1)),
        ("2023-02-29T00:00:00Z", None),
        ("2026-12-20T00:00:00", None),
        ("2026-12-20", None),
        ("2026-13-01T00:00:00Z", None),
        ("2026-12-20T24:00:00Z", None),
        ("2026-12-20T00:00:00.Z", None),
        ("2026-12-20T00:00:00+1:00", None),
        ("２026-12-20T00:00:00Z", None),
        ("20261220T000000Z", None),
        ("2026-12-20T00:00:00Z[Europe/Berlin]", None),
        ("", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_instant(text, None).ok(), want, "{text}");
    }
    let utc = Zone::utc();
    for t in [0, -1, 1_797_724_800, 4_102_444_799] {
        assert_eq!(parse_instant(&utc.rfc3339(t), None), Ok(t));
    }
}

#[test]
fn a_time_without_an_offset_is_read_in_the_windows_zone_and_only_there() {
    let err = parse_instant("2026-12-20T00:00:00", None).unwrap_err();
    assert!(err.contains("set `timezone`"), "{err}");
    assert_eq!(
        parse_instant("2026-12-20T00:00:00", Some(&berlin())),
        Ok(at("2026-12-19T23:00:00Z"))
    );
    assert_eq!(
        parse_instant("2026-07-01T00:00:00", Some(&berlin())),
        Ok(at("2026-06-30T22:00:00Z"))
    );
    // An explicit offset wins over the zone.
    assert_eq!(
        parse_instant("2026-12-20T00:00:00Z", Some(&berlin())),
        Ok(at("2026-12-20T00:00:00Z"))
    );
    assert!(parse_instant("next week", Some(&berlin())).is_err());
}

#[test]
fn weekdays_from_civil_dates() {
    let day = |t: i64| Weekday::from(Zone::utc().civil(t).unwrap().weekday());
    assert_eq!(day(0), Weekday::Thu);
    assert_eq!(day(-1), Weekday::Wed);
    assert_eq!(day(1_797_724_800), Weekday::Sun); // 2026-12-20
    assert_eq!(day(1_797_724_800 - 2 * DAY), Weekday::Fri);
    assert_eq!(Weekday::Mon.title(), "Mon");
}

#[test]
fn fixed_window_bounds() {
    let w =
        FreezeWindow::fixed("2026-12-20T00:00:00Z", "2027-01-04T00:00:00Z", "eoy", None).unwrap();
    assert!(!w.active_at(1_797_724_799));
    assert!(w.active_at(1_797_724_800));
    assert!(!w.active_at(1_797_724_800 + 15 * DAY));
    assert_eq!(
        w.to_string(),
        "2026-12-20T00:00:00Z to 2027-01-04T00:00:00Z (eoy)"
    );
    let err =
        FreezeWindow::fixed("2027-01-04T00:00:00Z", "2026-12-20T00:00:00Z", "x", None).unwrap_err();
    assert_eq!(err.field, "end");
    assert_eq!(
        FreezeWindow::fixed("soon", "2026-12-20T00:00:00Z", "x", None)
            .unwrap_err()
            .field,
        "start"
    );
}

#[test]
fn fixed_windows_with_offsets_are_instants_shown_in_their_zone() {
    let with_offsets = FreezeWindow::fixed(
        "2026-12-20T00:00:00+01:00",
        "2027-01-04T09:00:00+01:00",
        "eoy",
        Some(&berlin()),
    )
    .unwrap();
    let local = FreezeWindow::fixed(
        "2026-12-20T00:00:00",
        "2027-01-04T09:00:00",
        "eoy",
        Some(&berlin()),
    )
    .unwrap();
    assert_eq!(with_offsets, local);
    assert!(!local.active_at(at("2026-12-19T22:59:59Z")));
    assert!(local.active_at(at("2026-12-19T23:00:00Z")));
    assert!(local.active_at(at("2027-01-04T07:59:59Z")));
    assert!(!local.active_at(at("2027-01-04T08:00:00Z")));
    assert_eq!(
        local.to_string(),
        "2026-12-20T00:00:00+01:00 to 2027-01-04T09:00:00+01:00 Europe/Berlin (eoy)"
    );
    // An offset in another zone is the same instant, written in the window's zone.
    let new_york = FreezeWindow::fixed(
        "2026-12-19T18:00:00-05:00",
        "2027-01-04T03:00:00-05:00",
        "eoy",
        Some(&berlin()),
    )
    .unwrap();
    assert_eq!(new_york, local);
    // Without a zone the window is shown in UTC.
    let utc = FreezeWindow::fixed(
        "2026-12-20T00:00:00+01:00",
        "2027-01-04T09:00:00+01:00",
        "eoy",
        None,
    )
    .unwrap();
    assert_eq!(
        utc.to_string(),
        "2026-12-19T23:00:00Z to 2027-01-04T08:00:00Z (eoy)"
    );
    // The end, as a refusal writes it: with a date when more than a week off.
    let windows = [local];
    let frozen = frozen_at(&windows, at("2026-12-24T12:00:00Z")).unwrap();
    assert_eq!(
        frozen.until_text(at("2026-12-24T12:00:00Z")),
        "Mon 2027-01-04 09:00 Europe/Berlin"
    );
    let frozen = frozen_at(&windows, at("2026-12-30T12:00:00Z")).unwrap();
    assert_eq!(
        frozen.until_text(at("2026-12-30T12:00:00Z")),
        "Mon 09:00 Europe/Berlin"
    );
}

#[test]
fn weekly_window_bounds() {
    let fri = 1_797_724_800 - 2 * DAY;
    let w = FreezeWindow::weekly(&["fri".into()], "15:00", "24:00", "weekend", None).unwrap();
    let cases = [
        (fri, false),
        (fri + 15 * 3600 - 1, false),
        (fri + 15 * 3600, true),
        (fri + DAY - 1, true),
        (fri + DAY, false),
        (fri + 7 * DAY + 16 * 3600, true),
        (fri - 7 * DAY + 16 * 3600, true),
    ];
    for (t, want) in cases {
        assert_eq!(w.active_at(t), want, "{t}");
    }
    assert_eq!(w.to_string(), "fri 15:00-24:00 UTC (weekend)");
    let bad = [
        (vec![], "09:00", "10:00", "days"),
        (
            vec!["fri".to_string(), "funday".into()],
            "09:00",
            "10:00",
            "days",
        ),
        (vec!["Fri".into()], "09:00", "10:00", "days"),
        (vec!["mon".into()], "9:00", "10:00", "from"),
        (vec!["mon".into()], "09:00", "24:01", "to"),
        (vec!["mon".into()], "09:60", "10:00", "from"),
        (vec!["mon".into()], "10:00", "09:00", "to"),
        (vec!["mon".into()], "10:00", "10:00", "to"),
    ];
    for (days, from, to, field) in bad {
        let err = FreezeWindow::weekly(&days, from, to, "r", None).unwrap_err();
        assert_eq!(err.field, field, "{days:?} {from} {to}: {err}");
    }
}

#[test]
fn a_berlin_window_keeps_its_wall_clock_across_the_march_switch() {
    // Clocks in Berlin go from 02:00 CET to 03:00 CEST on Sun 2026-03-29.
    let z = berlin();
    let friday = weekly(&["fri"], "15:00", "24:00", Some(&z));
    assert_eq!(friday.to_string(), "fri 15:00-24:00 Europe/Berlin (r)");
    let cases = [
        // Fri 2026-03-27, CET (+01:00): 14:00Z to 23:00Z.
        ("2026-03-27T13:59:59Z", false),
        ("2026-03-27T14:00:00Z", true),
        ("2026-03-27T22:59:59Z", true),
        ("2026-03-27T23:00:00Z", false),
        // Fri 2026-04-03, CEST (+02:00): 13:00Z to 22:00Z.
        ("2026-04-03T12:59:59Z", false),
        ("2026-04-03T13:00:00Z", true),
        ("2026-04-03T21:59:59Z", true),
        ("2026-04-03T22:00:00Z", false),
    ];
    for (t, want) in cases {
        assert_eq!(friday.active_at(at(t)), want, "{t}");
    }
    // The weekend holds a 23-hour Sunday: Sat 00:00 CET to Mon 00:00 CEST.
    let weekend = [weekly(&["sat", "sun"], "00:00", "24:00", Some(&z))];
    assert!(!weekend[0].active_at(at("2026-03-27T22:59:59Z")));
    let now = at("2026-03-27T23:00:00Z");
    let frozen = frozen_at(&weekend, now).unwrap();
    assert_eq!(frozen.until.map(|u| u.0), Some(at("2026-03-29T22:00:00Z")));
    assert_eq!(frozen.until_text(now), "Mon 00:00 Europe/Berlin");
    assert!(weekend[0].active_at(at("2026-03-29T21:59:59Z")));
    assert!(!weekend[0].active_at(at("2026-03-29T22:00:00Z")));
    // 02:00 to 03:00 does not happen that Sunday; a week later it does.
    let skipped = weekly(&["sun"], "02:00", "03:00", Some(&z));
    assert_eq!(
        skipped.occurrences(at("2026-03-28T00:00:00Z"), at("2026-03-30T00:00:00Z")),
        vec![]
    );
    assert_eq!(
        skipped.occurrences(at("2026-04-04T00:00:00Z"), at("2026-04-06T00:00:00Z")),
        vec![Occurrence {
            start: at("2026-04-05T00:00:00Z"),
            end: at("2026-04-05T01:00:00Z"),
        }]
    );
    // A window that ends inside the skipped hour ends when the clock jumps
    // past it, read with the offset before the change (RFC 5545).
    let into_gap = weekly(&["sun"], "01:00", "02:30", Some(&z));
    assert_eq!(
        into_gap.occurrences(at("2026-03-29T00:00:00Z"), at("2026-03-29T03:00:00Z")),
        vec![Occurrence {
            start: at("2026-03-29T00:00:00Z"),
            end: at("2026-03-29T01:30:00Z"),
        }]
    );
}

#[test]
fn a_berlin_window_keeps_its_wall_clock_across_the_october_switch() {
    // Clocks in Berlin go from 03:00 CEST back to 02:00 CET on Sun 2026-10-25.
    let z = berlin();
    let friday = weekly(&["fri"], "15:00", "24:00", Some(&z));
    let cases = [
        // Fri 2026-10-23, CEST: 13:00Z to 22:00Z.
        ("2026-10-23T12:59:59Z", false),
        ("2026-10-23T13:00:00Z", true),
        ("2026-10-23T21:59:59Z", true),
        ("2026-10-23T22:00:00Z", false),
        // Fri 2026-10-30, CET: 14:00Z to 23:00Z.
        ("2026-10-30T13:59:59Z", false),
        ("2026-10-30T14:00:00Z", true),
        ("2026-10-30T22:59:59Z", true),
        ("2026-10-30T23:00:00Z", false),
    ];
    for (t, want) in cases {
        assert_eq!(friday.active_at(at(t)), want, "{t}");
    }
    // 02:00 to 03:00 happens twice; the window starts at the first 02:00
    // and ends at the only 03:00, so it covers both.
    let repeated = weekly(&["sun"], "02:00", "03:00", Some(&z));
    assert_eq!(
        repeated.occurrences(at("2026-10-24T00:00:00Z"), at("2026-10-26T00:00:00Z")),
        vec![Occurrence {
            start: at("2026-10-25T00:00:00Z"),
            end: at("2026-10-25T02:00:00Z"),
        }]
    );
    // A 25-hour Sunday: Sat 00:00 CEST to Mon 00:00 CET.
    let weekend = [weekly(&["sat", "sun"], "00:00", "24:00", Some(&z))];
    let now = at("2026-10-24T12:00:00Z");
    let frozen = frozen_at(&weekend, now).unwrap();
    assert_eq!(frozen.until.map(|u| u.0), Some(at("2026-10-25T23:00:00Z")));
    assert_eq!(frozen.until_text(now), "Mon 00:00 Europe/Berlin");
    assert!(weekend[0].active_at(at("2026-10-23T22:00:00Z")));
    assert!(!weekend[0].active_at(at("2026-10-23T21:59:59Z")));
}

#[test]
fn back_to_back_windows_freeze_until_the_last_one_ends() {
    let z = berlin();
    let windows = [
        weekly(&["fri"], "15:00", "24:00", Some(&z)),
        // Another zone, following on at Sat 00:00 Berlin = Fri 23:00 UTC.
        weekly(&["fri"], "23:00", "24:00", None),
        weekly(&["sat"], "00:00", "09:00", None),
    ];
    let now = at("2026-12-18T16:00:00Z"); // Fri 17:00 in Berlin
    let frozen = frozen_at(&windows, now).unwrap();
    assert_eq!(frozen.window, &windows[0]);
    assert_eq!(frozen.until.map(|u| u.0), Some(at("2026-12-19T09:00:00Z")));
    assert_eq!(frozen.until_text(now), "Sat 09:00 UTC");
    assert_eq!(frozen_at(&windows, at("2026-12-18T13:59:59Z")), None);
    // A window on every day never ends.
    let always = [weekly(
        &["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "00:00",
        "24:00",
        Some(&z),
    )];
    let frozen = frozen_at(&always, now).unwrap();
    assert_eq!(frozen.until, None);
    assert_eq!(frozen.until_text(now), "no end in sight");
}

#[test]
fn upcoming_windows_within_a_week_in_their_zone() {
    let z = berlin();
    let windows = [
        weekly(&["fri"], "15:00", "24:00", Some(&z)),
        FreezeWindow::fixed("2026-12-20T00:00:00Z", "2027-01-04T00:00:00Z", "eoy", None).unwrap(),
    ];
    let tuesday = at("2026-11-24T12:00:00Z");
    let soon = upcoming(&windows, tuesday, 7 * DAY);
    let shown: Vec<String> = soon.iter().map(|u| u.describe(tuesday)).collect();
    assert_eq!(shown, ["Fri 15:00 to Sat 00:00 Europe/Berlin"]);
    let week_before = at("2026-12-15T12:00:00Z");
    let soon = upcoming(&windows, week_before, 7 * DAY);
    let shown: Vec<String> = soon.iter().map(|u| u.describe(week_before)).collect();
    assert_eq!(
        shown,
        [
            "Fri 15:00 to Sat 00:00 Europe/Berlin",
            "Sun 00:00 to Mon 2027-01-04 00:00 UTC"
        ]
    );
}

#[test]
fn a_weekday_names_one_date_or_comes_with_the_date() {
    let z = berlin();
    let friday_evening = at("2026-11-27T17:30:00Z");
    assert_eq!(
        z.describe(at("2026-11-27T23:00:00Z"), friday_evening),
        "Sat 00:00 Europe/Berlin"
    );
    assert_eq!(
        z.describe(at("2026-12-03T17:00:00Z"), friday_evening),
        "Thu 18:00 Europe/Berlin"
    );
    // Next Friday is not this Friday.
    assert_eq!(
        z.describe(at("2026-12-04T17:00:00Z"), friday_evening),
        "Fri 2026-12-04 18:00 Europe/Berlin"
    );
    // Nor is a past day.
    assert_eq!(
        z.describe(at("2026-11-26T17:00:00Z"), friday_evening),
        "Thu 2026-11-26 18:00 Europe/Berlin"
    );
}

#[test]
fn zone_names() {
    assert_eq!(berlin().name(), "Europe/Berlin");
    assert_eq!(
        Zone::named("europe/berlin").unwrap().name(),
        "Europe/Berlin"
    );
    assert_eq!(Zone::named("UTC").unwrap(), Zone::utc());
    for bad in [
        "Europe/Berln",
        "",
        "Mars/Olympus",
        "../etc/passwd",
        "Europe/Berlin ",
    ] {
        let err = Zone::named(bad).unwrap_err();
        assert!(
            err.to_string().starts_with("unknown time zone"),
            "{bad}: {err}"
        );
    }
    let err = Zone::named("Berlin").unwrap_err().to_string();
    assert!(err.ends_with("; did you mean Europe/Berlin?"), "{err}");
}
