//! `cidb normalize` (export.md "Normalization as a tool"): one JSON object a line in,
//! the same object out with what each platform would receive.

use crate::base::digest::sha256_hex;
use crate::input::normalize::platform::{normalize, Field, Normalized, Platform};
use serde_json::{json, Map, Value as Json};

/// Normalizes one input line `{"field", "raw", "country"?, ...}` (other keys are kept)
/// and returns it with `valid`, `meta` and `google` (and `reason` when invalid).
pub fn normalize_line(
    line: &str,
    default_region: Option<&str>,
    today: i32,
) -> Result<Json, String> {
    let mut obj: Map<String, Json> = match serde_json::from_str(line) {
        Ok(Json::Object(o)) => o,
        Ok(_) => return Err("expected a JSON object".into()),
        Err(e) => return Err(format!("invalid JSON at column {}: {e}", e.column())),
    };
    let field_name = match obj.get("field") {
        Some(Json::String(s)) => s.clone(),
        _ => return Err("`field` must be a string".into()),
    };
    let Some(field) = Field::from_name(&field_name) else {
        return Err(format!("unknown field {field_name:?}"));
    };
    let raw: Option<String> = match obj.get("raw") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Number(n)) => Some(n.to_string()),
        Some(_) => return Err("`raw` must be a string, a number or null".into()),
    };
    let region = match obj.get("country") {
        Some(Json::String(c)) => crate::input::normalize::country(c).or(default_region),
        _ => default_region,
    };
    let mut valid = false;
    let mut reason = None;
    for platform in [Platform::Meta, Platform::Google] {
        let result = match (&raw, field.sent_to(platform)) {
            (Some(raw), true) => normalize(field, platform, raw, region, today),
            (None, true) => Normalized::Missing,
            (_, false) => {
                obj.insert(
                    platform.name().into(),
                    json!({"normalized": null, "sha256": null}),
                );
                continue;
            }
        };
        let hashed = field.hashed_for(platform);
        let out = match &result {
            Normalized::Value(v) => json!({
                "normalized": v,
                "sha256": if hashed { Json::String(sha256_hex(v)) } else { Json::Null },
            }),
            Normalized::Prehashed(h) => json!({"normalized": h, "sha256": h}),
            Normalized::Date(d) => json!({
                "normalized": {"DOBY": d.doby(), "DOBM": d.dobm(), "DOBD": d.dobd()},
                "sha256": {
                    "DOBY": sha256_hex(&d.doby()),
                    "DOBM": d.dobm().map(|m| sha256_hex(&m)),
                    "DOBD": d.dobd().map(|d| sha256_hex(&d)),
                },
            }),
            Normalized::Missing => {
                reason.get_or_insert("missing");
                json!({"normalized": null, "sha256": null})
            }
            Normalized::Invalid(why) => {
                reason.get_or_insert(*why);
                json!({"normalized": null, "sha256": null})
            }
        };
        valid |= result.is_valid();
        obj.insert(platform.name().into(), out);
    }
    obj.insert("valid".into(), Json::Bool(valid));
    if !valid {
        if let Some(r) = reason {
            obj.insert("reason".into(), Json::String(r.into()));
        }
    }
    Ok(Json::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: i32 = 20_779;

    #[test]
    fn phone_line() {
        let out = normalize_line(
            r#"{"field": "phone", "raw": "06 12345678", "country": "NL", "id": 7}"#,
            None,
            TODAY,
        )
        .unwrap();
        assert_eq!(out["valid"], true);
        assert_eq!(out["id"], 7, "other keys are kept");
        assert_eq!(out["meta"]["normalized"], "31612345678");
        assert_eq!(out["meta"]["sha256"], sha256_hex("31612345678"));
        assert_eq!(out["google"]["normalized"], "+31612345678");
        assert_eq!(out["google"]["sha256"], sha256_hex("+31612345678"));
    }

    #[test]
    fn null_number_date_and_plain_text() {
        let out = normalize_line(r#"{"field": "email", "raw": null}"#, None, TODAY).unwrap();
        assert_eq!(out["valid"], false);
        assert_eq!(out["meta"]["sha256"], Json::Null);
        let out = normalize_line(
            r#"{"field": "zip", "raw": 2134, "country": "US"}"#,
            None,
            TODAY,
        )
        .unwrap();
        assert_eq!(out["meta"]["normalized"], "02134");
        assert_eq!(out["google"]["normalized"], "02134");
        assert_eq!(out["google"]["sha256"], Json::Null, "plain text for Google");
        let out = normalize_line(
            r#"{"field": "birth_date", "raw": "1985-03-07"}"#,
            None,
            TODAY,
        )
        .unwrap();
        assert_eq!(out["meta"]["normalized"]["DOBM"], "03");
        assert_eq!(out["meta"]["sha256"]["DOBY"], sha256_hex("1985"));
        assert_eq!(out["google"]["normalized"], Json::Null);
        let out = normalize_line(
            r#"{"field": "phone", "raw": "12345", "country": "US"}"#,
            None,
            TODAY,
        )
        .unwrap();
        assert_eq!(out["valid"], false);
        assert!(out["reason"].is_string());
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(normalize_line("{", None, TODAY).is_err());
        assert!(normalize_line(r#"{"field": "shoe_size", "raw": "9"}"#, None, TODAY).is_err());
        assert!(normalize_line(r#"{"raw": "9"}"#, None, TODAY).is_err());
        assert!(normalize_line(r#"{"field": "email", "raw": [1]}"#, None, TODAY).is_err());
    }
}
