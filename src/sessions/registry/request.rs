//! Reading a connect's body (`{"key": "...", "user": "...", "env": {"NAME": "value"}}`, every member
//! optional) and checking it against its template. The body comes from whoever can reach the admin API,
//! so everything is bounded and refused plainly rather than trimmed.

use crate::config::sessions::{HostVar, SessionTemplate};
use crate::json::Json;

/// Largest body read.
pub(super) const MAX_BODY: usize = 64 * 1024;
/// Longest key: it becomes part of env values, arguments and container names.
const MAX_KEY: usize = 256;
const MAX_USER: usize = 256;
const MAX_ENV_VALUE: usize = 4096;
/// Variables the proxy sets itself: a connect may never set them, whatever `allow_env` says.
const RESERVED_ENV: &[&str] = &["PORT", "SERVERLESS_PROXY_READY_URL"];
const RESERVED_ENV_PREFIX: &str = "SPAWNGATE_";

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ConnectRequest {
    pub key: Option<String>,
    pub user: Option<String>,
    /// In the body's order.
    pub env: Vec<(String, String)>,
}

/// The request `body` makes of `template`, or why it is refused (400 `INVALID_SESSION_REQUEST`).
pub(super) fn parse(body: &[u8], template: &SessionTemplate) -> Result<ConnectRequest, String> {
    if body.len() > MAX_BODY {
        return Err(format!("the body is larger than {MAX_BODY} bytes"));
    }
    // The JSON reader would quietly replace bad bytes; a caller sending them has made a mistake.
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    if text.trim().is_empty() {
        return Ok(ConnectRequest::default());
    }
    let json = Json::parse(text.as_bytes()).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Json::Object(members) = json else {
        return Err("the body must be a JSON object".to_string());
    };
    let mut request = ConnectRequest::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &members {
        if seen.contains(&name.as_str()) {
            return Err(format!("member {} appears twice", shown(name)));
        }
        seen.push(name);
        match name.as_str() {
            "key" => request.key = optional_string(value, "key")?,
            "user" => request.user = optional_string(value, "user")?,
            "env" => request.env = read_env(value, template)?,
            other => return Err(format!("unknown member {}", shown(other))),
        }
    }
    if let Some(key) = &request.key {
        check_key(key, template)?;
    }
    if let Some(user) = &request.user {
        check_user(user)?;
    }
    Ok(request)
}

/// A string member; `null` is the same as leaving it out.
fn optional_string(value: &Json, what: &str) -> Result<Option<String>, String> {
    match value {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s.clone())),
        _ => Err(format!("{what} must be a string")),
    }
}

fn check_key(key: &str, template: &SessionTemplate) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(format!("key must be 1 to {MAX_KEY} bytes long"));
    }
    if key.chars().any(char::is_control) {
        return Err("key must not contain control characters".to_string());
    }
    if !template.key_pattern.is_match(key) {
        return Err(format!(
            "key {} does not match the template's key_pattern {}",
            shown(key),
            shown(template.key_pattern.as_str())
        ));
    }
    if template.hostname.var == HostVar::Key && !is_dns_label(key) {
        return Err(format!(
            "key {} must be a DNS label (lower-case letters, digits and '-', 1 to 63, not starting or \
             ending with '-'): it names the session's hostname",
            shown(key)
        ));
    }
    Ok(())
}

fn check_user(user: &str) -> Result<(), String> {
    if user.len() > MAX_USER {
        return Err(format!("user must be at most {MAX_USER} bytes long"));
    }
    // It is sent to the backend as a header field: a CR or LF would split the request.
    if user.chars().any(char::is_control) {
        return Err("user must not contain control characters".to_string());
    }
    Ok(())
}

/// Lower-case `[a-z0-9-]`, 1..=63, not starting or ending with '-'.
pub(super) fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn read_env(value: &Json, template: &SessionTemplate) -> Result<Vec<(String, String)>, String> {
    let members = match value {
        Json::Null => return Ok(Vec::new()),
        Json::Object(members) => members,
        _ => return Err("env must be an object of strings".to_string()),
    };
    let mut env: Vec<(String, String)> = Vec::with_capacity(members.len());
    for (name, value) in members {
        if is_reserved(name) {
            return Err(format!("env {} is set by the proxy itself", shown(name)));
        }
        if !template.allow_env.iter().any(|allowed| allowed == name) {
            return Err(format!(
                "env {} is not in the template's allow_env",
                shown(name)
            ));
        }
        if env.iter().any(|(seen, _)| seen == name) {
            return Err(format!("env {} appears twice", shown(name)));
        }
        let Json::String(value) = value else {
            return Err(format!("env {} must be a string", shown(name)));
        };
        if value.contains('\0') {
            return Err(format!("env {} must not contain NUL", shown(name)));
        }
        if value.len() > MAX_ENV_VALUE {
            return Err(format!(
                "env {} is longer than {MAX_ENV_VALUE} bytes",
                shown(name)
            ));
        }
        env.push((name.clone(), value.clone()));
    }
    Ok(env)
}

fn is_reserved(name: &str) -> bool {
    RESERVED_ENV.contains(&name) || name.starts_with(RESERVED_ENV_PREFIX)
}

/// A caller's text quoted for an error message, cut short so a long one does not fill the reply.
fn shown(text: &str) -> String {
    const LONGEST: usize = 64;
    match text.char_indices().nth(LONGEST) {
        Some((cut, _)) => format!("\"{}...\"", &text[..cut]),
        None => format!("\"{text}\""),
    }
}
