//! How a stream fails: the proxy's JSON error answer while nothing was sent yet, a reset once the
//! response is under way, or nothing at all when the client itself went away.

use bytes::Bytes;
use h2::server::SendResponse;
use h2::Reason;
use http::header::HeaderValue;
use http::{Response, StatusCode};

use super::tally::Tally;
use crate::error::ProxyError;
use crate::upstream::LocalAnswer;

/// Why a stream's exchange with its backend ended early.
#[derive(Debug)]
pub enum Failure {
    /// Nothing was sent to the client yet: answer with this error.
    Answer(ProxyError),
    /// The backend failed after the response head was sent; the stream can only be reset.
    Reset(&'static str),
    /// The client broke a limit (body size, body stall) after the response head was sent.
    ResetForClient(&'static str),
    /// The client reset the stream or its connection is gone.
    ClientGone,
}

/// The proxy's JSON error as an HTTP/2 response: status, `content-type`, `x-proxy-error`,
/// `x-request-id`, `content-length` and the body.
pub fn error_response(err: &ProxyError, request_id: &[u8]) -> (Response<()>, Bytes) {
    let body = Bytes::from(err.json_body());
    let mut response = Response::new(());
    *response.status_mut() =
        StatusCode::from_u16(err.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-proxy-error", HeaderValue::from_static(err.code.as_str()));
    if let Some(secs) = err.retry_after_secs {
        headers.insert("retry-after", HeaderValue::from(secs));
    }
    if let Some(allow) = err
        .allow
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        headers.insert("allow", allow);
    }
    if let Ok(id) = HeaderValue::from_bytes(request_id) {
        headers.insert("x-request-id", id);
    }
    headers.insert("content-length", HeaderValue::from(body.len()));
    (response, body)
}

/// `Strict-Transport-Security` on a response over TLS (`max_age` from `hsts_max_age_secs`), unless
/// the backend or the route set its own; the same rule as HTTP/1's.
pub fn add_hsts(headers: &mut http::HeaderMap, max_age: Option<u64>) {
    if let Some(secs) = max_age {
        if !headers.contains_key(http::header::STRICT_TRANSPORT_SECURITY) {
            let value = HeaderValue::from_str(&format!("max-age={secs}"));
            if let Ok(value) = value {
                headers.insert(http::header::STRICT_TRANSPORT_SECURITY, value);
            }
        }
    }
}

/// Answers a stream with the proxy's error. The body is small (well under any flow-control window the
/// client can set at its start), so it is handed over in one piece.
pub fn answer(
    respond: &mut SendResponse<Bytes>,
    err: &ProxyError,
    (request_id, hsts): (&[u8], Option<u64>),
    tally: &Tally,
) {
    let (mut response, body) = error_response(err, request_id);
    add_hsts(response.headers_mut(), hsts);
    tally.answered(err.code.status(), Some(err.code), body.len());
    match respond.send_response(response, false) {
        Ok(mut stream) => {
            if let Err(e) = stream.send_data(body, true) {
                log::debug!("could not send an error body: {e}");
            }
        }
        Err(e) => log::debug!("could not send an error response: {e}"),
    }
}

/// Answers a stream with a route's own response (a redirect or a fixed answer).
pub fn answer_local(
    respond: &mut SendResponse<Bytes>,
    answer: &LocalAnswer,
    is_head: bool,
    (request_id, hsts): (&[u8], Option<u64>),
    tally: &Tally,
) {
    let mut response = Response::new(());
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if let Some(location) = answer.location.as_deref() {
        match HeaderValue::from_bytes(location) {
            Ok(location) => {
                headers.insert("location", location);
            }
            Err(_) => log::warn!("a redirect location is not a valid field value"),
        }
    }
    if let Some(ct) = answer.shown_content_type() {
        if let Ok(ct) = HeaderValue::from_str(ct) {
            headers.insert("content-type", ct);
        }
    }
    if answer.status != 204 {
        headers.insert(
            "content-length",
            HeaderValue::from(answer.body_for(false).len()),
        );
    }
    if let Ok(id) = HeaderValue::from_bytes(request_id) {
        headers.insert("x-request-id", id);
    }
    for (name, value) in &answer.fields {
        let name = http::header::HeaderName::from_bytes(name.as_bytes());
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    add_hsts(headers, hsts);
    let body = answer.body_for(is_head);
    tally.answered(answer.status, None, body.len());
    match respond.send_response(response, body.is_empty()) {
        Ok(mut stream) if !body.is_empty() => {
            if let Err(e) = stream.send_data(Bytes::copy_from_slice(body), true) {
                log::debug!("could not send a route's body: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => log::debug!("could not send a route's response: {e}"),
    }
}

/// Ends a stream whose response was under way.
pub fn reset(respond: &mut SendResponse<Bytes>) {
    respond.send_reset(Reason::INTERNAL_ERROR);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn errors_are_json_with_code_and_id() {
        let err = ProxyError::new(ErrorCode::UnknownHost, "no backend for host x");
        let (response, body) = error_response(&err, b"rid");
        assert_eq!(response.status(), 404);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["x-proxy-error"], "UNKNOWN_HOST");
        assert_eq!(headers["x-request-id"], "rid");
        assert_eq!(headers["content-length"], body.len().to_string().as_str());
        assert_eq!(body, err.json_body());
    }
}
