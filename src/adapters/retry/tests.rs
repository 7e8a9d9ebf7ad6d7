use std::cell::Cell;

use super::*;

fn quick() -> Policy {
    Policy {
        attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        max_retry_after: Duration::from_millis(5),
    }
}

/// 1994-11-06 08:49:37 UTC, the date RFC 9110 writes its examples with.
fn example_date() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(784_111_777)
}

#[test]
fn backoff_stays_within_half_the_ceiling_and_the_ceiling() {
    let policy = Policy {
        attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_retry_after: Duration::from_secs(30),
    };
    let ceilings: Vec<u128> = (1..=6).map(|r| policy.ceiling(r).as_millis()).collect();
    assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
    for retry in 1..=6 {
        let ceiling = policy.ceiling(retry);
        for jitter in [0, 1, 7, 999_999, u64::MAX / 3, u64::MAX, super::jitter()] {
            let wait = policy.backoff(retry, jitter);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{retry} {jitter}: {wait:?}"
            );
        }
    }
    assert_eq!(policy.backoff(1, 0), Duration::from_millis(50));
}

#[test]
fn backoff_never_overflows() {
    let policy = Policy {
        attempts: u32::MAX,
        base_delay: Duration::MAX,
        max_delay: Duration::MAX,
        max_retry_after: Duration::MAX,
    };
    assert_eq!(policy.ceiling(u32::MAX), Duration::MAX);
    assert!(policy.backoff(u32::MAX, u64::MAX) >= Duration::MAX / 2);
    let zero = Policy {
        base_delay: Duration::ZERO,
        ..Policy::default()
    };
    assert_eq!(zero.backoff(3, 12345), Duration::ZERO);
}

#[test]
fn decisions_follow_the_verdict_and_the_bounds() {
    let policy = quick();
    let ms = Duration::from_millis;
    let cases: Vec<(u32, Verdict<()>, Next)> = vec![
        (1, Verdict::Fail(()), Next::Stop(Stop::Failed)),
        (1, Verdict::Unknown(()), Next::Stop(Stop::OutcomeUnknown)),
        (1, Verdict::RetryAfter((), ms(5)), Next::Wait(ms(5))),
        (
            1,
            Verdict::RetryAfter((), ms(6)),
            Next::Stop(Stop::WaitTooLong(ms(6))),
        ),
        (
            4,
            Verdict::RetryAfter((), ms(6)),
            Next::Stop(Stop::WaitTooLong(ms(6))),
        ),
        (3, Verdict::RetryAfter((), ms(2)), Next::Wait(ms(2))),
        (
            4,
            Verdict::RetryAfter((), ms(2)),
            Next::Stop(Stop::Exhausted),
        ),
        (4, Verdict::Retry(()), Next::Stop(Stop::Exhausted)),
        (
            1,
            Verdict::Retry(()),
            Next::Wait(Duration::from_micros(500)),
        ),
    ];
    for (attempt, verdict, next) in cases {
        assert_eq!(
            policy.decide(attempt, &verdict, 0),
            next,
            "{attempt} {verdict:?}"
        );
    }
    let once = Policy {
        attempts: 0,
        ..quick()
    };
    assert_eq!(
        once.decide(1, &Verdict::Retry(()), 0),
        Next::Stop(Stop::Exhausted)
    );
}

#[tokio::test]
async fn retries_until_an_answer() {
    let calls = Cell::new(0);
    let answer = quick()
        .run(|| async {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(Verdict::Retry("busy"))
            } else {
                Ok("done")
            }
        })
        .await;
    assert_eq!(answer, Ok("done"));
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn gives_up_after_the_last_attempt() {
    let calls = Cell::new(0);
    let answer: Result<(), _> = quick()
        .run(|| async {
            calls.set(calls.get() + 1);
            Err(Verdict::Retry(calls.get()))
        })
        .await;
    assert_eq!(
        answer,
        Err(GaveUp {
            error: 4,
            stop: Stop::Exhausted,
            attempts: 4
        })
    );
}

#[tokio::test]
async fn an_unknown_outcome_write_is_sent_once() {
    let calls = Cell::new(0);
    let answer: Result<(), _> = quick()
        .run(|| async {
            calls.set(calls.get() + 1);
            Err(Verdict::Unknown("timed out after sending"))
        })
        .await;
    assert_eq!(calls.get(), 1);
    assert_eq!(
        answer,
        Err(GaveUp {
            error: "timed out after sending",
            stop: Stop::OutcomeUnknown,
            attempts: 1
        })
    );
}

#[tokio::test]
async fn a_final_failure_is_not_repeated() {
    let calls = Cell::new(0);
    let answer: Result<(), _> = quick()
        .run(|| async {
            calls.set(calls.get() + 1);
            Err(Verdict::Fail("not found"))
        })
        .await;
    assert_eq!(calls.get(), 1);
    assert_eq!(answer.unwrap_err().stop, Stop::Failed);
}

#[tokio::test]
async fn a_wait_over_the_cap_fails_at_once_naming_it() {
    let calls = Cell::new(0);
    let hour = Duration::from_secs(3600);
    let answer: Result<(), _> = quick()
        .run(|| async {
            calls.set(calls.get() + 1);
            Err(Verdict::RetryAfter(hour, hour))
        })
        .await;
    assert_eq!(calls.get(), 1);
    assert_eq!(
        answer,
        Err(GaveUp {
            error: hour,
            stop: Stop::WaitTooLong(hour),
            attempts: 1
        })
    );
    // A short wait is honoured, then the answer comes.
    calls.set(0);
    let answer = quick()
        .run(|| async {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                Err(Verdict::RetryAfter((), Duration::from_millis(1)))
            } else {
                Ok(())
            }
        })
        .await;
    assert_eq!((answer, calls.get()), (Ok(()), 2));
}

#[test]
fn retry_after_reads_delta_seconds() {
    let now = example_date();
    let cases = [
        ("0", Some(0)),
        ("7", Some(7)),
        (" 120 ", Some(120)),
        ("99999999999999999999999", Some(u64::MAX)),
        ("", None),
        ("-1", None),
        ("1.5", None),
        ("+3", None),
        ("soon", None),
    ];
    for (text, seconds) in cases {
        assert_eq!(
            parse_retry_after(text, now),
            seconds.map(Duration::from_secs),
            "{text:?}"
        );
    }
}

#[test]
fn retry_after_reads_all_three_date_forms() {
    let now = example_date();
    for text in [
        "Sun, 06 Nov 1994 08:50:37 GMT",
        "Sunday, 06-Nov-94 08:50:37 GMT",
        "Sun Nov  6 08:50:37 1994",
    ] {
        assert_eq!(
            parse_retry_after(text, now),
            Some(Duration::from_secs(60)),
            "{text}"
        );
    }
    // Rounded up to whole seconds; the past is no wait.
    let later = now + Duration::from_millis(200);
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:39 GMT", later),
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after("Sat, 01 Jan 2000 00:00:00 GMT", UNIX_EPOCH),
        Some(Duration::from_secs(946_684_800))
    );
    assert_eq!(
        parse_retry_after("Tue, 29 Feb 2028 12:00:00 GMT", UNIX_EPOCH),
        Some(Duration::from_secs(1_835_438_400))
    );
}

#[test]
fn retry_after_refuses_malformed_dates() {
    let now = example_date();
    for text in [
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37:00 GMT",
        "Sun, 06 Nov -994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94",
        "Sun, 06 Nov 99999 08:49:37 GMT",
        "Sun Nov 6 08:49:37",
        "\u{1F600}, 06 Nov 1994 08:49:37 GMT extra",
    ] {
        assert_eq!(parse_retry_after(text, now), None, "{text}");
    }
}

#[test]
fn retry_after_is_read_from_headers() {
    let mut headers = http::HeaderMap::new();
    assert_eq!(retry_after(&headers), None);
    headers.insert("retry-after", "3".parse().unwrap());
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
    headers.insert(
        "retry-after",
        "Thu, 01 Jan 1970 00:00:00 GMT".parse().unwrap(),
    );
    assert_eq!(retry_after(&headers), Some(Duration::ZERO));
    headers.insert(
        "retry-after",
        http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
    );
    assert_eq!(retry_after(&headers), None);
}

#[test]
fn a_refused_connection_was_never_sent() {
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    assert!(never_sent(&refused));
    let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    assert!(!never_sent(&reset));
    let wrapped = std::io::Error::other(refused);
    assert!(never_sent(&wrapped));
}

#[tokio::test]
async fn a_connection_to_a_closed_port_was_never_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let error = reqwest::Client::new().get(url).send().await.unwrap_err();
    assert!(never_sent(&error), "{error:?}");
}
