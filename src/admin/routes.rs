//! `GET /hosts` (every host's compiled route table) and `GET /routes/explain` (how one request would be
//! routed, and why each earlier route did not take it), as JSON.

use crate::error::{push_json_string, ErrorCode};
use crate::http1::fields::FieldName;
use crate::http1::rewrite::{FieldLine, RequestSource};
use crate::http1::{Framing, Version};
use crate::upstream::route_match::{Conditions, HeaderTest, PathCond};
use crate::upstream::route_table::{action_text, HostRoutes};
use crate::upstream::{normalize_host, Explanation, RouteTable};

/// `{"hosts":[{"name","aliases","allow_encoded_slashes","routes":[...]}],"catch_all":[{"host","to"}]}`
pub fn hosts_json(table: &RouteTable) -> String {
    let mut out = String::from(r#"{"hosts":["#);
    for (i, host) in table.tables().enumerate() {
        if i > 0 {
            out.push(',');
        }
        host_json(host, &mut out);
    }
    out.push_str(r#"],"catch_all":["#);
    let mut catch_alls: Vec<_> = table.catch_alls().collect();
    catch_alls.sort_by(|a, b| a.host.cmp(&b.host));
    for (i, to) in catch_alls.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"host":"#);
        push_json_string(&mut out, &to.host);
        out.push_str(r#","to":"#);
        push_json_string(&mut out, &to.host);
        out.push('}');
    }
    out.push_str("]}");
    out
}

fn host_json(host: &HostRoutes, out: &mut String) {
    out.push_str(r#"{"name":"#);
    push_json_string(out, &host.name);
    out.push_str(r#","aliases":"#);
    push_string_list(out, host.aliases.iter().map(String::as_str));
    out.push_str(&format!(
        r#","allow_encoded_slashes":{},"routes":["#,
        host.rules.allow_encoded_slashes
    ));
    for (i, route) in host.routes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(r#"{{"index":{},"line":{},"#, i + 1, route.line));
        conditions_json(&route.conditions, out);
        out.push_str(r#","action":"#);
        push_json_string(out, &action_text(&route.action));
        out.push('}');
    }
    out.push_str("]}");
}

fn conditions_json(conditions: &Conditions, out: &mut String) {
    out.push_str(r#""path":"#);
    match &conditions.path {
        PathCond::Any => out.push_str("null"),
        PathCond::Exact(p) => push_json_string(out, &format!("= {p}")),
        PathCond::Prefix(p) => push_json_string(out, &format!("under {p}")),
        PathCond::Regex(p) => push_json_string(out, &format!("~ {}", p.text)),
    }
    out.push_str(r#","methods":"#);
    match &conditions.methods {
        Some(methods) => push_string_list(out, methods.iter().map(String::as_str)),
        None => out.push_str("null"),
    }
    out.push_str(r#","headers":"#);
    let headers: Vec<String> = conditions
        .headers
        .iter()
        .map(|h| match &h.test {
            HeaderTest::Equals(v) => format!("{} = {v}", h.name),
            HeaderTest::Regex(p) => format!("{} ~ {}", h.name, p.text),
            HeaderTest::Present(true) => format!("{} present", h.name),
            HeaderTest::Present(false) => format!("{} absent", h.name),
        })
        .collect();
    push_string_list(out, headers.iter().map(String::as_str));
}

fn push_string_list<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, item);
    }
    out.push(']');
}

/// `GET /routes/explain?host=H&path=P&method=M&header=Name:value...`: `Err` is a 400 for a query
/// without a host.
pub fn explain_json(table: &RouteTable, query: &[u8]) -> Result<String, (ErrorCode, String)> {
    let request = ExplainRequest::from_query(query);
    let Some(raw_host) = request.host.as_deref() else {
        return Err((
            ErrorCode::BadRequest,
            "give host=, path= and method=".into(),
        ));
    };
    let mut scratch = String::new();
    let host = normalize_host(raw_host.as_bytes(), &mut scratch).unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default().to_string();
    let explanation = table.explain(&host, &request);
    Ok(explanation_json(&host, &request, &explanation))
}

fn explanation_json(host: &str, request: &ExplainRequest, e: &Explanation) -> String {
    let mut out = String::from(r#"{"request":{"host":"#);
    push_json_string(&mut out, host);
    out.push_str(r#","method":"#);
    push_json_string(&mut out, &String::from_utf8_lossy(&request.method));
    out.push_str(r#","target":"#);
    push_json_string(&mut out, &String::from_utf8_lossy(&request.target));
    out.push_str(r#"},"host":"#);
    match &e.host {
        Some(name) => push_json_string(&mut out, name),
        None => out.push_str("null"),
    }
    out.push_str(&format!(r#","table":{},"#, e.table));
    match &e.path {
        Ok(path) => {
            out.push_str(r#""path":"#);
            push_json_string(&mut out, path);
        }
        Err(why) => {
            out.push_str(r#""path":null,"path_refused":"#);
            push_json_string(&mut out, why);
        }
    }
    out.push_str(r#","routes":["#);
    for (i, verdict) in e.routes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"index":{},"line":{},"matched":{},"why_not":"#,
            verdict.index,
            verdict.line,
            verdict.why_not.is_none()
        ));
        match &verdict.why_not {
            Some(why) => push_json_string(&mut out, why),
            None => out.push_str("null"),
        }
        out.push('}');
    }
    out.push_str(r#"],"outcome":"#);
    push_json_string(&mut out, &e.outcome);
    out.push('}');
    out
}

/// The request `/routes/explain` describes, as routing reads it.
#[derive(Debug, Default)]
struct ExplainRequest {
    host: Option<String>,
    method: Vec<u8>,
    target: Vec<u8>,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ExplainRequest {
    fn from_query(query: &[u8]) -> ExplainRequest {
        let mut request = ExplainRequest {
            method: b"GET".to_vec(),
            target: b"/".to_vec(),
            ..ExplainRequest::default()
        };
        for pair in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], percent_decode(&pair[at + 1..])),
                None => (pair, Vec::new()),
            };
            match key {
                b"host" => request.host = Some(String::from_utf8_lossy(&value).into_owned()),
                b"method" => request.method = value.to_ascii_uppercase(),
                b"path" => request.target = value,
                b"header" => {
                    if let Some(at) = value.iter().position(|&b| b == b':') {
                        let name = value[..at].to_vec();
                        let field = value[at + 1..].trim_ascii().to_vec();
                        request.fields.push((name, field));
                    }
                }
                _ => {}
            }
        }
        request
    }
}

/// `%XX` and `+` (a space) decoded; a malformed escape is kept as written.
fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match raw[i] {
            b'%' => {
                let digit = |at: usize| raw.get(at).and_then(|&b| hex(b));
                match (digit(i + 1), digit(i + 2)) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

impl RequestSource for ExplainRequest {
    fn method(&self) -> &[u8] {
        &self.method
    }

    fn target(&self) -> &[u8] {
        &self.target
    }

    fn version(&self) -> Version {
        Version::Http11
    }

    fn authority(&self) -> Option<&[u8]> {
        self.host.as_deref().map(str::as_bytes)
    }

    fn host_from_authority(&self) -> bool {
        true
    }

    fn framing(&self) -> Framing {
        Framing::None
    }

    fn upgrade(&self) -> bool {
        false
    }

    fn connection_values(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::empty()
    }

    fn fields(&self) -> impl Iterator<Item = FieldLine<'_>> {
        self.fields.iter().map(|(name, value)| FieldLine {
            name,
            value,
            kind: FieldName::classify(name),
            joins_previous: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_queries_are_percent_decoded() {
        assert_eq!(percent_decode(b"/a%2Fb+c%zz%4"), b"/a/b c%zz%4");
        let request = ExplainRequest::from_query(
            b"host=Site.Test&method=post&path=%2Fx%3Fq%3D1&header=X-A%3A%201",
        );
        assert_eq!(request.host.as_deref(), Some("Site.Test"));
        assert_eq!(request.method, b"POST");
        assert_eq!(request.target, b"/x?q=1");
        assert_eq!(request.fields, [(b"X-A".to_vec(), b"1".to_vec())]);
        let bare = ExplainRequest::from_query(b"");
        assert_eq!(
            (bare.method.as_slice(), bare.target.as_slice()),
            (&b"GET"[..], &b"/"[..])
        );
    }
}
