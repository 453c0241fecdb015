//! The result of one run: what ran with which parameters, a [`Summary`]
//! per operation, and workload-specific numbers (`extra`: CAS conflicts,
//! the failover write gap...). Printed as a table for people or as one
//! JSON object per line (`--json`) for scripts; `compare` reads the JSON
//! back, which is why the type is also `Deserialize`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::Summary;
use crate::table::{self, Table};

/// One run's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The workload, e.g. `put`.
    pub workload: String,
    /// The caller's name for this run (`--label`), used by `compare` to
    /// pair runs of two servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The settings the run used.
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// How long the measured part of the run took, in seconds.
    #[serde(default)]
    pub elapsed_s: f64,
    /// One summary per operation, the workload's main operation first.
    #[serde(default)]
    pub ops: Vec<Summary>,
    /// Workload-specific numbers, by name.
    #[serde(default)]
    pub extra: BTreeMap<String, f64>,
    /// Things a reader should know about this run (the leader killed...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report for `workload`.
    pub fn new(workload: &str) -> Report {
        Report {
            workload: workload.to_owned(),
            label: None,
            params: BTreeMap::new(),
            elapsed_s: 0.0,
            ops: Vec::new(),
            extra: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Records a parameter.
    pub fn param(&mut self, name: &str, value: impl Into<serde_json::Value>) -> &mut Report {
        self.params.insert(name.to_owned(), value.into());
        self
    }

    /// Records a workload-specific number.
    pub fn extra(&mut self, name: &str, value: f64) -> &mut Report {
        self.extra.insert(name.to_owned(), value);
        self
    }

    /// A metric by name: `OP.FIELD` (`put.p99_ms`, see
    /// [`Summary::field`]) or the name of an `extra` number.
    pub fn metric(&self, name: &str) -> Option<f64> {
        if let Some(value) = self.extra.get(name) {
            return Some(*value);
        }
        let (op, field) = name.split_once('.')?;
        self.ops.iter().find(|s| s.name == op)?.field(field)
    }

    /// Failed operations over every operation of the run.
    pub fn errors(&self) -> u64 {
        self.ops.iter().map(|s| s.errors).sum()
    }

    /// The report as one line of JSON.
    pub fn to_json_line(&self) -> String {
        // A struct of strings, numbers and maps with string keys always
        // serialises.
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("a Report serialises"))
    }

    /// The report as a table for people.
    pub fn to_table(&self) -> String {
        let mut out = self.workload.clone();
        if let Some(label) = &self.label {
            out.push_str(&format!(" [{label}]"));
        }
        out.push_str(&format!(": {:.2} s\n", self.elapsed_s));
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        if !params.is_empty() {
            out.push_str(&format!("  {}\n", params.join("  ")));
        }
        let mut ops = Table::new([
            "op", "count", "errors", "ops/s", "mean ms", "p50 ms", "p90 ms", "p99 ms", "max ms",
        ]);
        for s in &self.ops {
            ops.row([
                s.name.clone(),
                table::thousands(s.count),
                table::thousands(s.errors),
                table::quantity(s.ops_per_sec),
                table::millis(s.mean_ms),
                table::millis(s.p50_ms),
                table::millis(s.p90_ms),
                table::millis(s.p99_ms),
                table::millis(s.max_ms),
            ]);
        }
        out.push_str(&ops.render("  "));
        if !self.extra.is_empty() {
            let mut extra = Table::default();
            for (name, value) in &self.extra {
                extra.row([name.clone(), format_extra(name, *value)]);
            }
            out.push_str(&extra.render("  "));
        }
        for s in &self.ops {
            if let Some(error) = &s.first_error {
                out.push_str(&format!("  first {} error: {error}\n", s.name));
            }
        }
        for note in &self.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
        out
    }
}

/// An extra number with the unit its name ends in.
pub fn format_extra(name: &str, value: f64) -> String {
    if name.ends_with("_ms") {
        format!("{} ms", table::millis(value))
    } else if name.ends_with("_s") {
        format!("{value:.2} s")
    } else if name.ends_with("_mb") {
        format!("{value:.1} MB")
    } else if name.ends_with("per_sec") {
        format!("{}/s", table::quantity(value))
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        table::thousands(value.abs() as u64)
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Recorder;
    use std::time::Duration;

    fn sample() -> Report {
        let mut cas = Recorder::new();
        for _ in 0..10 {
            cas.record(Duration::from_millis(2));
        }
        cas.record_error(&"etcdserver: request timed out");
        let mut report = Report::new("txn-cas");
        report.label = Some("cas-64".into());
        report.elapsed_s = 2.0;
        report.param("clients", 64).param("endpoints", "http://a:1");
        report.ops.push(cas.summary("cas", Duration::from_secs(2)));
        report
            .extra("conflicts", 3.0)
            .extra("successes_per_sec", 3.5);
        report.notes.push("hello".into());
        report
    }

    #[test]
    fn metrics_are_found_in_ops_and_extra() {
        let r = sample();
        assert_eq!(r.metric("cas.count"), Some(10.0));
        assert_eq!(r.metric("cas.ops_per_sec"), Some(5.0));
        assert_eq!(r.metric("conflicts"), Some(3.0));
        assert_eq!(r.metric("put.count"), None);
        assert_eq!(r.metric("cas.bogus"), None);
        assert_eq!(r.metric("nothing"), None);
        assert_eq!(r.errors(), 1);
    }

    #[test]
    fn json_is_one_line_and_reads_back() {
        let r = sample();
        let line = r.to_json_line();
        assert!(!line.contains('\n'));
        let back: Report = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["ops"][0]["name"], "cas");
        assert_eq!(value["params"]["clients"], 64);
        assert_eq!(value["extra"]["conflicts"], 3.0);
    }

    #[test]
    fn a_minimal_json_object_is_a_report() {
        // What compare.sh writes for the resident-memory measurement.
        let r: Report = serde_json::from_str(
            r#"{"workload":"memory","label":"memory","extra":{"rss_max_mb":181.5}}"#,
        )
        .unwrap();
        assert_eq!(r.metric("rss_max_mb"), Some(181.5));
        assert!(r.ops.is_empty());
    }

    #[test]
    fn the_table_shows_every_part() {
        let table = sample().to_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "txn-cas [cas-64]: 2.00 s");
        assert_eq!(lines[1], "  clients=64  endpoints=http://a:1");
        assert!(
            lines[2].starts_with("  op   count  errors  ops/s"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("  cas     10       1    5.0"),
            "{}",
            lines[3]
        );
        assert_eq!(
            lines[4].split_whitespace().collect::<Vec<_>>(),
            ["conflicts", "3"]
        );
        assert_eq!(
            lines[5].split_whitespace().collect::<Vec<_>>(),
            ["successes_per_sec", "3.5/s"]
        );
        assert!(table.contains("  first cas error: etcdserver: request timed out\n"));
        assert!(table.ends_with("  note: hello\n"));
    }

    #[test]
    fn extras_carry_their_unit() {
        assert_eq!(format_extra("longest_gap_ms", 1234.5), "1234.50 ms");
        assert_eq!(format_extra("kill_at_s", 3.0), "3.00 s");
        assert_eq!(format_extra("rss_max_mb", 181.25), "181.2 MB");
        assert_eq!(format_extra("failed_writes", 12000.0), "12,000");
        assert_eq!(format_extra("ratio", 0.25), "0.25");
    }
}
