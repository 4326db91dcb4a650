//! TLS termination for HTTPS (and TLS) listeners.
//!
//! A listener names its certificates by ACM ARN; Berth has no ACM, so
//! `arn:aws:acm:REGION:ACCOUNT:certificate/NAME` is the PEM file
//! `{cert_dir}/NAME.pem` holding the chain (leaf first) and the private key.
//! The first certificate is the default; with several, the client's SNI
//! picks the certificate whose subject alternative names cover it (as ELB
//! does), checked by webpki, the same code clients verify names with.
//! ALPN offers h2 then http/1.1 (only http/1.1 when the load balancer's
//! `routing.http2.enabled` is false: [`acceptor_with`]).

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the listener has no certificate")]
    NoCertificate,
    #[error("certificate ARN '{0}' is not of the form arn:aws:acm:REGION:ACCOUNT:certificate/NAME")]
    BadArn(String),
    #[error("certificate file {path} cannot be read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate file {path} holds no PEM certificate")]
    NoCertInFile { path: PathBuf },
    #[error("certificate file {path} holds no PEM private key")]
    NoKeyInFile { path: PathBuf },
    #[error("certificate file {path} is not usable: {source}")]
    Invalid {
        path: PathBuf,
        source: rustls::Error,
    },
}

/// `NAME` of `arn:aws:acm:REGION:ACCOUNT:certificate/NAME`. The name must
/// be a plain file name, so an ARN can never point outside `cert_dir`.
fn certificate_name(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (_partition, service, _region, _account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let name = resource.strip_prefix("certificate/")?;
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    (service == "acm" && plain).then_some(name)
}

fn load(
    cert_dir: &Path,
    arn: &str,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let name = certificate_name(arn).ok_or_else(|| TlsError::BadArn(arn.to_string()))?;
    let path = cert_dir.join(format!("{name}.pem"));
    let pem = std::fs::read(&path).map_err(|source| TlsError::Read {
        path: path.clone(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertInFile { path });
    }
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|_| TlsError::NoKeyInFile { path: path.clone() })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::Invalid {
            path: path.clone(),
            source,
        })?;
    let ck = CertifiedKey::new(chain, signing);
    // A key that does not belong to the leaf would fail every handshake;
    // say so at load time instead. `Unknown` means the provider cannot
    // tell, which is not an error.
    match ck.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(source) => return Err(TlsError::Invalid { path, source }),
    }
    Ok(Arc::new(ck))
}

/// Picks a certificate by SNI, the first one by default.
#[derive(Debug)]
struct BySni {
    certs: Vec<Arc<CertifiedKey>>,
}

impl BySni {
    fn for_name(&self, sni: &str) -> Option<&Arc<CertifiedKey>> {
        let name = ServerName::try_from(sni).ok()?;
        self.certs.iter().find(|ck| {
            ck.end_entity_cert()
                .ok()
                .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
                .is_some_and(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
        })
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = if self.certs.len() > 1 {
            hello.server_name().and_then(|n| self.for_name(n))
        } else {
            None
        };
        chosen.or_else(|| self.certs.first()).cloned()
    }
}

/// The acceptor of a listener with these certificates (the first the
/// default), offering h2 and http/1.1 by ALPN. Fails with the file that is
/// missing or unusable.
pub fn acceptor(
    cert_dir: &Path,
    certificate_arns: &[String],
) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    acceptor_with(cert_dir, certificate_arns, true)
}

/// [`acceptor`] for a load balancer whose `routing.http2.enabled` is
/// `http2`: when false, ALPN offers only http/1.1, so clients never
/// negotiate HTTP/2.
pub fn acceptor_with(
    cert_dir: &Path,
    certificate_arns: &[String],
    http2: bool,
) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    if certificate_arns.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    // An explicit provider: the process-wide default is ambiguous when more
    // than one crypto backend is linked.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificate_arns
        .iter()
        .map(|arn| load(cert_dir, arn, &provider))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Invalid {
            path: cert_dir.to_path_buf(),
            source,
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { certs }));
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_to_name() {
        assert_eq!(
            certificate_name("arn:aws:acm:us-east-1:123456789012:certificate/web"),
            Some("web")
        );
        assert_eq!(
            certificate_name("arn:aws:acm:us-east-1:123456789012:certificate/../etc"),
            None
        );
        assert_eq!(
            certificate_name("arn:aws:acm:us-east-1:123456789012:certificate/a/b"),
            None
        );
        assert_eq!(
            certificate_name("arn:aws:iam::123456789012:server-certificate/web"),
            None
        );
        assert_eq!(certificate_name("web"), None);
    }

    #[test]
    fn missing_file_is_named() {
        let dir = std::env::temp_dir().join("berth-lb-tls-missing");
        let Err(err) = acceptor(
            &dir,
            &["arn:aws:acm:us-east-1:123456789012:certificate/nope".to_string()],
        ) else {
            panic!("loaded a missing file")
        };
        assert!(err.to_string().contains("nope.pem"), "{err}");
        assert!(matches!(acceptor(&dir, &[]), Err(TlsError::NoCertificate)));
        assert!(matches!(
            acceptor(&dir, &["bad".to_string()]),
            Err(TlsError::BadArn(_))
        ));
    }
}
