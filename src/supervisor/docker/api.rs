//! The Engine API calls the driver makes, each with the statuses that mean "fine" spelled out.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use super::client::{clip, Docker, DockerError, Method, CALL_TIMEOUT};
use super::owner::MANAGED_LABEL;
use crate::json::{quote, Json};

/// Longest progress line of a pull kept for inspection; longer ones are skipped, not buffered.
const MAX_PULL_LINE: u64 = 64 * 1024;
/// Longest registry error kept in a start failure message.
const MAX_PULL_ERROR_CHARS: usize = 500;
/// Largest `wait` reply read.
const MAX_WAIT_REPLY: u64 = 64 * 1024;

/// A container as the list call shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub labels: Option<Json>,
}

/// Percent-encodes `text` for a URL path segment or query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Splits an image reference into Docker's `fromImage` and `tag`. Without a tag or digest the tag is
/// "latest": an empty tag would make the daemon pull every tag of the repository.
pub fn image_and_tag(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            (&image[..at], &image[at + 1..])
        }
        None => (image, "latest"),
    }
}

impl Docker {
    /// Whether the image is present locally.
    pub fn image_present(&self, image: &str) -> Result<bool, DockerError> {
        let path = format!("/images/{}/json", encode(image));
        match self.call(Method::Get, &path, None, None) {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pulls `image`, reading the progress stream to its end. The daemon reports a failed pull inside a
    /// 200 stream (`{"error": ...}`), so the stream is read, not just the status.
    pub fn pull(&self, image: &str, timeout: Duration) -> Result<(), DockerError> {
        let (name, tag) = image_and_tag(image);
        let mut path = format!("/images/create?fromImage={}", encode(name));
        if !tag.is_empty() {
            path.push_str(&format!("&tag={}", encode(tag)));
        }
        let reader = self.stream(Method::Post, &path, Some(timeout))?;
        let mut lines = BufReader::new(reader);
        let mut line = Vec::new();
        let mut error = None;
        loop {
            line.clear();
            let read = (&mut lines)
                .take(MAX_PULL_LINE)
                .read_until(b'\n', &mut line);
            match read {
                Ok(0) => break,
                Ok(_) if !line.ends_with(b"\n") && line.len() as u64 == MAX_PULL_LINE => {
                    skip_rest_of_line(&mut lines);
                }
                Ok(_) => {
                    if let Some(message) = pull_error(&line) {
                        error = Some(message);
                    }
                }
                Err(e) => return Err(DockerError::Broken(format!("the pull stream broke: {e}"))),
            }
        }
        match error {
            Some(message) => Err(DockerError::Failed(clip(&message, MAX_PULL_ERROR_CHARS))),
            None => Ok(()),
        }
    }

    /// Creates a container named `name`; returns its id.
    pub fn create(&self, name: &str, body: &str) -> Result<String, DockerError> {
        let path = format!("/containers/create?name={}", encode(name));
        let reply = self.call(Method::Post, &path, Some(body), None)?;
        let json = reply.json()?;
        match json.str_at("Id") {
            Some(id) if !id.is_empty() => Ok(id.to_string()),
            _ => Err(DockerError::Broken(
                "the create reply carries no container id".into(),
            )),
        }
    }

    /// The inspect data of a container (by id or name); `None` when there is no such container.
    pub fn inspect(&self, container: &str) -> Result<Option<Json>, DockerError> {
        let path = format!("/containers/{}/json", encode(container));
        match self.call(Method::Get, &path, None, None) {
            Ok(reply) => reply.json().map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn start(&self, id: &str) -> Result<(), DockerError> {
        let path = format!("/containers/{}/start", encode(id));
        match self.call(Method::Post, &path, None, None) {
            // 304: already started.
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(304) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Asks the container to stop: SIGTERM, then SIGKILL after `grace` (done by the daemon). A container
    /// that is already stopped or gone is fine.
    pub fn stop(&self, id: &str, grace: Duration) -> Result<(), DockerError> {
        let path = format!("/containers/{}/stop?t={}", encode(id), grace.as_secs());
        let timeout = grace.saturating_add(CALL_TIMEOUT);
        match self.call(Method::Post, &path, None, Some(timeout)) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.status(), Some(304 | 404)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// SIGKILL. A container that is not running (409) or gone (404) is fine.
    pub fn kill(&self, id: &str) -> Result<(), DockerError> {
        let path = format!("/containers/{}/kill", encode(id));
        match self.call(Method::Post, &path, None, None) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.status(), Some(404 | 409)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes the container, killing it first if it still runs. Gone already is fine.
    pub fn remove(&self, id: &str) -> Result<(), DockerError> {
        let path = format!("/containers/{}?force=1&v=1", encode(id));
        match self.call(Method::Delete, &path, None, None) {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Blocks until the container is not running and returns its exit code.
    pub fn wait(&self, id: &str) -> Result<i64, DockerError> {
        let path = format!("/containers/{}/wait?condition=not-running", encode(id));
        let reader = self.stream(Method::Post, &path, None)?;
        let mut body = Vec::new();
        reader
            .take(MAX_WAIT_REPLY)
            .read_to_end(&mut body)
            .map_err(|e| DockerError::Broken(format!("the wait reply broke off: {e}")))?;
        let json = Json::parse(&body).map_err(|e| DockerError::Broken(e.to_string()))?;
        json.get("StatusCode")
            .and_then(Json::as_i64)
            .ok_or_else(|| DockerError::Broken("the wait reply carries no StatusCode".into()))
    }

    /// The container's output from its start on, following it until it stops.
    pub fn follow_logs(&self, id: &str) -> Result<ureq::BodyReader<'static>, DockerError> {
        let path = format!("/containers/{}/logs?follow=1&stdout=1&stderr=1", encode(id));
        self.stream(Method::Get, &path, None)
    }

    /// Every container (running or not) labelled as Spawngate's.
    pub fn list_managed(&self) -> Result<Vec<Listed>, DockerError> {
        let filters = format!(
            "{{\"label\":[{}]}}",
            quote(&format!("{MANAGED_LABEL}=true"))
        );
        let path = format!("/containers/json?all=1&filters={}", encode(&filters));
        let reply = self.call(Method::Get, &path, None, None)?;
        let json = reply.json()?;
        let Some(items) = json.as_array() else {
            return Err(DockerError::Broken(
                "the container list is not a list".into(),
            ));
        };
        let listed = items
            .iter()
            .filter_map(|item| {
                let id = item.str_at("Id")?.to_string();
                let name = item
                    .get("Names")
                    .and_then(Json::as_array)
                    .and_then(|names| names.first())
                    .and_then(Json::as_str)
                    .map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_string());
                Some(Listed {
                    id,
                    name,
                    labels: item.get("Labels").cloned(),
                })
            })
            .collect();
        Ok(listed)
    }
}

/// The `error` of one pull progress line, if it reports one.
fn pull_error(line: &[u8]) -> Option<String> {
    let json = Json::parse(line).ok()?;
    json.str_at("error")
        .or_else(|| {
            json.path(&["errorDetail", "message"])
                .and_then(Json::as_str)
        })
        .map(str::to_string)
}

fn skip_rest_of_line(reader: &mut impl BufRead) {
    loop {
        let (done, used) = match reader.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(buf) => match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, buf.len()),
            },
        };
        reader.consume(used);
        if done {
            return;
        }
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
