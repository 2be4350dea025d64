//! Errors the proxy answers with: one code, one status, one JSON body shape.
//!
//! Every error response is `{"code": "...", "message": "...", "status": N}` with an `X-Proxy-Error: CODE`
//! header, so clients and operators can tell a proxy error from a backend's own 5xx.

use std::fmt;

/// Declares [`ErrorCode`] and [`ErrorCode::ALL`] from one list, so the list of every code (which metrics
/// index by `code as usize`) cannot drift from the enum.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $code:ident,)*) => {
        /// Every error the proxy can answer a request with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[$doc])* $code,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order: a code's index is `code as usize`.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code,)*];
        }
    };
}

error_codes! {
    MissingHostHeader,
    UnknownHost,
    BackendShuttingDown,
    BackendUnhealthy,
    BackendStartFailed,
    RequestTimeout,
    ConnectionFailed,
    /// TLS with a backend at `https://` failed: its certificate was not accepted (unknown CA, another
    /// name, expired), or it does not speak TLS.
    BackendTls,
    /// The backend's response could not be parsed or framed.
    BadGateway,
    /// The request is malformed or ambiguous (RFC 9112); never forwarded.
    BadRequest,
    /// The client took too long to send its request head or body.
    ClientTimeout,
    PayloadTooLarge,
    UriTooLong,
    HeaderFieldsTooLarge,
    /// A transfer coding or method the proxy does not forward.
    NotImplemented,
    VersionNotSupported,
    /// Too many requests are already waiting for this backend to start.
    TooManyHeld,
    NotFound,
    MethodNotAllowed,
    /// The host has a route table and no route of it matches the request.
    NoRoute,
    /// Every ready instance of a pool was at its `max_in_flight` for the whole `queue_timeout_secs`.
    QueueTimeout,
    /// A session hostname without a valid token or cookie (the same whether the session exists or not).
    SessionUnauthorized,
    /// A valid credential of a session that has ended (within its `tombstone_secs`).
    SessionEnded,
    /// Admin API: no session template of that name.
    UnknownTemplate,
    /// Admin API: no session of that id (or it ended longer ago than its `tombstone_secs`).
    UnknownSession,
    /// Admin API: the key belongs to a live session of another template.
    SessionKeyConflict,
    /// Admin API: the template's `max_running` is reached and nothing may be evicted.
    SessionLimitReached,
    /// Admin API: bad JSON, a key not matching `key_pattern`, a variable outside `allow_env`.
    InvalidSessionRequest,
    /// Admin API: no valid bearer token (`admin_token_file`).
    Unauthorized,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MissingHostHeader | BadRequest | InvalidSessionRequest => 400,
            SessionUnauthorized | Unauthorized => 401,
            UnknownHost | NotFound | NoRoute | UnknownTemplate | UnknownSession => 404,
            MethodNotAllowed => 405,
            ClientTimeout => 408,
            SessionKeyConflict => 409,
            SessionEnded => 410,
            PayloadTooLarge => 413,
            UriTooLong => 414,
            HeaderFieldsTooLarge => 431,
            NotImplemented => 501,
            ConnectionFailed | BackendTls | BadGateway => 502,
            BackendShuttingDown | BackendUnhealthy | BackendStartFailed | TooManyHeld
            | QueueTimeout | SessionLimitReached => 503,
            RequestTimeout => 504,
            VersionNotSupported => 505,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MissingHostHeader => "MISSING_HOST_HEADER",
            UnknownHost => "UNKNOWN_HOST",
            BackendShuttingDown => "BACKEND_SHUTTING_DOWN",
            BackendUnhealthy => "BACKEND_UNHEALTHY",
            BackendStartFailed => "BACKEND_START_FAILED",
            RequestTimeout => "REQUEST_TIMEOUT",
            ConnectionFailed => "CONNECTION_FAILED",
            BackendTls => "BACKEND_TLS",
            BadGateway => "BAD_GATEWAY",
            BadRequest => "BAD_REQUEST",
            ClientTimeout => "CLIENT_TIMEOUT",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            UriTooLong => "URI_TOO_LONG",
            HeaderFieldsTooLarge => "HEADER_FIELDS_TOO_LARGE",
            NotImplemented => "NOT_IMPLEMENTED",
            VersionNotSupported => "HTTP_VERSION_NOT_SUPPORTED",
            TooManyHeld => "TOO_MANY_WAITING_REQUESTS",
            NotFound => "NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            NoRoute => "NO_ROUTE",
            QueueTimeout => "QUEUE_TIMEOUT",
            SessionUnauthorized => "SESSION_UNAUTHORIZED",
            SessionEnded => "SESSION_ENDED",
            UnknownTemplate => "UNKNOWN_TEMPLATE",
            UnknownSession => "UNKNOWN_SESSION",
            SessionKeyConflict => "SESSION_KEY_CONFLICT",
            SessionLimitReached => "SESSION_LIMIT_REACHED",
            InvalidSessionRequest => "INVALID_SESSION_REQUEST",
            Unauthorized => "UNAUTHORIZED",
        }
    }

    pub fn reason(self) -> &'static str {
        reason_phrase(self.status())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error response about to be sent: the code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds a client should wait before trying again (sent as `Retry-After`).
    pub retry_after_secs: Option<u64>,
    /// The methods the target accepts (sent as `Allow` with a 405).
    pub allow: Option<Box<str>>,
}

impl ProxyError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProxyError {
            code,
            message: message.into(),
            retry_after_secs: None,
            allow: None,
        }
    }

    /// 405 for a request whose path a route matched but not its method: `methods` go in `Allow`.
    pub fn method_not_allowed(methods: &[String]) -> Self {
        let allow = methods.join(", ");
        let message = format!("this path accepts only {allow}");
        let mut err = ProxyError::new(ErrorCode::MethodNotAllowed, message);
        err.allow = Some(allow.into());
        err
    }

    /// 404 for a request that no route of its host's table matches.
    pub fn no_route(host: &str) -> Self {
        ProxyError::new(
            ErrorCode::NoRoute,
            format!("no route of host {host} matches this request"),
        )
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The JSON body: `{"code":"...","message":"...","status":N}`.
    pub fn json_body(&self) -> String {
        let mut body = String::with_capacity(64 + self.message.len());
        body.push_str("{\"code\":\"");
        body.push_str(self.code.as_str());
        body.push_str("\",\"message\":");
        push_json_string(&mut body, &self.message);
        body.push_str(",\"status\":");
        body.push_str(&self.code.status().to_string());
        body.push('}');
        body
    }

    /// A complete HTTP/1.1 response. `request_id` is echoed when known; `close` adds `Connection: close`.
    pub fn to_http1(
        &self,
        request_id: Option<&[u8]>,
        close: bool,
        extra_headers: &[(&str, &str)],
    ) -> Vec<u8> {
        let body = self.json_body();
        let mut out = Vec::with_capacity(256 + body.len());
        let status = self.code.status();
        out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", status, self.code.reason()).as_bytes());
        out.extend_from_slice(b"Content-Type: application/json\r\n");
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        out.extend_from_slice(b"X-Proxy-Error: ");
        out.extend_from_slice(self.code.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(secs) = self.retry_after_secs {
            out.extend_from_slice(format!("Retry-After: {secs}\r\n").as_bytes());
        }
        if let Some(allow) = &self.allow {
            out.extend_from_slice(b"Allow: ");
            out.extend_from_slice(allow.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(id) = request_id {
            out.extend_from_slice(b"X-Request-ID: ");
            out.extend_from_slice(id);
            out.extend_from_slice(b"\r\n");
        }
        for (name, value) in extra_headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body.as_bytes());
        out
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.code.status(),
            self.message
        )
    }
}

impl std::error::Error for ProxyError {}

/// Appends `s` as a JSON string literal.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The standard reason phrase for the statuses the proxy itself sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        401 => "Unauthorized",
        403 => "Forbidden",
        410 => "Gone",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_escapes_the_message() {
        let e = ProxyError::new(ErrorCode::UnknownHost, "no backend for \"a\\b\"\n");
        assert_eq!(
            e.json_body(),
            r#"{"code":"UNKNOWN_HOST","message":"no backend for \"a\\b\"\n","status":404}"#
        );
    }

    #[test]
    fn http1_response_carries_code_header_and_length() {
        let e = ProxyError::new(ErrorCode::RequestTimeout, "slow");
        let text = String::from_utf8(e.to_http1(Some(b"abc"), true, &[])).unwrap();
        assert!(text.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"));
        assert!(text.contains("X-Proxy-Error: REQUEST_TIMEOUT\r\n"));
        assert!(text.contains("X-Request-ID: abc\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())));
    }
}
