//! One TLS connection without its socket: bytes from the socket go in ([`TlsSession::feed`]), plaintext
//! comes out ([`TlsSession::take_plaintext`]); plaintext goes in ([`TlsSession::write_plaintext`]),
//! bytes for the socket come out ([`TlsSession::pending_tls_out`]).
//!
//! The reactor's client stream owns one next to its socket (`reactor::client_tls`): `fill` = socket -> `feed` ->
//! `take_plaintext` into the session's buffer; `flush` = `write_plaintext` -> `pending_tls_out` into the socket.
//! Interest follows [`TlsSession::wants_read`] / [`TlsSession::wants_write`], and
//! [`TlsSession::plaintext_pending`] says decrypted bytes wait with no new socket event to come (with
//! edge triggering the caller must come back for them on its own).
//!
//! ```text
//!  Accepting ──ClientHello──▶ Hello ──accept_with(config)──▶ Established (handshaking, then open)
//!      │ garbage, too large       │ config refuses the hello       │ protocol error
//!      └──────────────────────────┴────────────────────────────────┴──▶ Failed: an alert to send, then close
//! ```
//! The ClientHello is read first with rustls' `Acceptor`, so the caller picks the certificate (and later
//! the ACME challenge answer) with plain data it owns, instead of inside a rustls callback. An h2
//! connection is handed on established ([`TlsSession::into_connection`]), not as its hello.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::server::{Accepted, Acceptor, ServerConfig, ServerConnection};

/// Outgoing TLS bytes (and plaintext written during the handshake) held per connection before
/// `write_plaintext` accepts no more: rustls' default, and the size of the reactor's client buffers.
pub const BUFFER_LIMIT: usize = 64 * 1024;

/// Bytes kept of what the client sent before its ClientHello was complete (the hello itself, for a
/// hand-off): real ones are under 2 KiB, even with post-quantum key shares.
pub const MAX_HELLO_BYTES: usize = 16 * 1024;

/// What the ClientHello asked for, read before any certificate is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHelloFacts {
    /// The SNI host name, as rustls validated it (lower-case DNS name); `None` for clients that send
    /// none (IP-literal URLs).
    pub server_name: Option<String>,
    /// The ALPN protocols offered, in the client's order (empty when the extension is absent).
    pub alpn: Vec<Vec<u8>>,
}

impl ClientHelloFacts {
    /// Whether it is an ACME TLS-ALPN-01 validation (RFC 8737), which gets a challenge certificate.
    pub fn offers_acme_tls(&self) -> bool {
        self.alpn.iter().any(|p| p == super::ACME_TLS_ALPN)
    }

    /// Whether the session will be h2: ALPN is chosen by server preference, so when the server offers
    /// `h2` first ([`super::ALPN`]), a client that offers it gets it.
    pub fn will_be_h2(&self) -> bool {
        super::ALPN.first() == Some(&&b"h2"[..]) && self.alpn.iter().any(|p| p == b"h2")
    }
}

/// Why a session failed. After one, send what [`TlsSession::pending_tls_out`] still gives (an alert), then
/// close.
#[derive(Debug)]
pub enum TlsError {
    /// The client broke the protocol, or the handshake could not agree (versions, ALPN, ciphers).
    Protocol(rustls::Error),
    /// The ClientHello was not complete within [`MAX_HELLO_BYTES`].
    HelloTooLarge,
    /// rustls refused the bytes (a record larger than the protocol allows).
    Input(io::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Protocol(e) => write!(f, "TLS: {e}"),
            TlsError::HelloTooLarge => {
                write!(f, "TLS: no complete ClientHello in {MAX_HELLO_BYTES} bytes")
            }
            TlsError::Input(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// What [`TlsSession::take_plaintext`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Plaintext {
    Bytes(usize),
    /// Nothing decrypted yet (or no room offered).
    Nothing,
    /// The client sent close_notify: a clean end of its stream.
    End,
    /// The socket ended without close_notify (common among HTTP clients; the HTTP framing tells whether
    /// anything was cut off).
    Truncated,
}

enum State {
    Accepting(Box<Acceptor>),
    Hello(Box<Accepted>),
    Established(Box<ServerConnection>),
    /// The alert to send, and how much of it is sent.
    Failed(Vec<u8>, usize),
}

pub struct TlsSession {
    state: State,
    /// What was fed while accepting: the ClientHello as it came, for an h2 hand-off (freed once the
    /// handshake continues here).
    hello_bytes: Vec<u8>,
    facts: Option<ClientHelloFacts>,
    buffer_limit: usize,
    /// Decrypted bytes inside rustls not yet taken.
    plaintext_ready: usize,
    /// The error an established connection failed with, repeated to later calls (its alert is queued
    /// in rustls).
    failed: Option<rustls::Error>,
}

impl Default for TlsSession {
    fn default() -> Self {
        TlsSession::new(BUFFER_LIMIT)
    }
}

impl TlsSession {
    /// A session waiting for a ClientHello; `buffer_limit` bounds rustls' outgoing buffers.
    pub fn new(buffer_limit: usize) -> Self {
        TlsSession {
            state: State::Accepting(Box::default()),
            hello_bytes: Vec::new(),
            facts: None,
            buffer_limit,
            plaintext_ready: 0,
            failed: None,
        }
    }

    /// Gives bytes read from the socket; returns how many were taken. Fewer than offered is
    /// backpressure (decrypted plaintext waits for [`TlsSession::take_plaintext`], or a ClientHello waits
    /// for [`TlsSession::accept_with`]): keep the rest and offer it again later.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, TlsError> {
        match &mut self.state {
            State::Accepting(acceptor) => {
                let room = MAX_HELLO_BYTES.saturating_sub(self.hello_bytes.len());
                if room == 0 && !bytes.is_empty() {
                    return Err(self.fail(Vec::new(), TlsError::HelloTooLarge));
                }
                let offered = &bytes[..bytes.len().min(room)];
                let mut rest = offered;
                while !rest.is_empty() {
                    match acceptor.read_tls(&mut rest) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => return Err(self.fail(Vec::new(), TlsError::Input(e))),
                    }
                }
                let consumed = offered.len() - rest.len();
                self.hello_bytes.extend_from_slice(&offered[..consumed]);
                match acceptor.accept() {
                    Ok(Some(accepted)) => {
                        self.facts = Some(facts(&accepted));
                        self.state = State::Hello(Box::new(accepted));
                    }
                    Ok(None) if self.hello_bytes.len() >= MAX_HELLO_BYTES => {
                        return Err(self.fail(Vec::new(), TlsError::HelloTooLarge));
                    }
                    Ok(None) => {}
                    Err((e, mut alert)) => {
                        let mut out = Vec::new();
                        // Writing to a Vec cannot fail.
                        let _ = alert.write_all(&mut out);
                        return Err(self.fail(out, TlsError::Protocol(e)));
                    }
                }
                Ok(consumed)
            }
            State::Hello(_) | State::Failed(..) => Ok(0),
            State::Established(conn) => {
                if let Some(e) = &self.failed {
                    return Err(TlsError::Protocol(e.clone()));
                }
                let mut rest = bytes;
                while !rest.is_empty() {
                    match conn.read_tls(&mut rest) {
                        Ok(0) => break,
                        Ok(_) => self.plaintext_ready = process(conn, &mut self.failed)?,
                        // "received plaintext buffer full": the reader has not drained yet.
                        Err(e) if e.kind() == io::ErrorKind::Other && self.plaintext_ready > 0 => {
                            break
                        }
                        Err(e) => {
                            self.failed = Some(rustls::Error::General(e.to_string()));
                            return Err(TlsError::Input(e));
                        }
                    }
                }
                Ok(bytes.len() - rest.len())
            }
        }
    }

    /// The socket reached its end of stream.
    pub fn feed_eof(&mut self) {
        if let State::Established(conn) = &mut self.state {
            // Reading from an empty slice records the end; it never fails.
            let _ = conn.read_tls(&mut &[][..]);
        }
    }

    /// The ClientHello's facts, once it arrived (they stay available after).
    pub fn client_hello(&self) -> Option<&ClientHelloFacts> {
        self.facts.as_ref()
    }

    /// Whether a ClientHello waits for [`TlsSession::accept_with`].
    pub fn awaiting_config(&self) -> bool {
        matches!(self.state, State::Hello(_))
    }

    /// Continues the handshake with the config the caller chose for the ClientHello. Does nothing
    /// unless [`TlsSession::awaiting_config`].
    pub fn accept_with(&mut self, config: Arc<ServerConfig>) -> Result<(), TlsError> {
        if !self.awaiting_config() {
            return Ok(());
        }
        let State::Hello(accepted) =
            std::mem::replace(&mut self.state, State::Failed(Vec::new(), 0))
        else {
            return Ok(());
        };
        // Kept only for a hand-off instead of this call; the connection stays here now.
        self.hello_bytes = Vec::new();
        match accepted.into_connection(config) {
            Ok(mut conn) => {
                conn.set_buffer_limit(Some(self.buffer_limit));
                // Records that came after the ClientHello are already buffered.
                let processed = process(&mut conn, &mut self.failed);
                self.state = State::Established(Box::new(conn));
                self.plaintext_ready = processed?;
                Ok(())
            }
            Err((e, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                Err(self.fail(out, TlsError::Protocol(e)))
            }
        }
    }

    /// Moves decrypted bytes into `out`.
    pub fn take_plaintext(&mut self, out: &mut [u8]) -> Plaintext {
        let State::Established(conn) = &mut self.state else {
            return Plaintext::Nothing;
        };
        if out.is_empty() {
            return Plaintext::Nothing;
        }
        match conn.reader().read(out) {
            Ok(0) => Plaintext::End,
            Ok(n) => {
                self.plaintext_ready = self.plaintext_ready.saturating_sub(n);
                Plaintext::Bytes(n)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Plaintext::Truncated,
            Err(_) => Plaintext::Nothing,
        }
    }

    /// Decrypted bytes are waiting in the session (take them; no socket event will announce them).
    pub fn plaintext_pending(&self) -> bool {
        self.plaintext_ready > 0
    }

    /// Encrypts what fits of `data` (written out by [`TlsSession::pending_tls_out`]); returns how much was
    /// taken. 0 with data offered is backpressure: flush first.
    pub fn write_plaintext(&mut self, data: &[u8]) -> usize {
        match &mut self.state {
            State::Established(conn) if self.failed.is_none() => {
                conn.writer().write(data).unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Writes pending TLS bytes (handshake, records, alerts) to `out`, once; returns bytes written.
    pub fn pending_tls_out(&mut self, out: &mut dyn Write) -> io::Result<usize> {
        match &mut self.state {
            State::Established(conn) => conn.write_tls(out),
            State::Failed(alert, sent) if *sent < alert.len() => {
                let n = out.write(&alert[*sent..])?;
                *sent += n;
                Ok(n)
            }
            _ => Ok(0),
        }
    }

    /// Whether to read the socket: false while a ClientHello waits for its config, while decrypted
    /// bytes wait to be taken, and after the end (close_notify or failure).
    pub fn wants_read(&self) -> bool {
        match &self.state {
            State::Accepting(_) => true,
            State::Established(conn) => self.failed.is_none() && conn.wants_read(),
            State::Hello(_) | State::Failed(..) => false,
        }
    }

    /// Whether TLS bytes wait for the socket.
    pub fn wants_write(&self) -> bool {
        match &self.state {
            State::Established(conn) => conn.wants_write(),
            State::Failed(alert, sent) => *sent < alert.len(),
            State::Accepting(_) | State::Hello(_) => false,
        }
    }

    /// True until the handshake completed (and during all of accepting).
    pub fn is_handshaking(&self) -> bool {
        match &self.state {
            State::Established(conn) => conn.is_handshaking(),
            _ => true,
        }
    }

    /// Whether the session failed; only the alert remains to send.
    pub fn has_failed(&self) -> bool {
        self.failed.is_some() || matches!(self.state, State::Failed(..))
    }

    /// The ALPN protocol agreed (`h2`, `http/1.1`), once the handshake got that far.
    pub fn alpn(&self) -> Option<&[u8]> {
        match &self.state {
            State::Established(conn) => conn.alpn_protocol(),
            _ => None,
        }
    }

    /// The bytes the client sent up to its complete ClientHello, for handing the connection on (to the
    /// h2 worker, which then runs the handshake itself). Empty again after [`TlsSession::accept_with`].
    pub fn hello_bytes(&self) -> &[u8] {
        &self.hello_bytes
    }

    /// The established connection, for a hand-off (to the h2 worker) that continues it elsewhere: what
    /// rustls holds (decrypted plaintext, TLS output not yet written) goes with it. `None` before the
    /// handshake began or after a failure.
    pub fn into_connection(self) -> Option<ServerConnection> {
        match self.state {
            State::Established(conn) if self.failed.is_none() => Some(*conn),
            _ => None,
        }
    }

    /// Queues close_notify (the end of our stream); flush it with [`TlsSession::pending_tls_out`].
    pub fn send_close_notify(&mut self) {
        if let State::Established(conn) = &mut self.state {
            conn.send_close_notify();
        }
    }

    fn fail(&mut self, alert: Vec<u8>, error: TlsError) -> TlsError {
        self.state = State::Failed(alert, 0);
        self.plaintext_ready = 0;
        error
    }
}

/// Lets a byte buffer fill itself from the session (`Buffer::read_from`) like from a socket: nothing
/// ready reads as `WouldBlock`, either end of stream as 0.
impl Read for TlsSession {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.take_plaintext(out) {
            Plaintext::Bytes(n) => Ok(n),
            Plaintext::End | Plaintext::Truncated => Ok(0),
            Plaintext::Nothing if out.is_empty() => Ok(0),
            Plaintext::Nothing => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// Decrypts what was read; returns the plaintext now waiting. An error leaves its alert queued.
fn process(
    conn: &mut ServerConnection,
    failed: &mut Option<rustls::Error>,
) -> Result<usize, TlsError> {
    match conn.process_new_packets() {
        Ok(state) => Ok(state.plaintext_bytes_to_read()),
        Err(e) => {
            *failed = Some(e.clone());
            Err(TlsError::Protocol(e))
        }
    }
}

fn facts(accepted: &Accepted) -> ClientHelloFacts {
    let hello = accepted.client_hello();
    ClientHelloFacts {
        server_name: hello.server_name().map(str::to_owned),
        alpn: hello
            .alpn()
            .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
            .unwrap_or_default(),
    }
}
