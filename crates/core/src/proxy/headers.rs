//! Headers across the proxy: hop-by-hop fields dropped both ways, forwarding
//! fields added on the way up, `Via` both ways.

use bytes::{BufMut, BytesMut};
use http::header::Entry;
use http::{header, HeaderMap, HeaderName, HeaderValue, Version};

use crate::header_list;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

const HOPS: usize = 9;
/// Fields that belong to one connection (RFC 9110 §7.6.1, and RFC 2616's
/// list), and `Upgrade`, which only a protocol switch carries across
/// (`Connection` first: the fields it names go too).
static HOP_BY_HOP: [HeaderName; HOPS] = [
    header::CONNECTION,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Where `name` (lowercase) is in `HOP_BY_HOP`. Most names are ruled out by
/// their length alone, before any comparison.
fn hop_index(name: &str) -> Option<usize> {
    if !matches!(name.len(), 2 | 7 | 10 | 16..=19) {
        return None;
    }
    HOP_BY_HOP.iter().position(|hop| hop.as_str() == name)
}

/// The `Upgrade` value of a request asking to switch protocols (`Connection:
/// upgrade` naming it), else None.
pub fn upgrade_asked(headers: &HeaderMap) -> Option<HeaderValue> {
    let upgrade = headers.get(header::UPGRADE)?;
    let named = headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| header_list::has(v.as_bytes(), b"upgrade"));
    named.then(|| upgrade.clone())
}

/// The fields `Connection` names beyond the fixed hop-by-hop ones. Most
/// values are `keep-alive` or `close` alone: those are not taken apart.
fn connection_names(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut named = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let value = value.as_bytes();
        if value.eq_ignore_ascii_case(b"keep-alive") || value.eq_ignore_ascii_case(b"close") {
            continue;
        }
        let more = header_list::elements(value)
            .filter(|t| {
                !t.eq_ignore_ascii_case(b"close")
                    && !HOP_BY_HOP
                        .iter()
                        .any(|hop| t.eq_ignore_ascii_case(hop.as_str().as_bytes()))
            })
            .filter_map(|t| HeaderName::from_bytes(t).ok());
        named.extend(more);
    }
    named
}

/// Drop hop-by-hop fields and those the `Connection` header names. With
/// `upgrade`, the exchange switches protocols: `Upgrade` and `Connection:
/// upgrade` are what carries that across, and are set again.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    // A look at each name the message has is cheaper than a lookup of each of
    // the nine, most of which it does not have. Bit i: `HOP_BY_HOP[i]` is here.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_index(name.as_str()) {
            present |= 1 << i;
        }
    }
    if present & 1 != 0 {
        for name in connection_names(headers) {
            headers.remove(name);
        }
    }
    while present != 0 {
        headers.remove(&HOP_BY_HOP[present.trailing_zeros() as usize]);
        present &= present - 1;
    }
    if let Some(upgrade) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }
}

/// `1.1 skitai` for the protocol the message came in on.
fn via_entry(version: Version) -> HeaderValue {
    static VIA: [HeaderValue; 4] = [
        HeaderValue::from_static("2.0 skitai"),
        HeaderValue::from_static("1.0 skitai"),
        HeaderValue::from_static("0.9 skitai"),
        HeaderValue::from_static("1.1 skitai"),
    ];
    let i = match version {
        Version::HTTP_2 => 0,
        Version::HTTP_10 => 1,
        Version::HTTP_09 => 2,
        _ => 3,
    };
    VIA[i].clone()
}

/// Append `entry` to a comma-separated field: one lookup, and no copy when the
/// field was absent.
fn append(headers: &mut HeaderMap, name: &HeaderName, entry: HeaderValue) {
    match headers.entry(name) {
        Entry::Vacant(vacant) => {
            vacant.insert(entry);
        }
        Entry::Occupied(mut occupied) => {
            let len = occupied.iter().map(|v| v.len() + 2).sum::<usize>() + entry.len();
            let mut joined = BytesMut::with_capacity(len);
            // Repeated fields are one list (RFC 9110 §5.3).
            for value in occupied.iter().filter(|v| !v.is_empty()) {
                joined.put_slice(value.as_bytes());
                joined.put_slice(b", ");
            }
            joined.put_slice(entry.as_bytes());
            if let Ok(value) = HeaderValue::from_maybe_shared(joined.freeze()) {
                occupied.insert(value);
            }
        }
    }
}

/// The request on its way up: the forwarding fields and `Via` (`Host` is set
/// per member, by each attempt). `client_ip`: the peer's address as text.
pub fn forward_request(headers: &mut HeaderMap, version: Version, client_ip: HeaderValue) {
    // Room for the four fields at once, not a regrowth of the map for each.
    headers.reserve(4);
    append(headers, &X_FORWARDED_FOR, client_ip);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
    append(headers, &header::VIA, via_entry(version));
    // Answered at this hop (hyper sends `100 Continue` when the body is read).
    headers.remove(header::EXPECT);
}

/// The response on its way down: `Via`, and the engine's own `Server`.
pub fn forward_response(headers: &mut HeaderMap, version: Version) {
    append(headers, &header::VIA, via_entry(version));
    headers.remove(header::SERVER);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_fields_and_the_named_ones_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h, None);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::ACCEPT));
        // A value that is one fixed token alone, and another naming a field.
        let mut h = HeaderMap::new();
        h.append(header::CONNECTION, HeaderValue::from_static("Close"));
        h.append(header::CONNECTION, HeaderValue::from_static("x-a"));
        h.insert("x-a", HeaderValue::from_static("1"));
        h.insert("x-b", HeaderValue::from_static("2"));
        strip_hop_by_hop(&mut h, None);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-b"]);
    }

    #[test]
    fn every_hop_by_hop_name_passes_the_length_filter() {
        for (i, hop) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_index(hop.as_str()), Some(i), "{hop}");
        }
        for other in [
            "host",
            "user-agent",
            "content-length",
            "x-forwarded-for",
            "via",
        ] {
            assert_eq!(hop_index(other), None, "{other}");
        }
    }

    #[test]
    fn upgrades_keep_what_carries_them() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let upgrade = upgrade_asked(&h);
        assert_eq!(
            upgrade.as_ref().map(|v| v.as_bytes()),
            Some(&b"websocket"[..])
        );
        strip_hop_by_hop(&mut h, upgrade);
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
        let mut plain = HeaderMap::new();
        plain.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(upgrade_asked(&plain).is_none());
    }

    #[test]
    fn forwarding_fields_append_and_set() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("front.example"));
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.7"));
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.insert(header::VIA, HeaderValue::from_static("1.1 edge"));
        forward_request(
            &mut h,
            Version::HTTP_11,
            HeaderValue::from_static("127.0.0.1"),
        );
        assert_eq!(h[&X_FORWARDED_FOR], "203.0.113.7, 10.0.0.1, 127.0.0.1");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_FORWARDED_HOST], "front.example");
        assert_eq!(h[header::VIA], "1.1 edge, 1.1 skitai");
        assert_eq!(h[header::HOST], "front.example");
        let mut h2 = HeaderMap::new();
        h2.insert(header::HOST, HeaderValue::from_static("front.example"));
        forward_request(&mut h2, Version::HTTP_2, HeaderValue::from_static("::1"));
        assert_eq!(h2[&X_FORWARDED_FOR], "::1");
        assert_eq!(h2[header::VIA], "2.0 skitai");
        assert_eq!(h2[header::HOST], "front.example");
    }
}
