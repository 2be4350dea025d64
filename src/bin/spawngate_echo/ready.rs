//! The ways a backend says it is ready: the ready callback (one `POST` to `$SERVERLESS_PROXY_READY_URL`
//! over a raw TCP connection, the way a backend that cannot serve its health path would announce itself)
//! and systemd's notification protocol (datagrams to `$NOTIFY_SOCKET`, `sd_notify`).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Attempts before giving up: the proxy may still be settling its admin listener for a moment.
const ATTEMPTS: u32 = 10;
const RETRY_PAUSE: Duration = Duration::from_millis(200);
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Splits `http://host:port/path` into (`host:port`, `/path`).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    match rest.find('/') {
        Some(i) => Some((&rest[..i], &rest[i..])),
        None => Some((rest, "/")),
    }
}

fn post_once(authority: &str, path: &str) -> io::Result<u16> {
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line)?;
    status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no status line"))
}

/// Posts the callback, retrying briefly; reports the outcome on stderr.
pub fn announce(url: &str) {
    let Some((authority, path)) = split_url(url) else {
        eprintln!("spawngate-echo: cannot use ready URL {url:?} (want http://host:port/path)");
        return;
    };
    for attempt in 1..=ATTEMPTS {
        match post_once(authority, path) {
            Ok(status) if (200..300).contains(&status) => {
                eprintln!("spawngate-echo: ready callback answered {status}");
                return;
            }
            Ok(status) => eprintln!("spawngate-echo: ready callback attempt {attempt}: {status}"),
            Err(e) => eprintln!("spawngate-echo: ready callback attempt {attempt}: {e}"),
        }
        std::thread::sleep(RETRY_PAUSE);
    }
}

/// Sends one `sd_notify` datagram (`READY=1\nSTATUS=...`) to `$NOTIFY_SOCKET`: a path, or `@name` in
/// the abstract namespace. False when there is no socket or the send failed (said on stderr).
pub fn sd_notify(message: &str) -> bool {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    let Ok(target) = std::env::var("NOTIFY_SOCKET") else {
        return false;
    };
    let addr = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(&target),
    };
    let sent =
        addr.and_then(|addr| UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), &addr));
    match sent {
        Ok(_) => true,
        Err(e) => {
            eprintln!("spawngate-echo: cannot notify {target}: {e}");
            false
        }
    }
}

/// Sends `WATCHDOG=1` every half `$WATCHDOG_USEC`, as `sd_watchdog_enabled` callers do, for the life of
/// the process. Nothing without the variable.
pub fn keep_watchdog_fed() {
    let Some(usec) = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&usec| usec > 0)
    else {
        return;
    };
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_micros(usec / 2));
        sd_notify("WATCHDOG=1");
    });
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:9/ready/a.test"),
            Some(("127.0.0.1:9", "/ready/a.test"))
        );
        assert_eq!(split_url("http://h:1"), Some(("h:1", "/")));
        assert_eq!(split_url("https://h:1/"), None);
    }
}
