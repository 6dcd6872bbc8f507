//! The analysts' console: its static files (embedded in the binary, served at `/` and
//! `/console/...` with a strict Content-Security-Policy: nothing is loaded from another
//! host), and the small routes it needs: `GET /v1/whoami` (the key's role) and
//! `GET /v1/fields` (the field catalog, for completion; an analyst gets no values of a
//! personal field, nor values held by fewer profiles than the minimum group size).

use super::super::{analyst, ApiError, AppState};
use super::{answer, ANALYST};
use crate::api::console::{kind_name, FieldInfo, FieldValue, Fields, WhoAmI};
use crate::keys::Role;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::{Indexes, Term, ValueKind};
use serde_json::Value;
use std::collections::BTreeMap;

/// The console's files: (path under `/console/`, content type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        HTML,
        include_str!("../../../console/index.html"),
    ),
    ("style.css", CSS, include_str!("../../../console/style.css")),
    ("js/app.js", JS, include_str!("../../../console/js/app.js")),
    ("js/api.js", JS, include_str!("../../../console/js/api.js")),
    (
        "js/charts.js",
        JS,
        include_str!("../../../console/js/charts.js"),
    ),
    (
        "js/editor.js",
        JS,
        include_str!("../../../console/js/editor.js"),
    ),
    (
        "js/breakdown.js",
        JS,
        include_str!("../../../console/js/breakdown.js"),
    ),
    (
        "js/overlap.js",
        JS,
        include_str!("../../../console/js/overlap.js"),
    ),
    (
        "js/history.js",
        JS,
        include_str!("../../../console/js/history.js"),
    ),
    (
        "js/models.js",
        JS,
        include_str!("../../../console/js/models.js"),
    ),
    (
        "js/audiences.js",
        JS,
        include_str!("../../../console/js/audiences.js"),
    ),
    (
        "js/lookup.js",
        JS,
        include_str!("../../../console/js/lookup.js"),
    ),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Only this origin's scripts, styles, images and API; no inline script, no frames.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(path: &str) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => {
            let mut r = (*body).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => ApiError::not_found("no such console file").into_response(),
    }
}

/// `GET /`: the console's page.
pub(super) async fn index() -> Response {
    asset("index.html")
}

/// `GET /console/{*file}`.
pub(super) async fn file(Path(file): Path<String>) -> Response {
    asset(&file)
}

/// `GET /v1/whoami`: any valid key.
pub(super) async fn whoami(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = state
        .authorize(&headers, &[Role::Analyst, Role::Ingest])
        .await?;
    answer(&WhoAmI {
        id: who.id,
        role: who.role.name().to_string(),
    })
}

/// Values listed per field.
const TOP_VALUES: usize = 20;

/// `GET /v1/fields`: every attribute with its kinds, how many profiles hold it and its
/// most frequent values; consent purposes, sources and identifier types.
pub(super) async fn fields(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    // An analyst sees no value of a personal field, and no value held by fewer profiles
    // than a breakdown would show.
    let min_count = match who.role {
        Role::Admin => None,
        _ => Some(state.options.min_group_size),
    };
    let fields = state
        .run(&who, move |db, _| {
            Ok(catalog(db.snapshot().indexes(), min_count))
        })
        .await?;
    answer(&fields)
}

/// The field catalog of `ix`. For an analyst (`min_count`: the minimum group size),
/// personal fields come without values, and values held by fewer profiles are left out.
fn catalog(ix: &Indexes, min_count: Option<u64>) -> Fields {
    let analyst = min_count.is_some();
    let min_count = min_count.unwrap_or(0);
    #[derive(Default)]
    struct Acc<'a> {
        kinds: Vec<ValueKind>,
        profiles: u64,
        values: Vec<(u64, &'a str)>,
    }
    let mut by_field: BTreeMap<&str, Acc<'_>> = BTreeMap::new();
    let (mut purposes, mut sources, mut identifier_types) = (Vec::new(), Vec::new(), Vec::new());
    for (term, bitmap) in ix.terms() {
        match term {
            Term::Kind(f, k) => by_field.entry(f.as_str()).or_default().kinds.push(*k),
            Term::Exists(f) => by_field.entry(f.as_str()).or_default().profiles = bitmap.len(),
            Term::Eq(f, v) => {
                if !(analyst && analyst::personal_field(f)) && bitmap.len() >= min_count {
                    let acc = by_field.entry(f.as_str()).or_default();
                    acc.values.push((bitmap.len(), v.as_str()));
                }
            }
            Term::Consent(p) | Term::ConsentKnown(p) => purposes.push(p.to_string()),
            Term::Source(s) => sources.push(s.to_string()),
            Term::IdentifierType(t) => identifier_types.push(t.to_string()),
            Term::Live => {}
        }
    }
    let mut fields: Vec<FieldInfo> = by_field
        .into_iter()
        .filter(|(_, acc)| !acc.kinds.is_empty())
        .map(|(name, mut acc)| {
            acc.kinds.sort();
            acc.values
                .sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            acc.values.truncate(TOP_VALUES);
            FieldInfo {
                kinds: acc.kinds.into_iter().map(kind_name).collect(),
                name: name.to_string(),
                personal: analyst::personal_field(name),
                profiles: acc.profiles,
                values: acc
                    .values
                    .into_iter()
                    .map(|(count, value)| FieldValue {
                        count,
                        value: value.to_string(),
                    })
                    .collect(),
            }
        })
        .collect();
    if let Some(birth) = fields.iter().find(|f| f.name == "birth_date") {
        fields.push(FieldInfo {
            kinds: vec!["number"],
            name: "age".to_string(),
            personal: false,
            profiles: birth.profiles,
            values: Vec::new(),
        });
        fields.sort_by(|a, b| a.name.cmp(&b.name));
    }
    for list in [&mut purposes, &mut sources, &mut identifier_types] {
        list.sort();
        list.dedup();
    }
    Fields {
        fields,
        identifier_types,
        purposes,
        sources,
    }
}
