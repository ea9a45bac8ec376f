//! Bundles: a search's page (`searchset`, with `self` and `next` links whose cursor is stable:
//! it names the last row given, so rows added meanwhile never shift the next page) and a
//! resource's versions (`history`).

use crate::respond::{etag, instant};
use crate::search::Search;
use chrono::{DateTime, Utc};
use seldinger_store::Cursor;
use serde_json::{json, Value};

/// One resource of a search or history, with what its entry needs.
pub struct Entry {
    pub resource_type: &'static str,
    pub id: String,
    pub resource: Value,
}

/// A page of search results.
pub fn searchset(
    base: &str,
    resource_type: &str,
    search: &Search,
    entries: Vec<Entry>,
    next: Option<&Cursor>,
    total: u64,
) -> Value {
    let link_to = |cursor: Option<&Cursor>| {
        let mut pairs: Vec<(String, String)> = search.applied.clone();
        if let Some(cursor) = cursor {
            pairs.push(("_cursor".into(), cursor.as_text()));
        }
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        if query.is_empty() {
            format!("{base}/{resource_type}")
        } else {
            format!("{base}/{resource_type}?{}", query.join("&"))
        }
    };
    let mut link = vec![json!({"relation": "self", "url": link_to(search.cursor.as_ref())})];
    if let Some(next) = next {
        link.push(json!({"relation": "next", "url": link_to(Some(next))}));
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": link,
    });
    if search.total {
        bundle["total"] = json!(total);
    }
    if !entries.is_empty() {
        bundle["entry"] = entries
            .into_iter()
            .map(|e| search_entry(base, e, "match"))
            .collect();
    }
    bundle
}

/// A searchset's entry: a match, or a resource a match refers to (`include`).
pub fn search_entry(base: &str, entry: Entry, mode: &str) -> Value {
    json!({
        "fullUrl": format!("{base}/{}/{}", entry.resource_type, entry.id),
        "resource": entry.resource,
        "search": {"mode": mode},
    })
}

/// A version of a resource, for its history.
pub struct Version {
    pub resource: Value,
    pub version: u64,
    pub at: DateTime<Utc>,
}

/// A resource's history, newest version first (as FHIR orders it). The oldest version is the
/// resource's creation (for one made from a case, the case's version when it first existed).
pub fn history(base: &str, resource_type: &str, id: &str, mut versions: Vec<Version>) -> Value {
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let first = versions.last().map(|v| v.version);
    let entry: Vec<Value> = versions
        .into_iter()
        .map(|v| {
            let created = Some(v.version) == first;
            let (method, status) = if created {
                ("POST", "201 Created")
            } else {
                ("PUT", "200 OK")
            };
            let url = if created {
                resource_type.to_string()
            } else {
                format!("{resource_type}/{id}")
            };
            json!({
                "fullUrl": format!("{base}/{resource_type}/{id}"),
                "resource": v.resource,
                "request": {"method": method, "url": url},
                "response": {
                    "status": status,
                    "etag": etag(v.version),
                    "lastModified": instant(v.at),
                },
            })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": entry.len(),
        "link": [{"relation": "self", "url": format!("{base}/{resource_type}/{id}/_history")}],
        "entry": entry,
    })
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
