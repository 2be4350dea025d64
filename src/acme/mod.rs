//! Certificates by ACME (feature `acme`, issue 18): an ACME client on a thread of its own that orders,
//! stores and renews certificates and tells the reactor by message. Built apart from the reactor so
//! wiring it in is small: the reactor starts [`thread::spawn`] with a callback that posts to its
//! mailbox, sends [`AcmeCmd::Obtain`] for each host without a file certificate, answers HTTP-01 tokens
//! before routing and TLS-ALPN-01 in its ClientHello hook (confirming each with [`AcmeCmd::Serving`]),
//! and swaps in what [`AcmeEvent::CertReady`] carries.
//!
//! * [`messages`]: the commands and events between the two threads.
//! * [`schedule`]: when to order, renew and retry (sans-IO).
//! * [`storage`]: the storage directory (account, certificates, lock).
//! * [`http`]: instant-acme's HTTP client over ureq, and which roots the CA's HTTPS is checked against.
//! * [`alpn`]: the TLS-ALPN-01 certificate.
//! * [`client`]: one order, from account to stored chain.
//! * [`thread`]: the thread, its runtime, its timers.

pub mod alpn;
pub mod client;
pub mod http;
pub mod messages;
pub mod schedule;
pub mod storage;
pub mod thread;

pub use messages::{AcmeCmd, AcmeEvent, Served};
pub use thread::{spawn, AcmeHandle};
