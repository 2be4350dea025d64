//! Admin API (stub; being written).
