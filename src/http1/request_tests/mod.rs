//! The request-head parser, case by case: the helpers here, the request line and fields in `syntax`,
//! what the head means for framing, connection and limits in `semantics`.

use super::*;

fn parse(text: &[u8]) -> RequestHead {
    match parse_request(text) {
        Ok(Some(head)) => head,
        other => panic!("{:?} for {:?}", other, String::from_utf8_lossy(text)),
    }
}

fn status_of(text: &[u8]) -> u16 {
    match parse_request(text) {
        Err(e) => e.code.status(),
        other => panic!("{:?} for {:?}", other, String::from_utf8_lossy(text)),
    }
}

fn at<'b>(buf: &'b [u8], range: &Range<usize>) -> &'b [u8] {
    &buf[range.clone()]
}

mod semantics;
mod syntax;
