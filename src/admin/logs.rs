//! `GET /backends/{name}/logs`: the last lines each instance of a backend, pool or session wrote, as
//! kept in its tail ([`crate::msg::output`]). Text by default, one line per output line:
//!
//! ```text
//! 2026-01-02T03:04:05.678Z stderr: listening on 3000                (a [backends] entry)
//! 2026-01-02T03:04:05.678Z instance=1 stdout: GET / 200             (a pool's or session's instance)
//! ```
//! a pool's instances merged in time order; `?format=json` gives each instance's lines apart.
//! Lines of one stream are in the order written; between stdout and stderr, in the order read.

use crate::error::{push_json_string, ErrorCode};
use crate::msg::OutputLine;

/// One instance's kept output.
pub struct InstanceOutput {
    pub slot: u32,
    pub lines: Vec<OutputLine>,
    /// Lines kept but left out of the proxy's log (it could not keep up).
    pub not_logged: u64,
}

/// A backend's output, for the answer.
pub struct BackendOutput {
    pub name: String,
    /// A pool or a session: lines are labelled with their instance.
    pub pool: bool,
    pub instances: Vec<InstanceOutput>,
}

/// The `{name}` of `/backends/{name}/logs` (a session's is `session/{id}`).
pub fn logs_path(path: &[u8]) -> Option<String> {
    let name = path.strip_prefix(b"/backends/")?.strip_suffix(b"/logs")?;
    let name = std::str::from_utf8(name).ok()?;
    (!name.is_empty()).then(|| name.trim_end_matches('.').to_ascii_lowercase())
}

/// The answer: the lines of `found`, 404 when there is no backend, pool or session of that name.
pub fn logs_response(
    method: &[u8],
    name: &str,
    query: &[u8],
    found: Option<BackendOutput>,
) -> Vec<u8> {
    if method != b"GET" && method != b"HEAD" {
        return super::error(ErrorCode::MethodNotAllowed, "use GET");
    }
    let Some(output) = found else {
        return super::error(
            ErrorCode::NotFound,
            &format!("no backend, pool or session named {name}"),
        );
    };
    let json = query
        .split(|&b| b == b'&')
        .any(|pair| pair == b"format=json");
    match json {
        true => super::json_ok(&logs_json(&output)),
        false => text_ok(&logs_text(&output)),
    }
}

fn logs_text(output: &BackendOutput) -> String {
    let mut lines: Vec<(u32, &OutputLine)> = output
        .instances
        .iter()
        .flat_map(|i| i.lines.iter().map(move |line| (i.slot, line)))
        .collect();
    // Stable: each instance's own order stays as written.
    lines.sort_by_key(|(_, line)| line.unix_ms);
    let mut out = String::new();
    for (slot, line) in lines {
        out.push_str(&rfc3339_ms(line.unix_ms));
        if output.pool {
            out.push_str(&format!(" instance={slot}"));
        }
        out.push_str(&format!(" {}: {}\n", line.stream.name(), line.text));
    }
    out
}

fn logs_json(output: &BackendOutput) -> String {
    let mut out = String::from(r#"{"name":"#);
    push_json_string(&mut out, &output.name);
    out.push_str(r#","instances":["#);
    for (i, instance) in output.instances.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"instance":{},"not_logged":{},"lines":["#,
            instance.slot, instance.not_logged
        ));
        for (j, line) in instance.lines.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                r#"{{"time":"{}","unix_ms":{},"stream":"{}","text":"#,
                rfc3339_ms(line.unix_ms),
                line.unix_ms,
                line.stream.name()
            ));
            push_json_string(&mut out, &line.text);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out
}

fn text_ok(body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// `2026-01-02T03:04:05.678Z`: Unix milliseconds as UTC.
pub fn rfc3339_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let of_day = secs % 86_400;
    let (year, month, day) = crate::civil::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;
