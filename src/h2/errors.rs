//! How a stream fails: the proxy's JSON error answer while nothing was sent yet, a reset once the
//! response is under way, or nothing at all when the client itself went away.

use bytes::Bytes;
use h2::server::SendResponse;
use h2::Reason;
use http::header::HeaderValue;
use http::{Response, StatusCode};

use crate::error::ProxyError;

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
    if let Ok(id) = HeaderValue::from_bytes(request_id) {
        headers.insert("x-request-id", id);
    }
    headers.insert("content-length", HeaderValue::from(body.len()));
    (response, body)
}

/// Answers a stream with the proxy's error. The body is small (well under any flow-control window the
/// client can set at its start), so it is handed over in one piece.
pub fn answer(respond: &mut SendResponse<Bytes>, err: &ProxyError, request_id: &[u8]) {
    let (response, body) = error_response(err, request_id);
    match respond.send_response(response, false) {
        Ok(mut stream) => {
            if let Err(e) = stream.send_data(body, true) {
                log::debug!("could not send an error body: {e}");
            }
        }
        Err(e) => log::debug!("could not send an error response: {e}"),
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
