//! Answers as Prometheus writes them (docs/prometheus.md), judged.

use super::*;

const QUERY: &str = "sum(rate(errors[1m]))";

fn rule(comparison: Comparison, threshold: f64) -> Rule<'static> {
    Rule {
        query: QUERY,
        comparison,
        threshold,
    }
}

fn vector(values: &[(&str, &str)]) -> String {
    let series: Vec<String> = values
        .iter()
        .map(|(code, v)| {
            format!(r#"{{"metric":{{"code":"{code}"}},"value":[1700000000.123,"{v}"]}}"#)
        })
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        series.join(",")
    )
}

fn judged(status: u16, body: &str, rule: Rule<'_>) -> (bool, String) {
    let p = judge(status, body.as_bytes(), rule);
    (p.ok, p.value)
}

#[test]
fn one_series_is_compared() {
    let body = vector(&[("500", "0.001")]);
    assert_eq!(
        judged(200, &body, rule(Comparison::Less, 0.01)),
        (true, "0.001 < 0.01".into())
    );
    let body = vector(&[("500", "0.2")]);
    assert_eq!(
        judged(200, &body, rule(Comparison::Less, 0.01)),
        (false, "0.2, needs < 0.01".into())
    );
}

#[test]
fn a_scalar_is_compared() {
    let body = r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}"#;
    assert_eq!(
        judged(200, body, rule(Comparison::GreaterOrEqual, 3.0)),
        (true, "3 >= 3".into())
    );
}

#[test]
fn several_series_are_judged_by_the_worst() {
    let body = vector(&[("500", "0.001"), ("502", "0.3"), ("503", "0.002")]);
    assert_eq!(
        judged(200, &body, rule(Comparison::Less, 0.01)),
        (
            false,
            r#"0.3, needs < 0.01 (worst of 3 series: {code="502"})"#.into()
        )
    );
    assert_eq!(
        judged(200, &body, rule(Comparison::Greater, 0.0)),
        (
            true,
            r#"0.001 > 0 (worst of 3 series: {code="500"})"#.into()
        )
    );
    assert!(
        !judged(200, &body, rule(Comparison::Equal, 0.001)).0,
        "== needs every series equal"
    );
    assert!(judged(200, &body, rule(Comparison::NotEqual, 1.0)).0);
}

#[test]
fn no_series_nan_and_infinities() {
    let empty = vector(&[]);
    assert_eq!(
        judged(200, &empty, rule(Comparison::Less, 0.01)),
        (false, format!("no series for query {QUERY}"))
    );
    let (ok, value) = judged(
        200,
        &vector(&[("500", "NaN")]),
        rule(Comparison::Less, 0.01),
    );
    assert!(
        !ok && value.starts_with("NaN{code=\"500\"} never passes"),
        "{value}"
    );
    let (ok, _) = judged(
        200,
        &vector(&[("500", "NaN")]),
        rule(Comparison::NotEqual, 1.0),
    );
    assert!(!ok, "NaN fails whatever the comparison");
    assert!(
        judged(
            200,
            &vector(&[("500", "+Inf")]),
            rule(Comparison::Greater, 1.0)
        )
        .0
    );
    assert!(
        !judged(
            200,
            &vector(&[("500", "+Inf")]),
            rule(Comparison::Less, 1.0)
        )
        .0
    );
    assert!(
        judged(
            200,
            &vector(&[("500", "-Inf")]),
            rule(Comparison::Less, 1.0)
        )
        .0
    );
}

#[test]
fn errors_name_the_query_and_prometheus_s_text() {
    let body = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}"#;
    assert_eq!(
        judged(400, body, rule(Comparison::Less, 0.01)),
        (
            false,
            format!("query {QUERY} failed: bad_data: invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis")
        )
    );
    let body = r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#;
    assert!(judged(503, body, rule(Comparison::Less, 0.01))
        .1
        .contains("timeout: query timed out"));
    assert_eq!(
        judged(
            502,
            "<html>bad gateway</html>",
            rule(Comparison::Less, 0.01)
        ),
        (false, "Prometheus answered HTTP 502".into())
    );
    assert!(judged(200, "{", rule(Comparison::Less, 0.01))
        .1
        .starts_with("Prometheus's answer is not its JSON"));
}

#[test]
fn other_shapes_fail() {
    let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}"#;
    assert!(judged(200, matrix, rule(Comparison::Less, 1.0))
        .1
        .contains("range vector"));
    let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"hi"]}}"#;
    assert!(judged(200, string, rule(Comparison::Less, 1.0))
        .1
        .contains("a string"));
    let histogram = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}}"#;
    assert!(!judged(200, histogram, rule(Comparison::Less, 1.0)).0);
}

#[test]
fn server_text_is_escaped_and_cut() {
    let long = "x".repeat(1000);
    let body = format!(r#"{{"status":"error","errorType":"bad_data","error":"\u0007{long}"}}"#);
    let (_, value) = judged(400, &body, rule(Comparison::Less, 0.01));
    assert!(value.contains("\\u{0007}"), "{value}");
    assert!(value.len() < 400, "{}", value.len());
}

#[test]
fn values_are_shown_with_four_significant_digits() {
    for (value, shown) in [
        (0.010144342765203722, "0.01014"),
        (0.2, "0.2"),
        (0.001, "0.001"),
        (1234.5678, "1235"),
        (0.0, "0"),
        (-0.5, "-0.5"),
        (f64::INFINITY, "+Inf"),
        (3.0, "3"),
    ] {
        assert_eq!(super::readable(value), shown, "{value}");
    }
}
