//! The live status view: one row per backend, pool and session, as JSON for `GET /status`, framed as a
//! server-sent event for `GET /status/events`, and the page (`GET /`) that shows it. Sans-IO: the reactor
//! gathers the rows and owns the event streams (`reactor::status_feed`).

use crate::error::push_json_string;

/// The status page: one self-contained file (no external assets), small enough to read on a phone.
pub const STATUS_PAGE: &str = include_str!("status_page.html");

/// What a row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Backend,
    Pool,
    Session,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Backend => "backend",
            Kind::Pool => "pool",
            Kind::Session => "session",
        }
    }
}

/// One backend, pool or session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    pub name: String,
    pub kind: Kind,
    /// The instance's state, or "N/M ready" for several instances.
    pub state: String,
    pub instances: usize,
    pub ready: usize,
    pub in_flight: usize,
    pub held: usize,
    /// Unix seconds of the latest start of any instance.
    pub started_at: Option<u64>,
    /// Requests answered so far (the page turns two readings into a rate); `None` when not counted.
    pub requests: Option<u64>,
}

/// `{"generation":G,"time":T,"backends":[...]}`, rows in the order given.
pub fn status_json(generation: u64, unix_secs: u64, rows: &[StatusRow]) -> String {
    let mut out = format!(r#"{{"generation":{generation},"time":{unix_secs},"backends":["#);
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"name":"#);
        push_json_string(&mut out, &row.name);
        out.push_str(r#","kind":""#);
        out.push_str(row.kind.as_str());
        out.push_str(r#"","state":"#);
        push_json_string(&mut out, &row.state);
        out.push_str(&format!(
            r#","instances":{},"ready":{},"in_flight":{},"held":{},"started_at":{},"requests":{}}}"#,
            row.instances,
            row.ready,
            row.in_flight,
            row.held,
            number_or_null(row.started_at),
            number_or_null(row.requests),
        ));
    }
    out.push_str("]}");
    out
}

/// The snapshot as one server-sent event (`event: status`); JSON has no raw newline, so one data line.
pub fn status_event(json: &str) -> String {
    format!("event: status\ndata: {json}\n\n")
}

fn number_or_null(n: Option<u64>) -> String {
    n.map_or_else(|| "null".to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> StatusRow {
        StatusRow {
            name: name.to_string(),
            kind: Kind::Pool,
            state: "1/2 ready".to_string(),
            instances: 2,
            ready: 1,
            in_flight: 3,
            held: 0,
            started_at: Some(1_700_000_000),
            requests: None,
        }
    }

    #[test]
    fn the_snapshot_is_json_with_names_escaped() {
        let json = status_json(4, 99, &[row("a\"b"), row("c")]);
        let parsed = crate::json::Json::parse(json.as_bytes()).expect("valid JSON");
        let rows = parsed.get("backends").and_then(|b| b.as_array()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get("name").and_then(|n| n.as_str()), Some("a\"b"));
        assert_eq!(rows[0].get("kind").and_then(|n| n.as_str()), Some("pool"));
        assert!(json.contains(r#""requests":null"#));
        assert!(json.starts_with(r#"{"generation":4,"time":99,"#));
    }

    #[test]
    fn an_event_is_one_data_line() {
        let event = status_event(&status_json(1, 2, &[row("x\ny")]));
        assert_eq!(event.matches('\n').count(), 3, "{event}");
        assert!(event.starts_with("event: status\ndata: {"));
    }

    #[test]
    fn the_page_has_no_external_assets() {
        for outside in ["src=\"http", "href=\"http", "@import", "//cdn"] {
            assert!(!STATUS_PAGE.contains(outside), "{outside}");
        }
        assert!(STATUS_PAGE.contains("/status/events"));
        assert!(STATUS_PAGE.len() < 8 * 1024);
    }
}
