//! [`LocalAnswer`]: a response a route gives itself (`redirect`, `respond`), without waking any backend;
//! written here for HTTP/1 and read field by field by the h2 worker.

use std::net::IpAddr;

use crate::config::routes::LocalRoute;
use crate::error::reason_phrase;
use crate::http1::rewrite::{write_client_ip, ResponseEdits, Vars};

/// A complete small response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAnswer {
    pub status: u16,
    /// `Location`, for redirects.
    pub location: Option<Vec<u8>>,
    pub content_type: Option<Box<str>>,
    pub body: Vec<u8>,
    /// The route's response edits, rendered (written after the fields above).
    pub fields: Vec<(Box<str>, Vec<u8>)>,
}

impl LocalRoute {
    /// The answer of a route that answers itself, for a request whose placeholders are `vars`. The
    /// route's response edits are applied as to any response: a field they remove or set
    /// (`Content-Type`, even `Location`) replaces the answer's own.
    pub fn answer(&self, vars: &Vars, client_ip: IpAddr) -> LocalAnswer {
        let (template, response) = match self {
            LocalRoute::Redirect {
                location, response, ..
            } => (location, response),
            LocalRoute::Respond { body, response, .. } => (body, response),
        };
        let mut rendered = Vec::with_capacity(template.as_str().len() + 32);
        template.render(vars, &mut rendered);
        let kept = |name: &str| !response.replaces(name.as_bytes());
        let mut answer = LocalAnswer {
            status: 0,
            location: None,
            content_type: None,
            body: Vec::new(),
            fields: edited_fields(response, vars, client_ip),
        };
        match self {
            LocalRoute::Redirect { status, .. } => {
                answer.status = *status;
                answer.location = kept("Location").then_some(rendered);
            }
            LocalRoute::Respond {
                status,
                content_type,
                ..
            } => {
                answer.status = *status;
                answer.content_type = kept("Content-Type").then(|| content_type.as_str().into());
                answer.body = rendered;
            }
        }
        answer
    }
}

/// The fields a route's response `edits` write (`client_ip` written out only if one uses it).
fn edited_fields(
    edits: &ResponseEdits,
    vars: &Vars,
    client_ip: IpAddr,
) -> Vec<(Box<str>, Vec<u8>)> {
    if edits.is_empty() {
        return Vec::new();
    }
    let mut text = Vec::new();
    let mut vars = *vars;
    if edits.uses_client_ip() {
        write_client_ip(&mut text, client_ip.into());
        vars.client_ip = &text;
    }
    edits.rendered(&vars)
}

impl LocalAnswer {
    /// The `Content-Type` written: none for a status without content.
    pub fn shown_content_type(&self) -> Option<&str> {
        self.content_type.as_deref().filter(|_| self.has_content())
    }

    /// Whether the status allows content (RFC 9110 sections 15.3.5 and 15.4.5).
    pub fn has_content(&self) -> bool {
        !matches!(self.status, 204 | 304)
    }

    /// The body as sent: empty for a HEAD request and for statuses without content.
    pub fn body_for(&self, is_head: bool) -> &[u8] {
        if is_head || !self.has_content() {
            &[]
        } else {
            &self.body
        }
    }

    /// The response as HTTP/1.1 bytes. `Content-Length` is the full body's, also for HEAD (RFC 9110
    /// section 9.3.2); a 204 has none at all.
    pub fn to_http1(&self, request_id: &[u8], close: bool, is_head: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.body.len());
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason_phrase(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(location) = &self.location {
            push_field(&mut out, b"Location", location);
        }
        if let Some(content_type) = self.shown_content_type() {
            push_field(&mut out, b"Content-Type", content_type.as_bytes());
        }
        if self.status != 204 {
            let length = if self.has_content() {
                self.body.len()
            } else {
                0
            };
            push_field(&mut out, b"Content-Length", length.to_string().as_bytes());
        }
        push_field(&mut out, b"X-Request-ID", request_id);
        for (name, value) in &self.fields {
            push_field(&mut out, name.as_bytes(), value);
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body_for(is_head));
        out
    }
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(answer: &LocalAnswer, is_head: bool) -> String {
        String::from_utf8(answer.to_http1(b"rid", false, is_head)).expect("ascii")
    }

    #[test]
    fn a_redirect_has_its_location_and_no_body() {
        let answer = LocalAnswer {
            status: 308,
            location: Some(b"https://a.test/x".to_vec()),
            content_type: None,
            body: Vec::new(),
            fields: Vec::new(),
        };
        assert_eq!(
            text(&answer, false),
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://a.test/x\r\n\
             Content-Length: 0\r\nX-Request-ID: rid\r\n\r\n"
        );
    }

    #[test]
    fn head_keeps_the_length_and_drops_the_body() {
        let answer = LocalAnswer {
            status: 200,
            location: None,
            content_type: Some("text/plain".into()),
            body: b"hello".to_vec(),
            fields: Vec::new(),
        };
        assert!(
            text(&answer, false).ends_with("Content-Length: 5\r\nX-Request-ID: rid\r\n\r\nhello")
        );
        assert!(text(&answer, true).ends_with("Content-Length: 5\r\nX-Request-ID: rid\r\n\r\n"));
    }

    #[test]
    fn no_content_means_no_body_and_no_length() {
        let answer = LocalAnswer {
            status: 204,
            location: None,
            content_type: Some("text/plain".into()),
            body: b"ignored".to_vec(),
            fields: Vec::new(),
        };
        assert_eq!(
            text(&answer, false),
            "HTTP/1.1 204 No Content\r\nX-Request-ID: rid\r\n\r\n"
        );
    }
}
