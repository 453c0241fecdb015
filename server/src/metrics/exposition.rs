//! Writing the Prometheus text exposition format (version 0.0.4): `# HELP`
//! and `# TYPE` once per family, then one line per series.

use std::fmt::Write;

use super::histogram::HistogramSnapshot;

/// Label names and values of one series.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// A scrape's text, built family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// The text so far.
    pub fn finish(self) -> String {
        self.out
    }

    /// Starts a family: its help text and type (`gauge`, `counter`,
    /// `histogram`).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        self
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: Labels<'_>, value: f64) -> &mut Self {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", format_value(value));
        self
    }

    /// A one-series gauge family.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) -> &mut Self {
        self.family(name, "gauge", help).sample(name, &[], value)
    }

    /// A one-series counter family.
    pub fn counter(&mut self, name: &str, help: &str, value: f64) -> &mut Self {
        self.family(name, "counter", help).sample(name, &[], value)
    }

    /// The series of one histogram (after [`Exposition::family`]).
    pub fn histogram_series(
        &mut self,
        name: &str,
        labels: Labels<'_>,
        h: &HistogramSnapshot,
    ) -> &mut Self {
        for (bound, count) in &h.buckets {
            let le = if bound.is_infinite() {
                "+Inf".to_string()
            } else {
                format_value(*bound)
            };
            let _ = write!(self.out, "{name}_bucket");
            write_labels(&mut self.out, labels, Some(&le));
            let _ = writeln!(self.out, " {count}");
        }
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", format_value(h.sum));
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", h.count);
        self
    }

    /// A one-series histogram family.
    pub fn histogram(&mut self, name: &str, help: &str, h: &HistogramSnapshot) -> &mut Self {
        self.family(name, "histogram", help)
            .histogram_series(name, &[], h)
    }
}

fn write_labels(out: &mut String, labels: Labels<'_>, le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
    for (name, value) in all {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{name}=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::Histogram;

    #[test]
    fn families_and_series_in_text_format() {
        let mut e = Exposition::default();
        e.gauge("up", "Whether it is up.", 1.0);
        e.family("calls_total", "counter", "Calls.").sample(
            "calls_total",
            &[("method", "Put"), ("code", "a\"b")],
            3.0,
        );
        let h = Histogram::new([0.5]);
        h.observe(std::time::Duration::from_millis(250));
        e.histogram("lat_seconds", "Latency.", &h.snapshot());
        assert_eq!(
            e.finish(),
            "# HELP up Whether it is up.\n# TYPE up gauge\nup 1\n\
             # HELP calls_total Calls.\n# TYPE calls_total counter\n\
             calls_total{method=\"Put\",code=\"a\\\"b\"} 3\n\
             # HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n\
             lat_seconds_bucket{le=\"0.5\"} 1\nlat_seconds_bucket{le=\"+Inf\"} 1\n\
             lat_seconds_sum 0.25\nlat_seconds_count 1\n"
        );
    }
}
