//! One admin connection: read a request head, answer it with `crate::admin`, close.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use super::routes::Routes;
use crate::admin::{self, Action, BackendStatus, ConfigStatus, InstanceStatus, PoolStatus};
use crate::error::ErrorCode;
use crate::http1::request::parse_request;
use crate::upstream::BackendId;

/// Admin requests are tiny; anything bigger is not one.
const MAX_ADMIN_HEAD: usize = 8 * 1024;

pub struct AdminConn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    answered: bool,
}

pub struct Outcome {
    /// The request was a ready callback for this backend.
    pub ready: Option<(BackendId, u32)>,
    /// The request asks for a config reload; answer it with [`AdminConn::respond`].
    pub reload: bool,
    /// The answer is out (or the peer is gone): close.
    pub done: bool,
}

impl AdminConn {
    pub fn new(stream: TcpStream) -> Self {
        AdminConn {
            stream,
            inbuf: Vec::new(),
            out: Vec::new(),
            answered: false,
        }
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub fn drive(&mut self, routes: &Routes, config: &ConfigStatus) -> Outcome {
        let mut ready = None;
        let mut reload = false;
        if !self.answered {
            match self.read_head() {
                Ok(true) => {}
                Ok(false) => {
                    return Outcome {
                        ready: None,
                        reload: false,
                        done: false,
                    }
                }
                Err(()) => {
                    return Outcome {
                        ready: None,
                        reload: false,
                        done: true,
                    }
                }
            }
            self.answered = true;
            match parse_request(&self.inbuf) {
                Ok(Some(head)) => {
                    let method = &self.inbuf[head.method.clone()];
                    let path = &self.inbuf[head.target.clone()];
                    // `/backends` lists the `[backends]` entries, as before pools existed.
                    let rows = routes.iter().filter(|r| !r.config.is_pool()).map(|r| {
                        let first = r.first();
                        BackendStatus {
                            hostname: &r.host,
                            state: first.view.reported_state(),
                            port: r.config.port,
                            in_flight: first.activity.in_flight(),
                            status: first.activity.status(),
                        }
                    });
                    let pools = pool_rows(routes);
                    match admin::handle(method, path, config, rows, &pools, routes.routes()) {
                        Action::Respond(bytes) => self.out = bytes,
                        Action::ReadyCallback {
                            hostname,
                            slot,
                            response,
                        } => {
                            self.out = response;
                            // `handle` found the name among these very rows, so the table knows it.
                            ready = routes.id_of(&hostname).map(|id| (id, slot));
                        }
                        Action::Reload => reload = true,
                    }
                }
                Ok(None) => {
                    self.out =
                        admin::error(ErrorCode::HeaderFieldsTooLarge, "request head too large")
                }
                Err(e) => self.out = admin::error(e.code, e.reason),
            }
        }
        if reload {
            return Outcome {
                ready,
                reload,
                done: false,
            };
        }
        let done = !matches!(self.write_out(), Ok(false));
        Outcome {
            ready,
            reload,
            done,
        }
    }

    /// Sets the answer to a request that needed the reactor (a reload) and writes what it can.
    /// Returns true when the connection is done.
    pub fn respond(&mut self, response: Vec<u8>) -> bool {
        self.out = response;
        !matches!(self.write_out(), Ok(false))
    }

    /// Ok(true) when a whole head is buffered (or the buffer is full), Err when the peer is gone.
    fn read_head(&mut self) -> Result<bool, ()> {
        let mut chunk = [0u8; 2048];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return if self.inbuf.is_empty() {
                        Err(())
                    } else {
                        Ok(true)
                    }
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    if self.inbuf.windows(4).any(|w| w == b"\r\n\r\n")
                        || self.inbuf.len() >= MAX_ADMIN_HEAD
                    {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(()),
            }
        }
    }

    /// Ok(true) once everything is written.
    fn write_out(&mut self) -> Result<bool, ()> {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(()),
            }
        }
        Ok(true)
    }
}

/// `/pools`: each pool's instances as this thread last heard of them.
fn pool_rows(routes: &Routes) -> Vec<PoolStatus> {
    let mut pools: Vec<PoolStatus> = routes
        .iter()
        .filter_map(|backend| {
            let pool = backend.config.pool.as_ref()?;
            let instances = backend
                .instances
                .iter()
                .map(|i| InstanceStatus {
                    state: i.view.reported_state(),
                    address: i.addr.to_string(),
                    in_flight: i.activity.in_flight(),
                    facts: i.activity.facts(),
                })
                .collect();
            Some(PoolStatus {
                name: backend.host.to_string(),
                strategy: pool.strategy.name(),
                held: backend.held(),
                instances,
            })
        })
        .collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    pools
}
