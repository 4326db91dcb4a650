//! A small **client-side** SigV4 signer.
//!
//! Berth never signs the requests it serves; this module exists so tests,
//! conformance suites and tooling can produce requests that
//! [`crate::verify`] accepts, the same way an AWS SDK would (header form
//! like botocore's `SigV4Auth`, presigned form like `SigV4QueryAuth`).
//! It shares the canonicalisation code with the verifier, so it is checked
//! against AWS's published vectors and botocore output in the crate tests.

use std::fmt;
use std::time::SystemTime;

use http::header::{AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderValue};

use crate::{ALGORITHM, Scope, UNSIGNED_PAYLOAD, canonical, time};

/// An AWS key pair, optionally with a session token.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// Access key id, e.g. `AKIDEXAMPLE`.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a str,
    /// Session token (sent as `X-Amz-Security-Token`).
    pub session_token: Option<&'a str>,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.map(|_| "<redacted>"))
            .finish()
    }
}

/// What to sign with.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    /// The key pair.
    pub credentials: Credentials<'a>,
    /// Region for the credential scope, e.g. `us-east-1`.
    pub region: &'a str,
    /// Signing name for the credential scope, e.g. `ecs`.
    pub service: &'a str,
    /// Signing time (sub-second part is dropped).
    pub time: SystemTime,
}

impl SigningParams<'_> {
    /// `YYYYMMDD'T'HHMMSS'Z'` of [`SigningParams::time`].
    pub fn amz_date(&self) -> String {
        time::format_iso_basic(time::unix_secs(self.time))
    }

    fn scope(&self) -> Scope {
        let amz_date = self.amz_date();
        Scope {
            access_key_id: self.credentials.access_key_id.to_owned(),
            date: amz_date.get(..8).unwrap_or_default().to_owned(),
            region: self.region.to_owned(),
            service: self.service.to_owned(),
        }
    }

    /// `AKID/YYYYMMDD/region/service/aws4_request`.
    pub fn credential(&self) -> String {
        format!(
            "{}/{}",
            self.credentials.access_key_id,
            canonical::scope_string(&self.scope())
        )
    }
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// SigV4 requires `host` to be signed.
    #[error("the request has no Host header")]
    MissingHost,
    /// A computed header value is not a valid HTTP header value.
    #[error("the {0} header value is not a valid HTTP header value")]
    InvalidHeaderValue(&'static str),
}

/// The hex signature of a request, given every input explicitly.
///
/// `signed_headers` is the `;`-joined list of lower-case header names as it
/// will appear in `SignedHeaders`; `headers` must hold them (including the
/// `x-amz-date` matching `params.time` for the header form). With
/// `presigned`, `X-Amz-Signature` is left out of the canonical query.
#[allow(clippy::too_many_arguments)]
pub fn signature(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    signed_headers: &str,
    payload_hash: &str,
    presigned: bool,
    params: &SigningParams,
) -> String {
    let scope = params.scope();
    let uri = canonical::canonical_uris(path).swap_remove(0);
    let creq = canonical::canonical_request(
        method,
        &uri,
        &canonical::canonical_query(query, presigned),
        &canonical::canonical_headers(headers, signed_headers),
        signed_headers,
        payload_hash,
    );
    let key = canonical::signing_key(params.credentials.secret_access_key, &scope);
    canonical::signature(
        &key,
        &params.amz_date(),
        &canonical::scope_string(&scope),
        &creq,
    )
}

/// Signs a request in the `Authorization` header form, like an AWS SDK:
/// sets `X-Amz-Date` (and `X-Amz-Security-Token` when the credentials carry
/// one), signs every header present except `authorization`, and sets
/// `Authorization`. The payload hash is the `x-amz-content-sha256` header if
/// the caller set one, else the SHA-256 of `body`.
pub fn sign(
    method: &str,
    path: &str,
    query: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    params: &SigningParams,
) -> Result<(), SignError> {
    if !headers.contains_key(HOST) {
        return Err(SignError::MissingHost);
    }
    let amz_date = params.amz_date();
    headers.insert(
        "x-amz-date",
        HeaderValue::from_str(&amz_date)
            .map_err(|_| SignError::InvalidHeaderValue("x-amz-date"))?,
    );
    if let Some(token) = params.credentials.session_token {
        headers.insert(
            "x-amz-security-token",
            HeaderValue::from_str(token)
                .map_err(|_| SignError::InvalidHeaderValue("x-amz-security-token"))?,
        );
    }
    headers.remove(AUTHORIZATION);

    let mut names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let signed_headers = names.join(";");

    let payload_hash = match headers.get("x-amz-content-sha256") {
        Some(v) => String::from_utf8_lossy(v.as_bytes()).trim().to_owned(),
        None => canonical::sha256_hex(body),
    };
    let sig = signature(
        method,
        path,
        query,
        headers,
        &signed_headers,
        &payload_hash,
        false,
        params,
    );
    let value = format!(
        "{ALGORITHM} Credential={}, SignedHeaders={signed_headers}, Signature={sig}",
        params.credential()
    );
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&value)
            .map_err(|_| SignError::InvalidHeaderValue("authorization"))?,
    );
    Ok(())
}

/// Presigns a request: returns the query string (without `?`) to send,
/// i.e. `query` followed by the `X-Amz-*` parameters and `X-Amz-Signature`.
/// Only `host` is signed. `expires` is `X-Amz-Expires` in seconds.
///
/// The payload line is `UNSIGNED-PAYLOAD` when `body` is `None` (what
/// aws-sdk-rust and S3-style presigners do), else the SHA-256 of `body`
/// (what botocore's `SigV4QueryAuth` does for non-S3 services, with the
/// empty body for a GET).
pub fn presign(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Option<&[u8]>,
    params: &SigningParams,
    expires: u64,
) -> Result<String, SignError> {
    if !headers.contains_key(HOST) {
        return Err(SignError::MissingHost);
    }
    let mut q = String::from(query);
    let mut add = |k: &str, v: &str| {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(k);
        q.push('=');
        q.push_str(&canonical::uri_encode(v.as_bytes()));
    };
    add("X-Amz-Algorithm", ALGORITHM);
    add("X-Amz-Credential", &params.credential());
    add("X-Amz-Date", &params.amz_date());
    add("X-Amz-Expires", &expires.to_string());
    add("X-Amz-SignedHeaders", "host");
    if let Some(token) = params.credentials.session_token {
        add("X-Amz-Security-Token", token);
    }
    let payload_hash = body.map_or_else(|| UNSIGNED_PAYLOAD.to_owned(), canonical::sha256_hex);
    let sig = signature(
        method,
        path,
        &q,
        headers,
        "host",
        &payload_hash,
        true,
        params,
    );
    q.push_str("&X-Amz-Signature=");
    q.push_str(&sig);
    Ok(q)
}
