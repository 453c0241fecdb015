//! `compare`: reads the JSON reports of the same runs against two servers
//! and prints, row by row, a metric of each, their ratio and whether the
//! ratio meets a target (`bench/compare.sh` drives it).
//!
//! A row is `LABEL METRIC [TARGET]`: the reports are paired by their
//! `label`, METRIC is looked up with [`Report::metric`], and TARGET is
//! `>=R` or `<=R` on candidate / baseline.

use std::path::Path;

use serde::Serialize;

use crate::error::BenchError;
use crate::report::{format_extra, Report};
use crate::table::Table;

/// A bound on the ratio candidate / baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The ratio must be at least this (throughput).
    AtLeast(f64),
    /// The ratio must be at most this (latency, memory, gaps).
    AtMost(f64),
}

impl Target {
    fn met_by(self, ratio: f64) -> bool {
        match self {
            Target::AtLeast(bound) => ratio >= bound,
            Target::AtMost(bound) => ratio <= bound,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::AtLeast(bound) => write!(f, ">= {bound:.1}x"),
            Target::AtMost(bound) => write!(f, "<= {bound:.1}x"),
        }
    }
}

/// One row asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct RowSpec {
    /// The runs' label.
    pub label: String,
    /// The metric compared.
    pub metric: String,
    /// The target on the ratio, if any.
    pub target: Option<Target>,
}

impl RowSpec {
    /// Parses `LABEL METRIC [>=R|<=R]`.
    pub fn parse(spec: &str) -> Result<RowSpec, BenchError> {
        let bad = |why| BenchError::RowSpec {
            spec: spec.to_owned(),
            why,
        };
        let words: Vec<&str> = spec.split_whitespace().collect();
        let (label, metric, target) = match words[..] {
            [label, metric] => (label, metric, None),
            [label, metric, target] => (label, metric, Some(target)),
            _ => return Err(bad("expected LABEL METRIC [>=RATIO|<=RATIO]")),
        };
        let target = match target {
            None => None,
            Some(t) => {
                let (make, bound): (fn(f64) -> Target, &str) = if let Some(b) = t.strip_prefix(">=")
                {
                    (Target::AtLeast, b)
                } else if let Some(b) = t.strip_prefix("<=") {
                    (Target::AtMost, b)
                } else {
                    return Err(bad("the target must start with >= or <="));
                };
                let bound: f64 = bound
                    .trim_end_matches('x')
                    .parse()
                    .map_err(|_| bad("the target's ratio is not a number"))?;
                Some(make(bound))
            }
        };
        Ok(RowSpec {
            label: label.to_owned(),
            metric: metric.to_owned(),
            target,
        })
    }
}

/// One row's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compared {
    /// The runs' label.
    pub label: String,
    /// The metric.
    pub metric: String,
    /// The candidate's value, if it has that run and metric.
    pub candidate: Option<f64>,
    /// The baseline's value.
    pub baseline: Option<f64>,
    /// candidate / baseline, when both exist and the baseline is not 0.
    pub ratio: Option<f64>,
    /// The target on the ratio.
    pub target: Option<Target>,
    /// Whether the ratio meets the target (none without either).
    pub met: Option<bool>,
}

/// Reads a file of JSON reports, one per line (blank lines skipped).
pub fn load(path: &Path) -> Result<Vec<Report>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|source| BenchError::Parse {
                path: path.to_owned(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// The value of `metric` in the last report labelled `label`.
fn lookup(reports: &[Report], label: &str, metric: &str) -> Option<f64> {
    reports
        .iter()
        .rev()
        .find(|r| r.label.as_deref() == Some(label))
        .and_then(|r| r.metric(metric))
}

/// Fills in each row from the two sets of reports.
pub fn compare(rows: &[RowSpec], candidate: &[Report], baseline: &[Report]) -> Vec<Compared> {
    rows.iter()
        .map(|row| {
            let c = lookup(candidate, &row.label, &row.metric);
            let b = lookup(baseline, &row.label, &row.metric);
            let ratio = match (c, b) {
                (Some(c), Some(b)) if b != 0.0 => Some(c / b),
                _ => None,
            };
            Compared {
                label: row.label.clone(),
                metric: row.metric.clone(),
                candidate: c,
                baseline: b,
                ratio,
                target: row.target,
                met: row.target.zip(ratio).map(|(t, r)| t.met_by(r)),
            }
        })
        .collect()
}

/// The rows as a table, with the servers' names as column headers.
pub fn to_table(candidate: &str, baseline: &str, rows: &[Compared]) -> String {
    let value = |metric: &str, v: Option<f64>| {
        v.map_or_else(|| "-".to_owned(), |v| format_extra(metric, v))
    };
    let mut table = Table::new([
        "run".to_owned(),
        "metric".to_owned(),
        candidate.to_owned(),
        baseline.to_owned(),
        format!("{candidate}/{baseline}"),
        "target".to_owned(),
        "met".to_owned(),
    ]);
    for row in rows {
        table.row([
            row.label.clone(),
            row.metric.clone(),
            value(&row.metric, row.candidate),
            value(&row.metric, row.baseline),
            row.ratio
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x")),
            row.target.map_or_else(String::new, |t| t.to_string()),
            match row.met {
                Some(true) => "yes".to_owned(),
                Some(false) => "NO".to_owned(),
                None => String::new(),
            },
        ]);
    }
    table.render("")
}

/// The rows as one JSON object.
pub fn to_json(candidate: &str, baseline: &str, rows: &[Compared]) -> String {
    let doc = serde_json::json!({
        "candidate": candidate,
        "baseline": baseline,
        "rows": rows,
    });
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(label: &str, json: &str) -> Report {
        let mut r: Report = serde_json::from_str(json).unwrap();
        r.label = Some(label.into());
        r
    }

    #[test]
    fn row_specs_parse() {
        assert_eq!(
            RowSpec::parse("put-256 put.ops_per_sec >=2.0").unwrap(),
            RowSpec {
                label: "put-256".into(),
                metric: "put.ops_per_sec".into(),
                target: Some(Target::AtLeast(2.0))
            }
        );
        assert_eq!(
            RowSpec::parse("m  rss_max_mb   <=1x").unwrap().target,
            Some(Target::AtMost(1.0))
        );
        assert_eq!(RowSpec::parse("a b").unwrap().target, None);
        for bad in ["", "a", "a b c d", "a b =2", "a b >=fast"] {
            assert!(
                matches!(RowSpec::parse(bad), Err(BenchError::RowSpec { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rows_pair_runs_by_label_and_check_targets() {
        let witan = vec![
            report(
                "put",
                r#"{"workload":"put","ops":[{"name":"put","count":10,"errors":0,"ops_per_sec":300.0,"mean_ms":1.0,"p50_ms":1.0,"p90_ms":1.0,"p99_ms":8.0,"max_ms":9.0}]}"#,
            ),
            report(
                "mem",
                r#"{"workload":"memory","extra":{"rss_max_mb":90.0}}"#,
            ),
        ];
        let etcd = vec![
            report(
                "put",
                r#"{"workload":"put","ops":[{"name":"put","count":10,"errors":0,"ops_per_sec":100.0,"mean_ms":1.0,"p50_ms":1.0,"p90_ms":1.0,"p99_ms":4.0,"max_ms":9.0}]}"#,
            ),
            report("mem", r#"{"workload":"memory","extra":{"rss_max_mb":0.0}}"#),
        ];
        let rows: Vec<RowSpec> = [
            "put put.ops_per_sec >=2.0",
            "put put.p99_ms <=0.8",
            "mem rss_max_mb <=1.0",
            "gone x.count",
            "put put.p50_ms",
        ]
        .iter()
        .map(|s| RowSpec::parse(s).unwrap())
        .collect();
        let got = compare(&rows, &witan, &etcd);
        assert_eq!((got[0].ratio, got[0].met), (Some(3.0), Some(true)));
        assert_eq!((got[1].ratio, got[1].met), (Some(2.0), Some(false)));
        // A zero baseline gives no ratio rather than infinity.
        assert_eq!(
            (got[2].candidate, got[2].ratio, got[2].met),
            (Some(90.0), None, None)
        );
        assert_eq!((got[3].candidate, got[3].baseline), (None, None));
        assert_eq!((got[4].ratio, got[4].met), (Some(1.0), None));

        let table = to_table("witan", "etcd", &got);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "run",
                "metric",
                "witan",
                "etcd",
                "witan/etcd",
                "target",
                "met"
            ]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "put",
                "put.ops_per_sec",
                "300/s",
                "100/s",
                "3.00x",
                ">=",
                "2.0x",
                "yes"
            ]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            [
                "put",
                "put.p99_ms",
                "8.00",
                "ms",
                "4.00",
                "ms",
                "2.00x",
                "<=",
                "0.8x",
                "NO"
            ]
        );
        assert_eq!(
            lines[4].split_whitespace().collect::<Vec<_>>(),
            ["gone", "x.count", "-", "-", "-"]
        );

        let json: serde_json::Value =
            serde_json::from_str(&to_json("witan", "etcd", &got)).unwrap();
        assert_eq!(json["candidate"], "witan");
        assert_eq!(json["rows"][0]["ratio"], 3.0);
        assert_eq!(json["rows"][1]["target"]["at_most"], 0.8);
        assert_eq!(json["rows"][3]["candidate"], serde_json::Value::Null);
    }

    #[test]
    fn results_files_load_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(
            &path,
            "{\"workload\":\"put\",\"label\":\"a\"}\n\n{\"workload\":\"memory\"}\n",
        )
        .unwrap();
        let reports = load(&path).unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].label.as_deref(), Some("a"));

        std::fs::write(&path, "{\"workload\":\"put\"}\nnot json\n").unwrap();
        match load(&path) {
            Err(BenchError::Parse { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            load(&dir.path().join("missing")),
            Err(BenchError::Read { .. })
        ));
    }
}
