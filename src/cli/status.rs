//! `spawngate status [ADMIN_URL]`: the admin API's live status (`GET /status`) as a table in the
//! terminal, the same rows the status page shows. `SPAWNGATE_ADMIN_TOKEN` is sent as the bearer token
//! when set.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::json::Json;

pub const DEFAULT_ADMIN: &str = "http://127.0.0.1:9999";
const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer read: a status snapshot of thousands of sessions fits well within it.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Fetches the snapshot from `admin` and renders it; the error says what went wrong, for stderr.
pub fn status(admin: &str, token: Option<&str>) -> Result<String, String> {
    let authority = authority(admin)?;
    let body = fetch(authority, token)?;
    let json = Json::parse(body.as_bytes())
        .map_err(|e| format!("{admin}/status did not answer JSON: {e:?}"))?;
    render(&json).ok_or_else(|| format!("{admin}/status answered JSON of another shape"))
}

/// `http://HOST:PORT[/]` or `HOST:PORT` → `HOST:PORT`.
fn authority(admin: &str) -> Result<&str, String> {
    let rest = admin.strip_prefix("http://").unwrap_or(admin);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if admin.starts_with("https://") || rest.is_empty() || rest.contains('/') || !rest.contains(':')
    {
        return Err(format!(
            "{admin:?} is not an admin address: give http://HOST:PORT (the admin API speaks HTTP)"
        ));
    }
    Ok(rest)
}

fn fetch(authority: &str, token: Option<&str>) -> Result<String, String> {
    let fail = |what: &str, e: std::io::Error| format!("{what} {authority}: {e}");
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| fail("cannot resolve", e))?
        .next()
        .ok_or_else(|| format!("cannot resolve {authority}"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| fail("cannot connect to", e))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| fail("cannot talk to", e))?;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request =
        format!("GET /status HTTP/1.1\r\nHost: {authority}\r\n{auth}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail("cannot talk to", e))?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(|e| fail("no answer from", e))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{authority} did not answer HTTP"))?;
    let status_line = head.lines().next().unwrap_or_default();
    if status_line.split(' ').nth(1) != Some("200") {
        let hint = if status_line.contains(" 401 ") {
            " (set SPAWNGATE_ADMIN_TOKEN to the admin token)"
        } else {
            ""
        };
        return Err(format!("{authority} answered {status_line:?}{hint}"));
    }
    Ok(body.to_string())
}

/// The table: one line per backend, pool and session, columns aligned.
fn render(json: &Json) -> Option<String> {
    let now = json.get("time")?.as_i64()?;
    let mut lines = vec![[
        "NAME",
        "KIND",
        "STATE",
        "IN FLIGHT",
        "HELD",
        "REQUESTS",
        "LAST START",
    ]
    .map(String::from)];
    for row in json.get("backends")?.as_array()? {
        let number = |key: &str| row.get(key).and_then(Json::as_i64);
        let shown = |key: &str| number(key).map_or_else(|| "-".to_string(), |n| n.to_string());
        lines.push([
            row.str_at("name")?.to_string(),
            row.str_at("kind")?.to_string(),
            row.str_at("state")?.to_string(),
            shown("in_flight"),
            shown("held"),
            shown("requests"),
            number("started_at").map_or_else(|| "never".to_string(), |at| ago(now - at)),
        ]);
    }
    let mut widths = [0usize; 7];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let count = lines.len() - 1;
    let generation = json.get("generation").and_then(Json::as_i64).unwrap_or(0);
    out.push_str(&format!(
        "{count} backend{}, config generation {generation}\n",
        if count == 1 { "" } else { "s" }
    ));
    Some(out)
}

fn ago(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::status::{status_json, Kind, StatusRow};

    #[test]
    fn the_table_has_a_line_per_row_aligned() {
        let rows = [
            StatusRow {
                name: "api.localhost".into(),
                kind: Kind::Backend,
                state: "ready".into(),
                instances: 1,
                ready: 1,
                in_flight: 2,
                held: 0,
                started_at: Some(940),
                requests: Some(12),
            },
            StatusRow {
                name: "workers".into(),
                kind: Kind::Pool,
                state: "0/3 ready".into(),
                instances: 3,
                ready: 0,
                in_flight: 0,
                held: 4,
                started_at: None,
                requests: None,
            },
        ];
        let json = Json::parse(status_json(7, 1000, &rows).as_bytes()).unwrap();
        let table = render(&json).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("NAME           KIND"), "{table}");
        assert!(
            lines[1].contains("ready") && lines[1].ends_with("1 min ago"),
            "{table}"
        );
        assert!(
            lines[2].contains("0/3 ready") && lines[2].ends_with("never"),
            "{table}"
        );
        assert_eq!(lines[3], "2 backends, config generation 7");
        let column = |line: &str| line.find("KIND").or_else(|| line.find("backend"));
        assert_eq!(column(lines[0]), column(lines[1]));
    }

    #[test]
    fn admin_addresses() {
        assert_eq!(authority("http://127.0.0.1:9999"), Ok("127.0.0.1:9999"));
        assert_eq!(authority("http://127.0.0.1:9999/"), Ok("127.0.0.1:9999"));
        assert_eq!(authority("localhost:80"), Ok("localhost:80"));
        for bad in ["https://a:1", "http://a", "http://a:1/x", ""] {
            assert!(authority(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nothing_listening_is_a_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let err = status(&format!("http://127.0.0.1:{port}"), None).unwrap_err();
        assert!(err.starts_with("cannot connect to 127.0.0.1:"), "{err}");
    }
}
