//! The reactor's listening sockets, bound (or taken from the service manager) before any thread starts,
//! so a port in use fails the start at once; and the mailbox the other threads are given.

use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};

use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};

use super::signals::Signals;
use super::{Reactor, Wiring, ADMIN_LISTENER, LISTENER, SIGNALS, WAKER};
use crate::config::Config;
use crate::msg::{Mailbox, ReactorMsg};
use crate::systemd::Inherited;

/// The reactor's sockets, bound before any thread starts so that a port in use fails the start at once,
/// and its mailbox, which the supervisor is given.
pub struct Bound {
    pub(super) poll: Poll,
    pub(super) listener: TcpListener,
    #[cfg(feature = "tls")]
    pub(super) https: Option<super::https::Https>,
    pub(super) admin_listener: TcpListener,
    pub(super) signals: Signals,
    pub(super) waker: Arc<Waker>,
    pub(super) tx: mpsc::Sender<ReactorMsg>,
    pub(super) inbox: mpsc::Receiver<ReactorMsg>,
}

impl Bound {
    /// Binds the proxy's and the admin listener, or takes the ones the service manager passed
    /// (`inherited`; then `bind`/`port` and `admin_bind`/`admin_port` do not apply to them); and the
    /// HTTPS listener when `https_port` is set (feature `tls`; always bound here, never inherited).
    pub fn bind(config: &Config, inherited: Inherited) -> io::Result<Bound> {
        let poll = Poll::new()?;
        let registry = poll.registry();

        let mut listener = match inherited.http {
            Some(socket) => adopt(socket)?,
            None => {
                let addr = SocketAddr::new(config.server.bind, config.server.port);
                let listener = TcpListener::bind(addr).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
                })?;
                raise_backlog(&listener);
                listener
            }
        };
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut admin_listener = match inherited.admin {
            Some(socket) => adopt(socket)?,
            None => {
                let admin_addr =
                    SocketAddr::new(config.server.admin_bind, config.server.admin_port);
                TcpListener::bind(admin_addr).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot listen on {admin_addr} (admin): {e}"),
                    )
                })?
            }
        };
        registry.register(&mut admin_listener, ADMIN_LISTENER, Interest::READABLE)?;
        log::info!("proxy listening on {}", listener.local_addr()?);
        // Bound here too, before any thread starts: a port in use or a bad certificate fails the start.
        #[cfg(feature = "tls")]
        let https = super::https::Https::bind(config, registry)?;
        log::info!("admin listening on {}", admin_listener.local_addr()?);

        let signals = Signals::register(registry, SIGNALS)?;
        let waker = Arc::new(Waker::new(registry, WAKER)?);
        let (tx, inbox) = mpsc::channel();
        Ok(Bound {
            poll,
            listener,
            #[cfg(feature = "tls")]
            https,
            admin_listener,
            signals,
            waker,
            tx,
            inbox,
        })
    }

    /// Where the supervisor reports.
    pub fn mailbox(&self) -> Mailbox<ReactorMsg> {
        Mailbox::new(self.tx.clone(), self.waker.clone())
    }

    /// The base of the ready-callback URL backends are given: the admin listener, reachable on loopback
    /// when it is bound to every interface.
    pub fn ready_url_base(&self) -> io::Result<String> {
        admin_base(&self.admin_listener)
    }

    /// Runs the proxy until SIGTERM/SIGINT has drained and stopped every backend.
    pub fn serve(self, config: Config, wiring: Wiring) -> io::Result<()> {
        let mut reactor = Reactor::new(self, config, wiring)?;
        if let Some(notifier) = &reactor.notifier {
            notifier.ready(&format!("{} backends configured", reactor.routes.len()));
        }
        reactor.event_loop()
    }
}

/// The admin listener's URL, on loopback when it is bound to every interface.
pub(super) fn admin_base(admin_listener: &TcpListener) -> io::Result<String> {
    let mut addr = admin_listener.local_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(format!("http://{addr}"))
}

/// Connections the kernel queues for `accept`: std and mio ask for 128, which drops SYNs (and stalls clients
/// for seconds) under a burst of new connections long before `max_connections` is reached. The kernel caps
/// this at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// A listener the service manager bound, made ready for the poll.
fn adopt(socket: std::net::TcpListener) -> io::Result<TcpListener> {
    socket.set_nonblocking(true)?;
    log::info!("using the listener passed by the service manager");
    Ok(TcpListener::from_std(socket))
}

pub(super) fn raise_backlog(listener: &TcpListener) {
    let raised = nix::sys::socket::Backlog::new(LISTEN_BACKLOG)
        .and_then(|backlog| nix::sys::socket::listen(listener, backlog));
    if let Err(e) = raised {
        log::warn!("cannot raise the listen backlog to {LISTEN_BACKLOG}: {e}");
    }
}
