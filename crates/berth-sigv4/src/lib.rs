//! Server-side verification of AWS Signature Version 4.
//!
//! Berth receives requests from real AWS clients (aws CLI, boto3,
//! aws-sdk-rust) and authenticates them the way AWS does: it recomputes the
//! SigV4 signature (canonical request → string to sign → HMAC-SHA256 key
//! chain) from the request as received and compares it, in constant time,
//! with the signature the client sent. Both the `Authorization` header form
//! and the presigned query-string form are accepted.
//!
//! This crate is pure: no IO and no clock reads — the caller passes `now`
//! and a lookup from access key id to secret access key.
//!
//! Canonicalisation follows AWS's rules for non-S3 services (double-encoded,
//! normalised path; decoded-and-re-encoded sorted query; trimmed signed
//! headers). Where real SDKs are known to differ in corner cases (an
//! un-normalised path, a non-canonically encoded query, the payload hash of a
//! presigned request), every legitimate interpretation is tried; each
//! candidate is still bound to the request bytes and the secret.
//!
//! [`signer`] is a small *client-side* signer for tests and tooling.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod canonical;
mod error;
pub mod signer;
mod time;

use std::fmt;
use std::time::SystemTime;

use http::HeaderMap;
use subtle::{Choice, ConstantTimeEq};

pub use error::SigV4Error;

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The fixed last element of a credential scope.
pub const TERMINATOR: &str = "aws4_request";
/// The payload-hash placeholder for unsigned bodies.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Allowed clock skew either way, seconds (15 minutes).
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
/// Largest `X-Amz-Expires` for a presigned request, seconds (7 days).
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";

const Q_ALGORITHM: &str = "X-Amz-Algorithm";
const Q_CREDENTIAL: &str = "X-Amz-Credential";
const Q_DATE: &str = "X-Amz-Date";
const Q_EXPIRES: &str = "X-Amz-Expires";
const Q_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
const Q_SIGNATURE: &str = "X-Amz-Signature";
const Q_SECURITY_TOKEN: &str = "X-Amz-Security-Token";
const Q_CONTENT_SHA256: &str = "X-Amz-Content-Sha256";

/// The parts of an incoming HTTP request that SigV4 covers.
pub struct RequestParts<'a> {
    /// The request method, e.g. `POST`.
    pub method: &'a str,
    /// Raw path as on the wire (still percent-encoded), e.g. `/`.
    pub path: &'a str,
    /// Raw query string without `?`, may be empty.
    pub query: &'a str,
    /// All request headers.
    pub headers: &'a HeaderMap,
    /// The full request body.
    pub body: &'a [u8],
}

impl fmt::Debug for RequestParts<'_> {
    /// Shows header *names* only and the body length: header values and the
    /// query may carry signatures and session tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestParts")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query_len", &self.query.len())
            .field(
                "header_names",
                &self.headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The credential scope a request claims: `AKID/date/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The access key id.
    pub access_key_id: String,
    /// `YYYYMMDD`.
    pub date: String,
    /// Region, e.g. `us-east-1`.
    pub region: String,
    /// Signing name, e.g. `ecs`, `elasticloadbalancing`, `sts`.
    pub service: String,
}

/// A successfully verified request.
#[derive(Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The access key id that signed the request.
    pub access_key_id: String,
    /// Region from the credential scope.
    pub region: String,
    /// Signing name from the credential scope, e.g. `ecs`.
    pub service: String,
    /// `X-Amz-Security-Token` (header, or query parameter for presigned
    /// requests), if any. Verifying it is the caller's job.
    pub session_token: Option<String>,
    /// The signing time (`X-Amz-Date`/`Date`).
    pub signed_at: SystemTime,
}

impl fmt::Debug for Authenticated {
    /// The session token is a credential: only its presence is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticated")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("signed_at", &self.signed_at)
            .finish()
    }
}

/// Parse only (no secret needed): which credential scope does the request
/// claim? Used to route query-protocol requests by signing name before
/// verifying. Only the credential is examined.
pub fn parse_scope(req: &RequestParts) -> Result<Scope, SigV4Error> {
    match detect(req)? {
        Form::Header(auth) => {
            let parsed = parse_authorization(auth)?;
            match parsed.credential {
                Some(c) => parse_credential(c),
                None => Err(SigV4Error::IncompleteSignature(format!(
                    "Authorization header requires 'Credential' parameter. Authorization={}",
                    parsed.echo()
                ))),
            }
        }
        Form::Presigned(params) => match params.get(Q_CREDENTIAL)? {
            Some(c) => parse_credential(&c),
            None => Err(missing_query_params(&[Q_CREDENTIAL])),
        },
    }
}

/// Verifies the request's SigV4 signature.
///
/// `secret_for(access_key_id)` returns the secret access key, or `None` if
/// the key is unknown. `now` is the server's current time.
pub fn verify(
    req: &RequestParts,
    now: SystemTime,
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Authenticated, SigV4Error> {
    let claim = parse_claim(req)?;
    check_time_window(&claim, time::unix_secs(now))?;

    let secret = secret_for(&claim.scope.access_key_id).ok_or(SigV4Error::UnrecognizedClient)?;
    let payload_hashes = payload_hashes(req, &claim)?;
    let key = canonical::signing_key(&secret, &claim.scope);
    drop(secret);

    let scope = canonical::scope_string(&claim.scope);
    let headers = canonical::canonical_headers(req.headers, &claim.signed_headers);
    let provided = claim.signature.as_bytes();
    let mut matched = Choice::from(0);
    for uri in canonical::canonical_uris(req.path) {
        for query in canonical::canonical_queries(req.query, claim.presigned_expires.is_some()) {
            for payload in &payload_hashes {
                let creq = canonical::canonical_request(
                    req.method,
                    &uri,
                    &query,
                    &headers,
                    &claim.signed_headers,
                    payload,
                );
                let computed = canonical::signature(&key, &claim.amz_date, &scope, &creq);
                // `ct_eq` on slices of different lengths is a (constant-time) mismatch.
                matched |= computed.as_bytes().ct_eq(provided);
            }
        }
    }
    if !bool::from(matched) {
        return Err(SigV4Error::SignatureDoesNotMatch);
    }

    let signed_at = time::system_time(claim.signed_at).ok_or_else(|| bad_date(&claim.amz_date))?;
    Ok(Authenticated {
        access_key_id: claim.scope.access_key_id,
        region: claim.scope.region,
        service: claim.scope.service,
        session_token: claim.session_token,
        signed_at,
    })
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Everything the request claims about its signature.
struct Claim {
    scope: Scope,
    signed_headers: String,
    signature: String,
    /// The signing time as it enters the string to sign (ISO-8601 basic).
    amz_date: String,
    /// The signing time, Unix seconds.
    signed_at: i64,
    /// `Some(X-Amz-Expires)` for the presigned form.
    presigned_expires: Option<u64>,
    session_token: Option<String>,
    /// `X-Amz-Content-Sha256` query parameter (presigned form only).
    query_content_sha256: Option<String>,
}

enum Form<'a> {
    Header(&'a [u8]),
    Presigned(QueryParams),
}

/// The decoded query parameters.
struct QueryParams(Vec<(Vec<u8>, Vec<u8>)>);

impl QueryParams {
    fn parse(raw: &str) -> Self {
        Self(
            raw.split('&')
                .filter(|c| !c.is_empty())
                .map(|c| {
                    let (k, v) = c.split_once('=').unwrap_or((c, ""));
                    (canonical::uri_decode(k), canonical::uri_decode(v))
                })
                .collect(),
        )
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name.as_bytes())
    }

    /// The first value of `name`, which must be UTF-8.
    fn get(&self, name: &str) -> Result<Option<String>, SigV4Error> {
        match self.0.iter().find(|(k, _)| k == name.as_bytes()) {
            None => Ok(None),
            Some((_, v)) => String::from_utf8(v.clone()).map(Some).map_err(|_| {
                SigV4Error::IncompleteSignature(format!(
                    "Query parameter '{name}' is not valid UTF-8."
                ))
            }),
        }
    }
}

fn detect<'a>(req: &RequestParts<'a>) -> Result<Form<'a>, SigV4Error> {
    if let Some(auth) = req.headers.get(http::header::AUTHORIZATION) {
        return Ok(Form::Header(auth.as_bytes()));
    }
    let params = QueryParams::parse(req.query);
    if [Q_ALGORITHM, Q_CREDENTIAL, Q_SIGNATURE]
        .iter()
        .any(|n| params.has(n))
    {
        return Ok(Form::Presigned(params));
    }
    Err(SigV4Error::MissingAuthenticationToken)
}

fn parse_claim(req: &RequestParts) -> Result<Claim, SigV4Error> {
    match detect(req)? {
        Form::Header(auth) => parse_header_claim(req, auth),
        Form::Presigned(params) => parse_presigned_claim(req, &params),
    }
}

/// The `Authorization` header, split into its components.
struct AuthorizationHeader<'a> {
    algorithm: &'a str,
    credential: Option<&'a str>,
    signed_headers: Option<&'a str>,
    signature: Option<&'a str>,
    /// Components in order, for echoing back (signature redacted).
    components: Vec<(&'a str, &'a str)>,
}

impl AuthorizationHeader<'_> {
    /// The header as echoed in error messages, with the signature value
    /// redacted and the whole truncated.
    fn echo(&self) -> String {
        let mut s = String::from(self.algorithm);
        for (i, (k, v)) in self.components.iter().enumerate() {
            s.push_str(if i == 0 { " " } else { ", " });
            s.push_str(k);
            s.push('=');
            s.push_str(if k.eq_ignore_ascii_case("signature") {
                "<redacted>"
            } else {
                v
            });
        }
        sanitize(&s, 512)
    }
}

fn parse_authorization(raw: &[u8]) -> Result<AuthorizationHeader<'_>, SigV4Error> {
    let auth = std::str::from_utf8(raw).map_err(|_| {
        SigV4Error::IncompleteSignature("Authorization header is not valid UTF-8.".to_owned())
    })?;
    let auth = auth.trim();
    let (algorithm, rest) = auth.split_once([' ', '\t']).unwrap_or((auth, ""));
    let mut parsed = AuthorizationHeader {
        algorithm,
        credential: None,
        signed_headers: None,
        signature: None,
        components: Vec::new(),
    };
    if !algorithm.is_empty() && algorithm != ALGORITHM {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{}'. Only '{ALGORITHM}' is supported.",
            sanitize(algorithm, 64)
        )));
    }
    for comp in rest.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let Some((k, v)) = comp.split_once('=') else {
            return Err(SigV4Error::IncompleteSignature(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                sanitize(comp, 32)
            )));
        };
        let (k, v) = (k.trim(), v.trim());
        parsed.components.push((k, v));
        let slot = match k {
            "Credential" => &mut parsed.credential,
            "SignedHeaders" => &mut parsed.signed_headers,
            "Signature" => &mut parsed.signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v);
        }
    }
    Ok(parsed)
}

fn parse_header_claim(req: &RequestParts, raw_auth: &[u8]) -> Result<Claim, SigV4Error> {
    let auth = parse_authorization(raw_auth)?;

    // The date: X-Amz-Date wins over Date.
    let date_header = [(X_AMZ_DATE, "X-Amz-Date"), ("date", "Date")]
        .into_iter()
        .find_map(|(name, label)| req.headers.get(name).map(|v| (v, label)));

    let mut missing = String::new();
    for (name, present) in [
        ("Credential", auth.credential.is_some()),
        ("SignedHeaders", auth.signed_headers.is_some()),
        ("Signature", auth.signature.is_some()),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if date_header.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some((date_value, date_label))) = (
        auth.credential,
        auth.signed_headers,
        auth.signature,
        date_header,
    ) else {
        return Err(SigV4Error::IncompleteSignature(format!(
            "{missing}Authorization={}",
            auth.echo()
        )));
    };

    let scope = parse_credential(credential)?;

    let date_str = String::from_utf8_lossy(date_value.as_bytes());
    let (amz_date, signed_at) = if date_label == "X-Amz-Date" {
        let secs = time::parse_iso_basic(date_str.trim()).ok_or_else(|| bad_date(&date_str))?;
        (date_str.trim().to_owned(), secs)
    } else {
        let d = date_str.trim();
        let secs = time::parse_iso_basic(d)
            .or_else(|| time::parse_imf_fixdate(d))
            .ok_or_else(|| bad_date(&date_str))?;
        (time::format_iso_basic(secs), secs)
    };
    check_scope_date(&scope, &amz_date, date_label)?;
    require_host(signed_headers, false)?;

    let session_token = match req.headers.get(X_AMZ_SECURITY_TOKEN) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    SigV4Error::IncompleteSignature(
                        "The X-Amz-Security-Token header is not valid ASCII.".to_owned(),
                    )
                })?
                .to_owned(),
        ),
    };

    Ok(Claim {
        scope,
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
        amz_date,
        signed_at,
        presigned_expires: None,
        session_token,
        query_content_sha256: None,
    })
}

fn missing_query_params(names: &[&str]) -> SigV4Error {
    let mut msg = String::new();
    for n in names {
        msg.push_str(&format!("AWS query-string parameters must include '{n}'. "));
    }
    msg.push_str("Re-examine the query-string parameters.");
    SigV4Error::IncompleteSignature(msg)
}

fn parse_presigned_claim(req: &RequestParts, params: &QueryParams) -> Result<Claim, SigV4Error> {
    let algorithm = params.get(Q_ALGORITHM)?;
    let credential = params.get(Q_CREDENTIAL)?;
    let date = params.get(Q_DATE)?;
    let expires = params.get(Q_EXPIRES)?;
    let signed_headers = params.get(Q_SIGNED_HEADERS)?;
    let signature = params.get(Q_SIGNATURE)?;

    let missing: Vec<&str> = [
        (Q_ALGORITHM, algorithm.is_some()),
        (Q_CREDENTIAL, credential.is_some()),
        (Q_DATE, date.is_some()),
        (Q_EXPIRES, expires.is_some()),
        (Q_SIGNED_HEADERS, signed_headers.is_some()),
        (Q_SIGNATURE, signature.is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| !present)
    .map(|(n, _)| n)
    .collect();
    let (
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ) = (
        algorithm,
        credential,
        date,
        expires,
        signed_headers,
        signature,
    )
    else {
        return Err(missing_query_params(&missing));
    };

    if algorithm != ALGORITHM {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{}'. Only '{ALGORITHM}' is supported.",
            sanitize(&algorithm, 64)
        )));
    }
    let scope = parse_credential(&credential)?;
    let signed_at = time::parse_iso_basic(&date).ok_or_else(|| bad_date(&date))?;
    check_scope_date(&scope, &date, Q_DATE)?;

    let expires = parse_expires(&expires)?;
    require_host(&signed_headers, true)?;

    let session_token = match params.get(Q_SECURITY_TOKEN)? {
        Some(t) => Some(t),
        None => req
            .headers
            .get(X_AMZ_SECURITY_TOKEN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };

    Ok(Claim {
        scope,
        signed_headers,
        signature,
        amz_date: date,
        signed_at,
        presigned_expires: Some(expires),
        session_token,
        query_content_sha256: params.get(Q_CONTENT_SHA256)?,
    })
}

fn parse_expires(s: &str) -> Result<u64, SigV4Error> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SigV4Error::IncompleteSignature(format!(
            "X-Amz-Expires should be a number, got '{}'.",
            sanitize(s, 32)
        )));
    }
    // At most 10 ASCII digits: always fits in a u64.
    let n: u64 = s.bytes().fold(0, |acc, b| acc * 10 + u64::from(b - b'0'));
    if n == 0 {
        return Err(SigV4Error::IncompleteSignature(
            "X-Amz-Expires must be at least 1 second.".to_owned(),
        ));
    }
    if n > MAX_PRESIGNED_EXPIRES_SECS {
        return Err(SigV4Error::IncompleteSignature(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES_SECS}."
        )));
    }
    Ok(n)
}

/// `AKID/YYYYMMDD/region/service/aws4_request`.
fn parse_credential(credential: &str) -> Result<Scope, SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let incomplete = |msg: String| Err(SigV4Error::IncompleteSignature(msg));
    let [akid, date, region, service, terminator] = parts.as_slice() else {
        return incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            sanitize(credential, 256)
        ));
    };
    if *terminator != TERMINATOR {
        return incomplete(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            sanitize(terminator, 64)
        ));
    }
    if akid.is_empty() {
        return incomplete(format!(
            "Credential should contain an access key id, got '{}'",
            sanitize(credential, 256)
        ));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return incomplete(format!(
            "Credential should be scoped to a valid date (YYYYMMDD), not '{}'.",
            sanitize(date, 64)
        ));
    }
    if region.is_empty() {
        return incomplete("Credential should be scoped to a valid region, not ''.".to_owned());
    }
    if service.is_empty() {
        return incomplete("Credential should be scoped to correct service, not ''.".to_owned());
    }
    Ok(Scope {
        access_key_id: (*akid).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
    })
}

fn bad_date(got: &str) -> SigV4Error {
    SigV4Error::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
        sanitize(got, 64)
    ))
}

fn check_scope_date(scope: &Scope, amz_date: &str, from: &str) -> Result<(), SigV4Error> {
    // `amz_date` was validated as ISO-8601 basic, so it has at least 8 ASCII bytes.
    let day = amz_date.get(..8).unwrap_or(amz_date);
    if scope.date != day {
        return Err(SigV4Error::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{from}'.",
            scope.date
        )));
    }
    Ok(())
}

fn require_host(signed_headers: &str, presigned: bool) -> Result<(), SigV4Error> {
    if signed_headers
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("host"))
    {
        return Ok(());
    }
    let place = if presigned {
        "X-Amz-SignedHeaders"
    } else {
        "AWS Authorization"
    };
    Err(SigV4Error::IncompleteSignature(format!(
        "'Host' or ':authority' must be a 'SignedHeader' in the {place}."
    )))
}

fn check_time_window(claim: &Claim, now: i64) -> Result<(), SigV4Error> {
    let fmt = time::format_iso_basic;
    let signed = claim.signed_at;
    if signed > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(SigV4Error::SignatureNotYetCurrent {
            signed_at: fmt(signed),
            latest: fmt(now.saturating_add(MAX_CLOCK_SKEW_SECS)),
            now: fmt(now),
        });
    }
    match claim.presigned_expires {
        None if signed < now.saturating_sub(MAX_CLOCK_SKEW_SECS) => {
            Err(SigV4Error::SignatureExpired {
                signed_at: fmt(signed),
                earliest: fmt(now.saturating_sub(MAX_CLOCK_SKEW_SECS)),
                now: fmt(now),
            })
        }
        // `expires` ≤ 604800, so the cast cannot truncate.
        Some(expires) if now > signed.saturating_add(expires as i64) => {
            Err(SigV4Error::RequestExpired {
                signed_at: fmt(signed),
                expires,
                expired_at: fmt(signed.saturating_add(expires as i64)),
                now: fmt(now),
            })
        }
        _ => Ok(()),
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The payload-hash line candidates.
///
/// * `x-amz-content-sha256` header (or, presigned, `X-Amz-Content-Sha256`
///   query parameter): `UNSIGNED-PAYLOAD`, or a hex SHA-256 that must match
///   the body.
/// * otherwise, header form: hex SHA-256 of the body;
/// * otherwise, presigned form: `UNSIGNED-PAYLOAD` (what aws-sdk-rust and
///   S3-style presigners sign) or the body hash (what botocore's
///   `SigV4QueryAuth` signs for non-S3 services, and AWS's documented
///   examples).
fn payload_hashes(req: &RequestParts, claim: &Claim) -> Result<Vec<String>, SigV4Error> {
    let declared = match req.headers.get(X_AMZ_CONTENT_SHA256) {
        Some(v) => Some(String::from_utf8_lossy(v.as_bytes()).trim().to_owned()),
        None => claim.query_content_sha256.clone(),
    };
    let body_hash = canonical::sha256_hex(req.body);
    match declared {
        Some(v) if v == UNSIGNED_PAYLOAD => Ok(vec![v]),
        Some(v) if is_sha256_hex(&v) => {
            if v.eq_ignore_ascii_case(&body_hash) {
                Ok(vec![v])
            } else {
                Err(SigV4Error::InvalidSignature(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                        .to_owned(),
                ))
            }
        }
        Some(v) => Err(SigV4Error::InvalidSignature(format!(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 hex digest, got '{}'.",
            sanitize(&v, 64)
        ))),
        None if claim.presigned_expires.is_some() => {
            Ok(vec![UNSIGNED_PAYLOAD.to_owned(), body_hash])
        }
        None => Ok(vec![body_hash]),
    }
}

/// Makes client-supplied text safe to echo: control characters become `?`,
/// and the result is cut to `max` characters.
fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests;
