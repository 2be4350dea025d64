//! Supervisor thread (stub; being written).
