//! The pieces of the SigV4 canonical request and the HMAC-SHA256 key chain,
//! shared by the verifier and the client-side [`crate::signer`].

use hmac::{Hmac, Mac};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};
use sha2::{Digest, Sha256};

use crate::{ALGORITHM, Scope, TERMINATOR};

/// Everything but AWS's unreserved characters (`A-Z a-z 0-9 - _ . ~`) is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// AWS `UriEncode`: every byte outside the unreserved set becomes `%XX` (upper-case hex).
pub(crate) fn uri_encode(bytes: &[u8]) -> String {
    percent_encode(bytes, UNRESERVED).to_string()
}

/// Percent-decodes; malformed `%` sequences stay literal, `+` stays `+`.
pub(crate) fn uri_decode(s: &str) -> Vec<u8> {
    percent_decode(s.as_bytes()).collect()
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length (long keys are hashed, short ones padded),
    // so `new_from_slice` cannot fail for `Hmac<Sha256>`.
    #[allow(clippy::expect_used)]
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub(crate) fn signing_key(secret: &str, scope: &Scope) -> [u8; 32] {
    let mut k = Vec::with_capacity(4 + secret.len());
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret.as_bytes());
    let k_date = hmac(&k, scope.date.as_bytes());
    // Best effort: do not leave a copy of the secret in the heap block.
    k.iter_mut().for_each(|b| *b = 0);
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, TERMINATOR.as_bytes())
}

/// `date/region/service/aws4_request`.
pub(crate) fn scope_string(scope: &Scope) -> String {
    format!(
        "{}/{}/{}/{TERMINATOR}",
        scope.date, scope.region, scope.service
    )
}

/// Hex signature of the canonical request under `key`.
pub(crate) fn signature(
    key: &[u8; 32],
    amz_date: &str,
    scope: &str,
    canonical_request: &[u8],
) -> String {
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request)
    );
    hex::encode(hmac(key, string_to_sign.as_bytes()))
}

/// RFC 3986 dot-segment removal plus collapsing of empty segments, exactly as
/// botocore's `normalize_url_path` / aws-sdk-rust's path normalisation do for
/// non-S3 services.
fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let first = if path.starts_with('/') { "/" } else { "" };
    let last = if path.ends_with('/') && !out.is_empty() {
        "/"
    } else {
        ""
    };
    format!("{first}{}{last}", out.join("/"))
}

/// Encodes each `/`-separated segment of the raw (already percent-encoded)
/// path once more: `%20` becomes `%2520`, `:` becomes `%3A`, `/` stays.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|seg| uri_encode(seg.as_bytes()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Canonical URI candidates for the raw wire path: the normalised form every
/// current AWS SDK signs first, then the un-normalised form if it differs.
pub(crate) fn canonical_uris(raw_path: &str) -> Vec<String> {
    if raw_path.is_empty() {
        return vec!["/".to_owned()];
    }
    let mut out = vec![encode_path(&normalize_path(raw_path))];
    let plain = encode_path(raw_path);
    if !out.contains(&plain) {
        out.push(plain);
    }
    out
}

/// The canonical query string used by the signer: components are
/// percent-decoded, re-encoded with the unreserved set, sorted by key then
/// value. With `exclude_signature`, `X-Amz-Signature` is left out (presigned form).
pub(crate) fn canonical_query(raw_query: &str, exclude_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|c| !c.is_empty())
        .filter_map(|c| {
            let (k, v) = c.split_once('=').unwrap_or((c, ""));
            let k = uri_decode(k);
            if exclude_signature && k == b"X-Amz-Signature" {
                return None;
            }
            Some((uri_encode(&k), uri_encode(&uri_decode(v))))
        })
        .collect();
    pairs.sort();
    join_pairs(&pairs)
}

fn join_pairs(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Canonical query candidates: the decode/re-encode form, then (if it
/// differs) the wire form sorted as-is, which is what botocore signs for
/// header authentication when the wire encoding is not AWS-canonical
/// (e.g. a literal `+`).
pub(crate) fn canonical_queries(raw_query: &str, exclude_signature: bool) -> Vec<String> {
    let mut out = vec![canonical_query(raw_query, exclude_signature)];
    if !raw_query.is_empty() {
        let mut pairs: Vec<(String, String)> = raw_query
            .split('&')
            .map(|c| c.split_once('=').unwrap_or((c, "")))
            .filter(|(k, _)| !(exclude_signature && *k == "X-Amz-Signature"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        pairs.sort();
        let raw = join_pairs(&pairs);
        if !out.contains(&raw) {
            out.push(raw);
        }
    }
    out
}

/// AWS `Trimall`: strip leading/trailing spaces and tabs, collapse runs of spaces.
fn trim_all(value: &[u8], out: &mut Vec<u8>) {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    let mut prev_space = false;
    for &b in &value[start..end] {
        if b == b' ' {
            if !prev_space {
                out.push(b);
            }
            prev_space = true;
        } else {
            out.push(b);
            prev_space = false;
        }
    }
}

/// `name:value\n` for each signed header, in the order given by
/// `SignedHeaders`. Repeated headers are joined by `,`; a signed header the
/// request lacks contributes an empty value (and so, normally, a mismatch).
pub(crate) fn canonical_headers(headers: &HeaderMap, signed: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for name in signed.split(';') {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        // `get_all` with an invalid header name yields nothing (no panic).
        for (i, v) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            trim_all(v.as_bytes(), &mut out);
        }
        out.push(b'\n');
    }
    out
}

/// The canonical request:
/// `METHOD\nURI\nQUERY\nHEADERS\nSIGNED_HEADERS\nPAYLOAD_HASH`
/// (`HEADERS` already ends in `\n`).
pub(crate) fn canonical_request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &[u8],
    signed_headers: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        method.len() + uri.len() + query.len() + headers.len() + signed_headers.len() + 72,
    );
    for part in [
        method.as_bytes(),
        b"\n",
        uri.as_bytes(),
        b"\n",
        query.as_bytes(),
        b"\n",
        headers,
        b"\n",
    ] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(canonical_uris(""), vec!["/"]);
        assert_eq!(canonical_uris("/"), vec!["/"]);
        assert_eq!(
            canonical_uris("/example%20space/"),
            vec!["/example%2520space/"]
        );
        assert_eq!(
            canonical_uris("/a/./b/../c//d/"),
            vec!["/a/c/d/", "/a/./b/../c//d/"]
        );
        assert_eq!(canonical_uris("/.."), vec!["/", "/.."]);
        assert_eq!(canonical_uris("/:@!$*"), vec!["/%3A%40%21%24%2A"]);
        assert_eq!(canonical_uris("/%E1%88%B4"), vec!["/%25E1%2588%25B4"]);
    }

    #[test]
    fn queries() {
        assert_eq!(canonical_query("", false), "");
        assert_eq!(
            canonical_query("Param2=value2&Param1=value1", false),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(
            canonical_query("Param1=value2&Param1=Value1", false),
            "Param1=Value1&Param1=value2"
        );
        assert_eq!(canonical_query("a=b+c&x&&y=", false), "a=b%2Bc&x=&y=");
        assert_eq!(
            canonical_query("%7e=%2f%20&-_.~=ok", false),
            "-_.~=ok&~=%2F%20"
        );
        assert_eq!(canonical_query("X-Amz-Signature=abc&b=1", true), "b=1");
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&b=1", false),
            "X-Amz-Signature=abc&b=1"
        );
        assert_eq!(canonical_queries("a=b+c", false), vec!["a=b%2Bc", "a=b+c"]);
        assert_eq!(canonical_queries("a=b%20c", false), vec!["a=b%20c"]);
    }

    #[test]
    fn headers() {
        let mut h = HeaderMap::new();
        h.insert("host", "example.com".parse().unwrap());
        h.append("my-header1", "  a   b   c  ".parse().unwrap());
        h.append("my-header2", "\"a   b   c\"".parse().unwrap());
        h.append("x-multi", "one".parse().unwrap());
        h.append("x-multi", "two  too".parse().unwrap());
        assert_eq!(
            String::from_utf8(canonical_headers(
                &h,
                "host;my-header1;my-header2;x-multi;absent;Bad Name"
            ))
            .unwrap(),
            "host:example.com\nmy-header1:a b c\nmy-header2:\"a b c\"\nx-multi:one,two too\nabsent:\nBad Name:\n"
        );
    }
}
