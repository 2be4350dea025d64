//! Supervisor thread (being written).
mod lifecycle;
mod process;
mod timers;
