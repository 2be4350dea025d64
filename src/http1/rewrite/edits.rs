//! Header edits: [`EditableName`], [`FieldEdit`] and [`HeaderEdits`] (`set`, `add`, `remove`), for the
//! request heads a route forwards ([`ForwardPlan`](super::ForwardPlan)) and the response heads it
//! returns ([`ResponseEdits`]), with their application to an HTTP/1 head (by the writers in this module's
//! parent) and to an HTTP/2 [`HeaderMap`] ([`apply_to_header_map`]).
//!
//! An edit can only name a field the proxy does not own: framing, `Host`, connection management,
//! `Expect`, `Trailer`, `X-Request-ID`, `X-Forwarded-*` and `X-Spawngate-*` are refused when the edit is
//! built, so no configuration can smuggle a body past the proxy, break a connection's framing or forge
//! what the proxy vouches for. Values are [`Template`]s of a field form, so what they render is a valid
//! field value whatever the request holds.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::super::fields::{is_token, FieldName};
use super::plan::PlanError;
use super::template::{CaptureNames, Form, Template, Vars};

/// A field name an edit may set, add or remove: a token (RFC 9110 section 5.1) the proxy does not own.
/// Matched case-insensitively; written as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditableName(String);

impl EditableName {
    pub fn new(name: &str) -> Result<EditableName, PlanError> {
        if !is_token(name.as_bytes()) {
            return Err(PlanError::from(
                "a field name must be a token (RFC 9110 section 5.1)",
            ));
        }
        let owned_prefix = |prefix: &str| {
            name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
        };
        if FieldName::classify(name.as_bytes()) != FieldName::Other
            || name.eq_ignore_ascii_case("trailer")
            || owned_prefix("x-forwarded-")
            || owned_prefix("x-spawngate-")
        {
            return Err(PlanError::from(
                "framing, Host, connection, Expect, Trailer, X-Request-ID, X-Forwarded-* and \
                 X-Spawngate-* fields are the proxy's own",
            ));
        }
        Ok(EditableName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[inline]
    fn is(&self, name: &[u8]) -> bool {
        self.0.as_bytes().eq_ignore_ascii_case(name)
    }
}

/// A field an edit writes: an [`EditableName`] and a value template of a field form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldEdit {
    name: EditableName,
    value: Template,
}

impl FieldEdit {
    /// A request edit: the value may use `{client_ip}`, `{request_id}` and `{host}`.
    pub fn new(name: &str, value: &str) -> Result<FieldEdit, PlanError> {
        FieldEdit::of_form(name, value, Form::RequestField)
    }

    /// A response edit: the value may also use `{instance}`.
    pub fn response(name: &str, value: &str) -> Result<FieldEdit, PlanError> {
        FieldEdit::of_form(name, value, Form::ResponseField)
    }

    fn of_form(name: &str, value: &str, form: Form) -> Result<FieldEdit, PlanError> {
        let name = EditableName::new(name)?;
        let value =
            Template::parse_as(value, form, &CaptureNames::none()).map_err(PlanError::from)?;
        Ok(FieldEdit { name, value })
    }

    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    pub fn value(&self) -> &Template {
        &self.value
    }

    /// Writes `Name: value\r\n`.
    pub(super) fn write(&self, vars: &Vars, out: &mut Vec<u8>) {
        out.extend_from_slice(self.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        self.value.render(vars, out);
        out.extend_from_slice(b"\r\n");
    }
}

/// Edits of one head, applied as: fields named in `remove` or `set` are dropped from what was received,
/// then `set` is written, then `add`. Edits of the same name keep their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Written once each, in place of every received field of the same name.
    pub set: Vec<FieldEdit>,
    /// Written in addition to the received fields of the same name.
    pub add: Vec<FieldEdit>,
    /// Received fields of these names are dropped.
    pub remove: Vec<EditableName>,
}

/// The edits of the response heads a route returns (to either protocol).
pub type ResponseEdits = HeaderEdits;

impl HeaderEdits {
    /// No edit (`static`, for callers that have none to give).
    pub const NONE: HeaderEdits = HeaderEdits {
        set: Vec::new(),
        add: Vec::new(),
        remove: Vec::new(),
    };

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Whether a value needs the client's address written out (`{client_ip}`): formatted only then.
    pub fn uses_client_ip(&self) -> bool {
        self.set
            .iter()
            .chain(&self.add)
            .any(|e| e.value.uses_client_ip())
    }

    /// The `set` and `add` fields rendered, in order, for a head the proxy writes itself.
    pub fn rendered(&self, vars: &Vars) -> Vec<(Box<str>, Vec<u8>)> {
        self.set
            .iter()
            .chain(&self.add)
            .map(|edit| {
                let mut value = Vec::new();
                edit.value.render(vars, &mut value);
                (Box::from(edit.name()), value)
            })
            .collect()
    }

    /// Whether received fields named `name` are dropped (removed or set).
    #[inline]
    pub fn replaces(&self, name: &[u8]) -> bool {
        self.remove.iter().any(|n| n.is(name)) || self.set.iter().any(|e| e.name.is(name))
    }

    /// These edits followed by `later` as one set of edits: what `later` removes or sets is dropped
    /// from these too (a route's `set` replaces the host's value rather than adding a second line).
    /// Used to merge a host's edits into each of its routes' at config time.
    pub fn then(&self, later: &HeaderEdits) -> HeaderEdits {
        let kept = |edit: &&FieldEdit| !later.replaces(edit.name.as_str().as_bytes());
        let mut remove = self.remove.clone();
        remove.extend(later.remove.iter().cloned());
        HeaderEdits {
            set: self
                .set
                .iter()
                .filter(kept)
                .chain(&later.set)
                .cloned()
                .collect(),
            add: self
                .add
                .iter()
                .filter(kept)
                .chain(&later.add)
                .cloned()
                .collect(),
            remove,
        }
    }

    /// Writes the `set` and `add` fields of an HTTP/1 head.
    pub(super) fn write(&self, vars: &Vars, out: &mut Vec<u8>) {
        for edit in self.set.iter().chain(&self.add) {
            edit.write(vars, out);
        }
    }
}

/// Applies response edits to an HTTP/2 response's fields (what `h2::response` built from the backend's
/// head), as [`write_response`](super::write_response) does to an HTTP/1 one. The names are checked
/// editable, so framing and connection fields are never touched. A rendered value HTTP/2 cannot carry
/// (none can be produced: rendering drops control bytes) would be skipped, not fail the response.
/// For final responses only: interim (1xx) heads are relayed unedited, as over HTTP/1.
pub fn apply_to_header_map(edits: &ResponseEdits, map: &mut HeaderMap, vars: &Vars) {
    if edits.is_empty() {
        return;
    }
    let names = edits.remove.iter().chain(edits.set.iter().map(|e| &e.name));
    for name in names {
        if let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes()) {
            map.remove(name);
        }
    }
    let mut value = Vec::new();
    for edit in edits.set.iter().chain(&edits.add) {
        value.clear();
        edit.value.render(vars, &mut value);
        let name = HeaderName::from_bytes(edit.name().as_bytes());
        match (name, HeaderValue::from_bytes(&value)) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => log::debug!(
                "skipped a response edit HTTP/2 cannot carry: {}",
                edit.name()
            ),
        }
    }
}

/// What a forwarded request's response edits read, kept with the request (boxed, and only for routes
/// that edit responses, so other requests carry nothing).
#[derive(Debug, Clone)]
pub struct ResponseContext {
    pub plan: std::sync::Arc<super::ForwardPlan>,
    /// The host the client named, normalised.
    pub host: Box<[u8]>,
    /// Written out only when an edit uses `{client_ip}`.
    pub client_ip: Box<[u8]>,
    /// What answers: the backend's name.
    pub instance: Box<[u8]>,
    /// Which of its instances answers (`{slot}`), once the request is admitted to one.
    slot: Box<[u8]>,
}

impl ResponseContext {
    /// The context for a route's plan, `None` when it edits no response.
    pub fn for_plan(
        plan: &std::sync::Arc<super::ForwardPlan>,
        host: &str,
        client_ip: std::net::IpAddr,
        instance: &str,
    ) -> Option<Box<ResponseContext>> {
        if plan.response.is_empty() {
            return None;
        }
        let mut text = Vec::new();
        if plan.response.uses_client_ip() {
            super::write_client_ip(&mut text, client_ip.into());
        }
        Some(Box::new(ResponseContext {
            plan: plan.clone(),
            host: host.as_bytes().into(),
            client_ip: text.into(),
            instance: instance.as_bytes().into(),
            slot: Box::from(&b"0"[..]),
        }))
    }

    /// The request was given to instance `slot` of its backend (a held request learns it late).
    pub fn answered_by(&mut self, slot: u32) {
        self.slot = slot.to_string().into_bytes().into();
    }

    pub fn edits(&self) -> &ResponseEdits {
        &self.plan.response
    }

    pub fn vars<'a>(&'a self, request_id: &'a [u8]) -> Vars<'a> {
        Vars {
            host: &self.host,
            client_ip: &self.client_ip,
            request_id,
            instance: &self.instance,
            slot: &self.slot,
            ..Vars::default()
        }
    }
}
