//! Serving the listener: one thread per connection (at most [`MAX_CONNECTIONS`]), keep-alive, each
//! request handed to `routes`. TCP and unix-domain connections are served alike through [`Connection`].

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::http;
use crate::knobs::{append_line, micros_since_epoch};
use crate::listen::Listener;
use crate::routes::{self, After, Settings};

/// Connections served at once; more are closed on accept so a runaway client cannot exhaust threads.
const MAX_CONNECTIONS: usize = 1024;
/// How long a connection may sit without sending; longer than the proxy's pool idle timeout (90 s).
const IDLE_READ_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a write may block on a peer that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// Buffer sizes per connection, in each direction.
const IO_BUFFER_BYTES: usize = 64 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Accepts and serves connections on `listener` until the process ends. `accept_log` (`ECHO_ACCEPT_LOG`)
/// gets the time of the first accept.
pub fn run(listener: &Listener, settings: &Arc<Settings>, accept_log: Option<String>) {
    match listener {
        Listener::Tcp(l) => accept_loop(l.incoming(), settings, accept_log),
        Listener::Unix(l) => accept_loop(l.incoming(), settings, accept_log),
    }
}

/// For `span`, accepts every connection and closes it without reading or answering a byte: what a
/// port forwarder (Docker's `docker-proxy`) does on a published port while the program behind it boots.
/// A thread accepts and drops; when the span is over this one connects to the listener itself, which
/// wakes that thread to see it is done (no polling, and std only: the echo is also built with bare
/// `rustc` for a container image).
pub fn drop_connections_for(listener: &Listener, span: Duration) {
    let done = Arc::new(AtomicBool::new(false));
    let dropper = {
        let done = Arc::clone(&done);
        let listener = match listener.try_clone() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("spawngate-echo: cannot drop connections: {e}");
                return;
            }
        };
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                // Accepted and closed at once; a failed accept just goes round.
                let _ = match &listener {
                    Listener::Tcp(l) => l.accept().map(drop),
                    Listener::Unix(l) => l.accept().map(drop),
                };
            }
        })
    };
    std::thread::sleep(span);
    done.store(true, Ordering::Release);
    let wake = match listener {
        Listener::Tcp(l) => l.local_addr().and_then(TcpStream::connect).map(drop),
        Listener::Unix(l) => l
            .local_addr()
            .and_then(|a| {
                a.as_pathname()
                    .map(UnixStream::connect)
                    .unwrap_or_else(|| Err(io::Error::other("unnamed socket")))
            })
            .map(drop),
    };
    match wake {
        Ok(()) => {
            let _ = dropper.join();
        }
        Err(e) => eprintln!("spawngate-echo: cannot end dropping connections: {e}"),
    }
}

/// A connection of either kind, as the per-connection thread uses it.
trait Connection: Read + Write + Send + Sized + 'static {
    fn try_clone(&self) -> io::Result<Self>;
    /// Timeouts (and, on TCP, no Nagle: heads and bodies go out in separate writes).
    fn tune(&self) -> io::Result<()>;
}

impl Connection for TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }
    fn tune(&self) -> io::Result<()> {
        self.set_nodelay(true)?;
        self.set_read_timeout(Some(IDLE_READ_TIMEOUT))?;
        self.set_write_timeout(Some(WRITE_TIMEOUT))
    }
}

impl Connection for UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        UnixStream::try_clone(self)
    }
    fn tune(&self) -> io::Result<()> {
        self.set_read_timeout(Some(IDLE_READ_TIMEOUT))?;
        self.set_write_timeout(Some(WRITE_TIMEOUT))
    }
}

fn accept_loop<S: Connection>(
    incoming: impl Iterator<Item = io::Result<S>>,
    settings: &Arc<Settings>,
    mut accept_log: Option<String>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in incoming {
        if let Some(path) = accept_log.take() {
            append_line(&path, &micros_since_epoch());
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("spawngate-echo: accept failed: {e}");
                std::thread::sleep(ACCEPT_RETRY_PAUSE);
                continue;
            }
        };
        if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let settings = Arc::clone(settings);
        let open = Arc::clone(&open);
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                if let Err(e) = serve_connection(stream, &settings) {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        eprintln!("spawngate-echo: connection ended: {e}");
                    }
                }
                open.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            eprintln!("spawngate-echo: cannot start a connection thread: {e}");
        }
    }
}

fn serve_connection<S: Connection>(stream: S, settings: &Settings) -> io::Result<()> {
    stream.tune()?;
    let mut reader = BufReader::with_capacity(IO_BUFFER_BYTES, stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(IO_BUFFER_BYTES, stream);
    loop {
        let head = match http::read_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let _ = writer.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = writer.flush();
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let expects_continue = head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if expects_continue && !head.is_http10() {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            writer.flush()?;
        }
        match routes::serve(&head, &mut reader, &mut writer, settings)? {
            After::KeepAlive => {}
            After::Close => return Ok(()),
            After::Exit => {
                eprintln!("spawngate-echo: exiting on /exit");
                std::process::exit(0);
            }
        }
    }
}
