//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per family, then
//! its samples, `name{label="value",...} number`. Sans-IO: it writes into a `String`.
//!
//! Label values are escaped (`\\`, `\"`, `\n`), as are HELP texts (`\\`, `\n`); labels with an empty
//! value are left out (Prometheus treats both alike).

use std::fmt::Write;

use super::atomic::HistogramSnapshot;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Label names and values of one sample.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family: every sample written until the next `family` belongs to it.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        let _ = writeln!(self.out, "\n# TYPE {name} {}", kind.as_str());
    }

    pub fn sample(&mut self, name: &str, labels: Labels<'_>, value: u64) {
        self.name_and_labels(name, labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    pub fn sample_f64(&mut self, name: &str, labels: Labels<'_>, value: f64) {
        self.name_and_labels(name, labels, None);
        self.out.push(' ');
        push_f64(&mut self.out, value);
        self.out.push('\n');
    }

    /// A histogram's `_bucket` (one per bound, then `+Inf`), `_sum` and `_count` samples.
    pub fn histogram(&mut self, name: &str, labels: Labels<'_>, h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        let les = h.buckets.labels.iter().copied().chain(["+Inf"]);
        for (le, count) in les.zip(&h.cumulative) {
            self.name_and_labels(&bucket, labels, Some(le));
            let _ = writeln!(self.out, " {count}");
        }
        self.sample_f64(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count());
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn name_and_labels(&mut self, name: &str, labels: Labels<'_>, le: Option<&str>) {
        self.out.push_str(name);
        let mut first = true;
        let present = labels.iter().filter(|(_, v)| !v.is_empty()).copied();
        for (label, value) in present.chain(le.map(|le| ("le", le))) {
            self.out.push(if first { '{' } else { ',' });
            first = false;
            self.out.push_str(label);
            self.out.push_str("=\"");
            escape_label_value(&mut self.out, value);
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
    }
}

fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Rust prints floats without exponents and with the shortest exact digits; only the special values
/// need Prometheus's spelling.
fn push_f64(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::atomic::{Histogram, START_BUCKETS};

    #[test]
    fn a_family_has_help_type_and_escaped_labels() {
        let mut e = Exposition::default();
        e.family(
            "spawngate_x_total",
            Kind::Counter,
            "Things, with a \\ and\na newline.",
        );
        e.sample(
            "spawngate_x_total",
            &[("backend", "a\"b\\c\nd"), ("code", ""), ("class", "2xx")],
            7,
        );
        e.sample("spawngate_x_total", &[], 0);
        assert_eq!(
            e.finish(),
            "# HELP spawngate_x_total Things, with a \\\\ and\\na newline.\n\
             # TYPE spawngate_x_total counter\n\
             spawngate_x_total{backend=\"a\\\"b\\\\c\\nd\",class=\"2xx\"} 7\n\
             spawngate_x_total 0\n"
        );
    }

    #[test]
    fn a_histogram_is_cumulative_with_inf_sum_and_count() {
        let h = Histogram::new(&START_BUCKETS);
        h.observe(Duration::from_millis(300));
        h.observe(Duration::from_millis(1200));
        let mut e = Exposition::default();
        e.family("t_seconds", Kind::Histogram, "T.");
        e.histogram("t_seconds", &[("backend", "b")], &h.snapshot());
        let text = e.finish();
        assert!(text.contains("t_seconds_bucket{backend=\"b\",le=\"0.25\"} 0\n"));
        assert!(text.contains("t_seconds_bucket{backend=\"b\",le=\"0.5\"} 1\n"));
        assert!(text.contains("t_seconds_bucket{backend=\"b\",le=\"2\"} 2\n"));
        assert!(text.contains("t_seconds_bucket{backend=\"b\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("t_seconds_sum{backend=\"b\"} 1.5\n"));
        assert!(text.contains("t_seconds_count{backend=\"b\"} 2\n"));
    }

    #[test]
    fn special_floats_are_spelled_as_prometheus_reads_them() {
        let mut s = String::new();
        for v in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.000001, 3.0] {
            push_f64(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "+Inf -Inf NaN 0.000001 3 ");
    }
}
