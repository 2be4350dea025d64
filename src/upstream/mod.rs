//! The upstream core: what both request paths (the reactor's HTTP/1 and the h2 worker's streams) know about
//! backends, written once.

pub mod addr;
pub mod instance;

pub use addr::UpstreamAddr;
