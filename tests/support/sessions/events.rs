//! `GET /sessions/{id}/events`: the server-sent events of a session, read to the end of the stream.

use spawngate::json::Json;

use super::super::client::{read_final_head, Client};
use super::super::Proxy;

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Json,
}

/// The `event:`/`data:` frames of a `text/event-stream` body (comments and unknown fields skipped).
pub fn parse_events(body: &str) -> Vec<Event> {
    body.split("\n\n")
        .filter_map(|frame| {
            let mut name = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            let data = Json::parse(data.as_bytes()).unwrap_or(Json::Null);
            name.map(|name| Event { name, data })
        })
        .collect()
}

/// An open `GET /sessions/{id}/events`: the head has arrived, so the proxy has subscribed it.
pub struct EventStream {
    client: Client,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl EventStream {
    pub fn open(proxy: &Proxy, id: &str) -> EventStream {
        let mut client = Client::connect(proxy.admin_addr());
        client.send(
            format!("GET /sessions/{id}/events HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
        );
        let (status, headers) =
            read_final_head(client.reader()).unwrap_or_else(|e| panic!("events head: {e}"));
        EventStream {
            client,
            status,
            headers,
        }
    }

    /// Every event until the proxy closes the stream (within the client's I/O timeout).
    pub fn read_to_end(mut self) -> Vec<Event> {
        let mut body = Vec::new();
        std::io::Read::read_to_end(self.client.reader(), &mut body)
            .unwrap_or_else(|e| panic!("the event stream did not end: {e}"));
        parse_events(&String::from_utf8_lossy(&body))
    }
}

/// The names of `events`, and the `reason` of the last one.
pub fn names(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.name.clone()).collect()
}
