//! RFC 9110 §13.2.2: preconditions in their precedence.

use std::time::SystemTime;

use http::{header, HeaderMap, HeaderValue, Method};

pub enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

fn date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    httpdate::parse_http_date(headers.get(name)?.to_str().ok()?).ok()
}

/// Whether `list` (an If-Match / If-None-Match value) names `etag`; `*` names any.
fn etag_listed(list: &str, etag: &str, weak: bool) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    list.split(',').map(str::trim).any(|tag| {
        tag == "*"
            || (if weak {
                opaque(tag) == opaque(etag)
            } else {
                !tag.starts_with("W/") && tag == etag
            })
    })
}

/// Seconds precision, as Last-Modified carries it.
fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether the request has a precondition at all: one pass over its few
/// fields, where looking each of the four up hashes its name.
fn any_precondition(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        name == header::IF_MATCH
            || name == header::IF_NONE_MATCH
            || name == header::IF_MODIFIED_SINCE
            || name == header::IF_UNMODIFIED_SINCE
    })
}

pub fn evaluate(
    method: &Method,
    headers: &HeaderMap,
    etag: &HeaderValue,
    modified: SystemTime,
) -> Precondition {
    if !any_precondition(headers) {
        return Precondition::Proceed;
    }
    let etag = etag.to_str().unwrap_or_default();
    let values = |name: header::HeaderName| -> Option<String> {
        let all: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!all.is_empty()).then(|| all.join(","))
    };
    if let Some(list) = values(header::IF_MATCH) {
        if !etag_listed(&list, etag, false) {
            return Precondition::Failed;
        }
    } else if let Some(since) = date(headers, header::IF_UNMODIFIED_SINCE) {
        if seconds(modified) > seconds(since) {
            return Precondition::Failed;
        }
    }
    let safe = method == Method::GET || method == Method::HEAD;
    if let Some(list) = values(header::IF_NONE_MATCH) {
        if etag_listed(&list, etag, true) {
            return if safe {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if safe {
        if let Some(since) = date(headers, header::IF_MODIFIED_SINCE) {
            if seconds(modified) <= seconds(since) {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// If-Range: the range applies only while the representation is the one named.
pub fn if_range_holds(headers: &HeaderMap, etag: &HeaderValue, modified: SystemTime) -> bool {
    let Some(value) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if value.starts_with('"') || value.starts_with("W/") {
        return !value.starts_with("W/") && value.as_bytes() == etag.as_bytes();
    }
    httpdate::parse_http_date(value).is_ok_and(|d| seconds(d) == seconds(modified))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const ETAG: &str = "\"abc\"";
    const ETAG_VALUE: HeaderValue = HeaderValue::from_static(ETAG);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn verdict(pairs: &[(&'static str, String)]) -> &'static str {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        match evaluate(&Method::GET, &headers, &ETAG_VALUE, at(1_000_000)) {
            Precondition::Proceed => "proceed",
            Precondition::NotModified => "304",
            Precondition::Failed => "412",
        }
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    #[test]
    fn precedence() {
        assert_eq!(verdict(&[]), "proceed");
        assert_eq!(verdict(&[("if-match", "\"x\"".into())]), "412");
        assert_eq!(verdict(&[("if-match", format!("W/{ETAG}"))]), "412");
        assert_eq!(verdict(&[("if-match", "*".into())]), "proceed");
        // If-Match decides; If-Unmodified-Since is then ignored.
        assert_eq!(
            verdict(&[("if-match", ETAG.into()), ("if-unmodified-since", date(1))]),
            "proceed"
        );
        assert_eq!(verdict(&[("if-unmodified-since", date(1))]), "412");
        assert_eq!(
            verdict(&[("if-none-match", format!("\"x\", W/{ETAG}"))]),
            "304"
        );
        // If-None-Match decides; If-Modified-Since is then ignored.
        assert_eq!(
            verdict(&[
                ("if-none-match", "\"x\"".into()),
                ("if-modified-since", date(1_000_000))
            ]),
            "proceed"
        );
        assert_eq!(verdict(&[("if-modified-since", date(1_000_000))]), "304");
        assert_eq!(verdict(&[("if-modified-since", date(999_999))]), "proceed");
    }

    #[test]
    fn if_range_by_strong_etag_or_exact_date() {
        let check = |value: String| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_RANGE, HeaderValue::from_str(&value).unwrap());
            if_range_holds(&headers, &ETAG_VALUE, at(1_000_000))
        };
        assert!(check(ETAG.into()));
        assert!(!check(format!("W/{ETAG}")));
        assert!(!check("\"other\"".into()));
        assert!(check(date(1_000_000)));
        assert!(!check(date(999_999)));
    }
}
