//! An OCI Distribution client: manifests (index → platform manifest),
//! blobs streamed into the content store, and the registry auth dance.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde::Deserialize;

use crate::auth::{self, Credentials, TokenCache, TokenKey};
use crate::digest::Digest;
use crate::error::ImageError;
use crate::manifest::{Descriptor, ImageIndex, ImageManifest, Platform, media_type};
use crate::reference::ImageReference;
use crate::store::ContentStore;

/// Containerd's limit: a manifest bigger than this is not a manifest.
const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
const MAX_TOKEN_RESPONSE_SIZE: u64 = 1024 * 1024;
const MAX_ERROR_BODY_SIZE: u64 = 64 * 1024;
/// An index may point at another index; more nesting than this is a loop
/// or abuse.
const MAX_INDEX_DEPTH: usize = 3;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// `host[:port]` entries that are spoken to over plain HTTP, like
    /// Docker's `insecure-registries`. Loopback hosts always are.
    pub insecure_registries: Vec<String>,
    /// PEM certificates trusted in addition to the bundled web PKI roots,
    /// for registries with a private CA.
    pub extra_root_certificates_pem: Vec<Vec<u8>>,
    /// The platform chosen from multi-platform images.
    pub platform: Platform,
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// Longest silence while reading a response before giving up.
    pub read_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure_registries: Vec::new(),
            extra_root_certificates_pem: Vec::new(),
            platform: Platform::linux_amd64(),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
        }
    }
}

/// Cheap to clone; clones share connections and cached tokens.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: RegistryConfig,
    tokens: TokenCache,
    /// Hosts that asked for Basic auth, so later requests send it up front.
    basic_hosts: Mutex<HashSet<String>>,
}

/// A manifest or index as fetched, verified against its digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// The platform manifest an image reference resolves to.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Every document fetched on the way (indexes, then the manifest), so
    /// the caller can keep them in the store.
    pub documents: Vec<FetchedManifest>,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest: ImageManifest,
}

/// Who is asking, for auth and error messages.
struct Target<'a> {
    reference: &'a ImageReference,
    credentials: Option<&'a Credentials>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl RegistryClient {
    pub fn new(config: RegistryConfig) -> Result<RegistryClient, ImageError> {
        let tls = tls_config(&config.extra_root_certificates_pem)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .build()
            .map_err(|e| ImageError::Tls(e.to_string()))?;
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                http,
                config,
                tokens: TokenCache::default(),
                basic_hosts: Mutex::default(),
            }),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// `http://` for loopback and configured insecure registries (as
    /// Docker treats 127.0.0.0/8), `https://` for everything else.
    pub fn scheme_for(&self, host: &str) -> &'static str {
        if is_loopback(host)
            || self
                .inner
                .config
                .insecure_registries
                .iter()
                .any(|h| host_matches(h, host))
        {
            "http"
        } else {
            "https"
        }
    }

    fn base_url(&self, reference: &ImageReference) -> String {
        let host = reference.api_host();
        format!(
            "{}://{}/v2/{}",
            self.scheme_for(host),
            host,
            reference.repository()
        )
    }

    /// Fetches `reference` and, through any index, the manifest for the
    /// configured platform.
    pub async fn resolve(
        &self,
        reference: &ImageReference,
        credentials: Option<&Credentials>,
    ) -> Result<ResolvedImage, ImageError> {
        let target = Target {
            reference,
            credentials,
        };
        let mut documents = Vec::new();
        let mut current = self
            .fetch_manifest_inner(&target, &reference.manifest_reference(), None)
            .await?;
        for _ in 0..=MAX_INDEX_DEPTH {
            if media_type::is_index(&current.media_type) {
                let index: ImageIndex = serde_json::from_slice(&current.bytes)
                    .map_err(|e| ImageError::invalid(format!("index {}", current.digest), e))?;
                let platform = &self.inner.config.platform;
                let chosen =
                    index
                        .select(platform)
                        .ok_or_else(|| ImageError::NoMatchingPlatform {
                            reference: reference.to_string(),
                            platform: platform.to_string(),
                        })?;
                let next = self
                    .fetch_manifest_inner(&target, &chosen.digest.to_string(), Some(chosen.size))
                    .await?;
                documents.push(current);
                current = next;
            } else if media_type::is_manifest(&current.media_type) {
                let manifest = parse_manifest(&current)?;
                let manifest_digest = current.digest.clone();
                let manifest_media_type = current.media_type.clone();
                documents.push(current);
                return Ok(ResolvedImage {
                    documents,
                    manifest_digest,
                    manifest_media_type,
                    manifest,
                });
            } else {
                return Err(ImageError::UnsupportedMediaType {
                    media_type: current.media_type,
                });
            }
        }
        Err(ImageError::invalid(
            format!("image {reference}"),
            "indexes nested too deeply",
        ))
    }

    /// Fetches one manifest or index by tag or digest and checks it
    /// against the digest it was asked by (or the one the registry claims).
    pub async fn fetch_manifest(
        &self,
        reference: &ImageReference,
        tag_or_digest: &str,
        credentials: Option<&Credentials>,
    ) -> Result<FetchedManifest, ImageError> {
        self.fetch_manifest_inner(
            &Target {
                reference,
                credentials,
            },
            tag_or_digest,
            None,
        )
        .await
    }

    async fn fetch_manifest_inner(
        &self,
        target: &Target<'_>,
        tag_or_digest: &str,
        expected_size: Option<u64>,
    ) -> Result<FetchedManifest, ImageError> {
        let url = format!(
            "{}/manifests/{}",
            self.base_url(target.reference),
            tag_or_digest
        );
        let response = self
            .get(target, &url, Some(media_type::MANIFEST_ACCEPT))
            .await?;
        let response = self
            .check_status(target, response, || ImageError::NotFound {
                reference: target.reference.to_string(),
            })
            .await?;
        let declared_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let claimed_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = self
            .read_limited(target, response, MAX_MANIFEST_SIZE, "manifest")
            .await?;
        let digest = Digest::of(&bytes);
        let expected = match tag_or_digest.parse::<Digest>() {
            Ok(d) => Some(d),
            // A tag: the registry's claimed digest is the only check there is.
            Err(_) => claimed_digest.and_then(|c| c.parse::<Digest>().ok()),
        };
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(ImageError::DigestMismatch {
                what: format!("manifest {}", target.reference),
                expected,
                actual: digest,
            });
        }
        if let Some(size) = expected_size
            && size != bytes.len() as u64
        {
            return Err(ImageError::SizeMismatch {
                digest,
                expected: size,
                actual: bytes.len() as u64,
            });
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::invalid(format!("manifest {}", target.reference), e))?;
        let media_type = crate::manifest::sniff_media_type(declared_type.as_deref(), &json)
            .ok_or_else(|| ImageError::UnsupportedMediaType {
                media_type: declared_type.unwrap_or_default(),
            })?;
        Ok(FetchedManifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// Downloads `descriptor` into `store` unless it is already there,
    /// verifying size and digest before it becomes visible.
    pub async fn fetch_blob(
        &self,
        reference: &ImageReference,
        descriptor: &Descriptor,
        credentials: Option<&Credentials>,
        store: &ContentStore,
    ) -> Result<(), ImageError> {
        if store.has_blob(&descriptor.digest) {
            return Ok(());
        }
        let target = Target {
            reference,
            credentials,
        };
        let url = format!("{}/blobs/{}", self.base_url(reference), descriptor.digest);
        let response = self.get(&target, &url, None).await?;
        let mut response = self
            .check_status(&target, response, || ImageError::BlobNotFound {
                reference: reference.to_string(),
                digest: descriptor.digest.clone(),
            })
            .await?;
        if let Some(len) = response.content_length()
            && len != descriptor.size
        {
            return Err(ImageError::SizeMismatch {
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                actual: len,
            });
        }
        let mut writer = store
            .blob_writer(descriptor.digest.clone(), Some(descriptor.size))
            .await?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.network(&target, e))?
        {
            writer.write(&chunk).await?;
        }
        writer.commit().await?;
        Ok(())
    }

    /// GET with the auth we have; on 401 answer the challenge once and
    /// retry.
    async fn get(
        &self,
        target: &Target<'_>,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, ImageError> {
        let mut authorization = self.cached_authorization(target);
        for attempt in 0..2 {
            let mut request = self.inner.http.get(url);
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(value) = &authorization {
                request = request.header(AUTHORIZATION, value);
            }
            let response = request.send().await.map_err(|e| self.network(target, e))?;
            if response.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(response);
            }
            let challenges: Vec<_> = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(auth::parse_www_authenticate)
                .collect();
            authorization = Some(self.answer_challenge(target, &challenges).await?);
        }
        // The loop always returns on its second pass.
        Err(ImageError::Unauthorized {
            reference: target.reference.to_string(),
            message: "authentication failed".into(),
        })
    }

    fn cached_authorization(&self, target: &Target<'_>) -> Option<String> {
        let host = target.reference.api_host();
        let key = TokenKey::new(host, target.reference.repository(), target.credentials);
        if let Some(token) = self.inner.tokens.get(&key) {
            return Some(format!("Bearer {token}"));
        }
        let basic = self
            .inner
            .basic_hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(host);
        match target.credentials {
            Some(credentials) if basic => Some(credentials.basic_header()),
            _ => None,
        }
    }

    async fn answer_challenge(
        &self,
        target: &Target<'_>,
        challenges: &[auth::Challenge],
    ) -> Result<String, ImageError> {
        let unauthorized = |message: &str| ImageError::Unauthorized {
            reference: target.reference.to_string(),
            message: message.to_owned(),
        };
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let token = self.fetch_token(target, bearer).await?;
            return Ok(format!("Bearer {token}"));
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let Some(credentials) = target.credentials else {
                return Err(unauthorized(
                    "the registry requires credentials and none were given",
                ));
            };
            let host = target.reference.api_host().to_owned();
            self.inner
                .basic_hosts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(host);
            return Ok(credentials.basic_header());
        }
        Err(unauthorized(
            "the registry asked for an unsupported authentication scheme",
        ))
    }

    async fn fetch_token(
        &self,
        target: &Target<'_>,
        challenge: &auth::Challenge,
    ) -> Result<String, ImageError> {
        let reference = target.reference;
        let unauthorized = |message: String| ImageError::Unauthorized {
            reference: reference.to_string(),
            message,
        };
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| unauthorized("bearer challenge without a realm".into()))?;
        let realm_url = reqwest::Url::parse(realm)
            .map_err(|_| unauthorized(format!("invalid token realm {realm:?}")))?;
        let realm_host = realm_url.host_str().unwrap_or_default().to_owned();
        let realm_host_port = match realm_url.port() {
            Some(port) => format!("{realm_host}:{port}"),
            None => realm_host.clone(),
        };
        match realm_url.scheme() {
            "https" => {}
            // Credentials are never sent in clear text to a host we would
            // not talk plain HTTP to ourselves.
            "http"
                if self.scheme_for(&realm_host_port) == "http" || target.credentials.is_none() => {}
            _ => return Err(unauthorized(format!("refusing token realm {realm:?}"))),
        }
        let default_scope = format!("repository:{}:pull", reference.repository());
        let scope = challenge
            .params
            .get("scope")
            .cloned()
            .unwrap_or(default_scope);
        let mut url = realm.clone();
        let mut sep = if realm_url.query().is_some() {
            '&'
        } else {
            '?'
        };
        if let Some(service) = challenge.params.get("service") {
            url.push_str(&format!("{sep}service={}", auth::query_escape(service)));
            sep = '&';
        }
        url.push_str(&format!("{sep}scope={}", auth::query_escape(&scope)));

        let mut request = self.inner.http.get(&url);
        if let Some(credentials) = target.credentials {
            request = request.header(AUTHORIZATION, credentials.basic_header());
        }
        let response = request.send().await.map_err(|e| self.network(target, e))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let message = self.error_message(target, response).await;
            return Err(unauthorized(format!("token request denied: {message}")));
        }
        if !status.is_success() {
            let message = self.error_message(target, response).await;
            return Err(ImageError::Registry {
                registry: realm_host,
                status: status.as_u16(),
                message,
            });
        }
        let body = self
            .read_limited(target, response, MAX_TOKEN_RESPONSE_SIZE, "token response")
            .await?;
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| ImageError::invalid("token response", e))?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ImageError::invalid("token response", "no token"))?;
        let lifetime = parsed
            .expires_in
            .map_or(auth::DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        let key = TokenKey::new(
            reference.api_host(),
            reference.repository(),
            target.credentials,
        );
        self.inner.tokens.put(key, token.clone(), lifetime);
        Ok(token)
    }

    /// Turns non-success statuses into typed errors.
    async fn check_status(
        &self,
        target: &Target<'_>,
        response: reqwest::Response,
        not_found: impl FnOnce() -> ImageError,
    ) -> Result<reqwest::Response, ImageError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let message = self.error_message(target, response).await;
        Err(match status {
            StatusCode::NOT_FOUND => not_found(),
            // Docker Hub answers 401 for repositories that do not exist, so
            // say both, as `docker pull` does.
            StatusCode::UNAUTHORIZED => ImageError::Unauthorized {
                reference: target.reference.to_string(),
                message: format!(
                    "repository does not exist or may require authorization: {message}"
                ),
            },
            StatusCode::FORBIDDEN => ImageError::Unauthorized {
                reference: target.reference.to_string(),
                message,
            },
            _ => ImageError::Registry {
                registry: target.reference.registry().to_owned(),
                status: status.as_u16(),
                message,
            },
        })
    }

    /// The registry's `{"errors":[…]}` message, or the status text.
    async fn error_message(&self, target: &Target<'_>, response: reqwest::Response) -> String {
        let status = response.status();
        let body = self
            .read_limited(target, response, MAX_ERROR_BODY_SIZE, "error body")
            .await
            .unwrap_or_default();
        if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(&body)
            && !parsed.errors.is_empty()
        {
            return parsed
                .errors
                .iter()
                .map(|e| {
                    if e.message.is_empty() {
                        e.code.clone()
                    } else {
                        format!("{}: {}", e.code, e.message)
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    }

    async fn read_limited(
        &self,
        target: &Target<'_>,
        mut response: reqwest::Response,
        limit: u64,
        what: &str,
    ) -> Result<Bytes, ImageError> {
        let too_big = || ImageError::invalid(what.to_owned(), format!("larger than {limit} bytes"));
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.network(target, e))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    fn network(&self, target: &Target<'_>, error: reqwest::Error) -> ImageError {
        ImageError::Network {
            registry: target.reference.registry().to_owned(),
            source: Arc::new(error),
        }
    }
}

fn parse_manifest(document: &FetchedManifest) -> Result<ImageManifest, ImageError> {
    let manifest: ImageManifest = serde_json::from_slice(&document.bytes)
        .map_err(|e| ImageError::invalid(format!("manifest {}", document.digest), e))?;
    if let Some(media_type) = manifest.unsupported_media_type() {
        return Err(ImageError::UnsupportedMediaType { media_type: media_type.to_string() });
    }
    Ok(manifest)
}

/// The rustls client setup (also used by the agent's control-plane client):
/// ring for crypto (no C toolchain for aws-lc),
/// the bundled Mozilla roots plus any configured private CAs.
pub fn tls_config(extra_pem: &[Vec<u8>]) -> Result<rustls::ClientConfig, ImageError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for pem in extra_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| ImageError::Tls(format!("invalid CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ImageError::Tls(format!("unusable CA certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImageError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Splits `host[:port]` / `[v6]:port` into its host part.
fn host_part(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => host_port,
    }
}

fn is_loopback(host_port: &str) -> bool {
    let host = host_part(host_port);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An insecure entry without a port covers every port of that host.
fn host_matches(entry: &str, host_port: &str) -> bool {
    entry.eq_ignore_ascii_case(host_port)
        || (!entry.contains(':') && host_part(host_port).eq_ignore_ascii_case(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_insecure() {
        let client = RegistryClient::new(RegistryConfig {
            insecure_registries: vec!["registry.lan:5000".into(), "mirror.lan".into()],
            ..RegistryConfig::default()
        })
        .unwrap();
        assert_eq!(client.scheme_for("127.0.0.1:5000"), "http");
        assert_eq!(client.scheme_for("127.8.9.10"), "http");
        assert_eq!(client.scheme_for("localhost:5000"), "http");
        assert_eq!(client.scheme_for("[::1]:5000"), "http");
        assert_eq!(client.scheme_for("registry.lan:5000"), "http");
        assert_eq!(client.scheme_for("registry.lan:5001"), "https");
        assert_eq!(client.scheme_for("mirror.lan:443"), "http");
        assert_eq!(client.scheme_for("registry-1.docker.io"), "https");
        assert_eq!(client.scheme_for("10.0.0.1:5000"), "https");
        assert_eq!(client.scheme_for("128.0.0.1"), "https");
    }

    #[test]
    fn rejects_bad_ca_pem() {
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".to_vec();
        let err = RegistryClient::new(RegistryConfig {
            extra_root_certificates_pem: vec![bad],
            ..Default::default()
        });
        assert!(matches!(err, Err(ImageError::Tls(_))));
    }
}
