//! Reads `[sessions.NAME]` (stub; being written).

use std::sync::Arc;

use super::SessionTemplate;
use crate::config::reader::{Ctx, Section};
use crate::config::{ServerConfig, Timings};

pub(in crate::config) fn read_all(
    _sessions: Option<Section<'_, '_>>,
    _defaults: &Timings,
    _server: &ServerConfig,
    _ctx: &mut Ctx,
) -> Vec<Arc<SessionTemplate>> {
    Vec::new()
}
