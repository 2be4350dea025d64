//! `Server-Timing: cold-start;dur=<ms>` on a response that waited for its backend to start (W3C Server
//! Timing): one spelling for HTTP/1 heads ([`write_response`](super::write_response)) and h2 heads.

use std::time::Duration;

/// The field's name as HTTP/1 writes it (h2 lower-cases it).
pub const SERVER_TIMING: &str = "Server-Timing";

/// The field's value for a request held `waited` while its backend started: whole milliseconds, as
/// precise as a start is worth.
pub fn cold_start_value(waited: Duration) -> String {
    format!("cold-start;dur={}", waited.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_given_in_milliseconds() {
        assert_eq!(
            cold_start_value(Duration::from_micros(1_234_567)),
            "cold-start;dur=1234"
        );
    }
}
