//! The connection layer: TLS and mutual TLS (rustls, through tonic), the principal of a
//! mutual-TLS caller read from its client certificate, and the limits every connection lives
//! under. It knows nothing of the ledger's rules: it says who is calling, never what they may do
//! (that is `auth::may_call`, `auth::may_read` and the domain's `authorize`).
//!
//! # The certificate convention
//!
//! A client certificate names its principal in one Subject Alternative Name of type URI:
//!
//! | SAN URI | principal |
//! |---|---|
//! | `voucherledger:administration` | the administration |
//! | `voucherledger:operator` | the operator |
//! | `voucherledger:auditor` | an auditor |
//! | `voucherledger:provider:AG-0012` | the approved provider `AG-0012` |
//!
//! Exactly one SAN URI must start with `voucherledger:`; a certificate with none, with two, or
//! with one that names no principal is refused with UNAUTHENTICATED. The subject's common name
//! is not read: a name is for people, the URI is for the ledger.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ledger_domain::Principal;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// The scheme of the SAN URI that names a client certificate's principal.
pub const PRINCIPAL_URI_PREFIX: &str = "voucherledger:";

/// Most concurrent requests one connection has served at once: enough for an operator's batch
/// client, small enough that one connection cannot queue unbounded work.
pub const CONCURRENT_REQUESTS_PER_CONNECTION_MAX: usize = 256;

/// Most HTTP/2 streams one connection may have open at once (`SETTINGS_MAX_CONCURRENT_STREAMS`):
/// the same as the requests served at once, so that a client beyond it waits in its own HTTP/2
/// layer rather than in the server's memory. Audit subscriptions are streams too.
pub const HTTP2_STREAMS_PER_CONNECTION_MAX: u32 = 256;

/// Largest block of request headers (gRPC metadata), in bytes, decoded: a bearer token is at most
/// 512 bytes and the rest of a gRPC call's headers a few hundred; 16 KiB leaves room and keeps a
/// header flood cheap.
pub const HTTP2_HEADER_LIST_BYTES_MAX: u32 = 16 * 1024;

/// Longest TLS handshake, in milliseconds: a handshake takes a few round trips; ten seconds
/// covers a slow link and stops a client that opens connections and never finishes them from
/// holding a socket and a task forever.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// Largest certificate, key or CA file read at start, in bytes: a PEM chain of a few
/// certificates is a few KiB.
const PEM_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// How callers prove who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// A bearer token in the `authorization` header, known by its SHA-256 digest.
    Token,
    /// A client certificate signed by `tls_client_ca_file`, naming its principal in a SAN URI.
    Mtls,
}

impl std::fmt::Display for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthMode::Token => "token",
            AuthMode::Mtls => "mtls",
        })
    }
}

/// The server's TLS material, read and checked at start.
#[derive(Clone)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// When set, every client must present a certificate signed by one of these CAs.
    pub client_ca_file: Option<PathBuf>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsFiles {
    // The key is a secret: its path is shown, never its bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("client_ca_file", &self.client_ca_file)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsFilesError {
    #[error("tls_cert_file and tls_key_file go together: set both or neither")]
    Incomplete,
    #[error("tls_client_ca_file needs tls_cert_file and tls_key_file: client certificates are checked only over tls")]
    ClientCaWithoutTls,
    #[error("tls file {path} cannot be read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tls file {path} is larger than {PEM_FILE_BYTES_MAX} bytes")]
    TooLarge { path: PathBuf },
    #[error("tls file {path} holds no PEM {expected}")]
    NoPem {
        path: PathBuf,
        expected: &'static str,
    },
}

impl TlsFiles {
    /// Reads the files named by the settings; `None` when no TLS is configured (all empty).
    pub fn load(
        cert_file: &str,
        key_file: &str,
        client_ca_file: &str,
    ) -> Result<Option<TlsFiles>, TlsFilesError> {
        let (cert_file, key_file, client_ca_file) =
            (cert_file.trim(), key_file.trim(), client_ca_file.trim());
        match (cert_file.is_empty(), key_file.is_empty()) {
            (true, true) if client_ca_file.is_empty() => return Ok(None),
            (true, true) => return Err(TlsFilesError::ClientCaWithoutTls),
            (false, false) => {}
            _ => return Err(TlsFilesError::Incomplete),
        }
        let cert_file = PathBuf::from(cert_file);
        let key_file = PathBuf::from(key_file);
        let cert_pem = read_pem(&cert_file, "CERTIFICATE", |label| label == "CERTIFICATE")?;
        let key_pem = read_pem(&key_file, "PRIVATE KEY", |label| {
            label.ends_with("PRIVATE KEY")
        })?;
        let (client_ca_file, client_ca_pem) = if client_ca_file.is_empty() {
            (None, None)
        } else {
            let path = PathBuf::from(client_ca_file);
            let pem = read_pem(&path, "CERTIFICATE", |label| label == "CERTIFICATE")?;
            (Some(path), Some(pem))
        };
        Ok(Some(TlsFiles {
            cert_file,
            key_file,
            client_ca_file,
            cert_pem,
            key_pem,
            client_ca_pem,
        }))
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    /// tonic's server configuration: the server's identity, and, with a client CA, client
    /// certificates required (never optional: a caller without one fails the handshake).
    pub fn server_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .timeout(Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS));
        match &self.client_ca_pem {
            Some(client_ca_pem) => config
                .client_ca_root(Certificate::from_pem(client_ca_pem))
                .client_auth_optional(false),
            None => config,
        }
    }
}

/// Reads a PEM file of at most [`PEM_FILE_BYTES_MAX`] bytes holding at least one block whose
/// label `accepts`.
fn read_pem(
    path: &Path,
    expected: &'static str,
    accepts: impl Fn(&str) -> bool,
) -> Result<Vec<u8>, TlsFilesError> {
    let read = |source| TlsFilesError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::metadata(path).map_err(read)?.len();
    if bytes > PEM_FILE_BYTES_MAX {
        return Err(TlsFilesError::TooLarge {
            path: path.to_owned(),
        });
    }
    let pem = std::fs::read(path).map_err(read)?;
    let found = Pem::iter_from_buffer(&pem)
        .map_while(Result::ok)
        .any(|block| accepts(&block.label));
    if !found {
        return Err(TlsFilesError::NoPem {
            path: path.to_owned(),
            expected,
        });
    }
    Ok(pem)
}

/// The tonic server builder with every per-connection limit, and TLS when configured.
pub fn server_builder(tls: Option<&TlsFiles>) -> Result<Server, tonic::transport::Error> {
    let builder = Server::builder()
        .concurrency_limit_per_connection(CONCURRENT_REQUESTS_PER_CONNECTION_MAX)
        .max_concurrent_streams(HTTP2_STREAMS_PER_CONNECTION_MAX)
        .http2_max_header_list_size(HTTP2_HEADER_LIST_BYTES_MAX);
    match tls {
        Some(tls) => builder.tls_config(tls.server_config()),
        None => Ok(builder),
    }
}

/// Why a client certificate names no principal. The messages say what is wrong with the
/// certificate, never what it holds beyond the ledger's own URI.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificatePrincipalError {
    #[error("the client certificate cannot be parsed")]
    Unparsable,
    #[error(
        "the client certificate has no subject alternative name {PRINCIPAL_URI_PREFIX}<principal>"
    )]
    NoPrincipalUri,
    #[error("the client certificate names more than one principal")]
    SeveralPrincipalUris,
    #[error("the client certificate's {PRINCIPAL_URI_PREFIX} uri names no principal: administration, operator, auditor or provider:<id>")]
    UnknownPrincipal,
}

/// The principal named by a DER client certificate (the leaf of the chain the TLS layer has
/// already verified against the client CA), by the convention of this module's documentation.
pub fn principal_from_certificate(der: &[u8]) -> Result<Principal, CertificatePrincipalError> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| CertificatePrincipalError::Unparsable)?;
    let names = certificate
        .subject_alternative_name()
        .map_err(|_| CertificatePrincipalError::Unparsable)?
        .ok_or(CertificatePrincipalError::NoPrincipalUri)?;
    let mut principal_uris = names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix(PRINCIPAL_URI_PREFIX),
            _ => None,
        });
    let principal = principal_uris
        .next()
        .ok_or(CertificatePrincipalError::NoPrincipalUri)?;
    if principal_uris.next().is_some() {
        return Err(CertificatePrincipalError::SeveralPrincipalUris);
    }
    Principal::parse(principal).ok_or(CertificatePrincipalError::UnknownPrincipal)
}

/// Where the server may listen: loopback always; another address only over TLS, and never with
/// the demo configuration, whose tokens and pseudonym key are public.
pub fn check_listen(
    listen: std::net::SocketAddr,
    tls: bool,
    demo: bool,
) -> Result<(), ListenRefused> {
    if listen.ip().is_loopback() {
        return Ok(());
    }
    if demo {
        return Err(ListenRefused::Demo(listen));
    }
    if !tls {
        return Err(ListenRefused::WithoutTls(listen));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ListenRefused {
    #[error("listen address {0} is not loopback and tls is not configured; set tls_cert_file and tls_key_file (and tls_client_ca_file for mutual tls), or listen on 127.0.0.1 or [::1]")]
    WithoutTls(std::net::SocketAddr),
    #[error("listen address {0} is not loopback; the demo configuration serves only 127.0.0.1 or [::1], its tokens and pseudonym key being public")]
    Demo(std::net::SocketAddr),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, SanType};

    fn certificate_with(names: &[SanType]) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = names.to_vec();
        let key = KeyPair::generate().expect("rcgen makes a key pair");
        let certificate = params.self_signed(&key).expect("rcgen signs");
        certificate.der().to_vec()
    }

    fn uri(text: &str) -> SanType {
        SanType::URI(text.try_into().expect("an ia5 string"))
    }

    #[test]
    fn each_role_from_its_uri() {
        let cases = [
            ("voucherledger:administration", Principal::Administration),
            ("voucherledger:operator", Principal::Operator),
            ("voucherledger:auditor", Principal::Auditor),
            (
                "voucherledger:provider:AG-0012",
                Principal::parse("provider:AG-0012").expect("a provider principal"),
            ),
        ];
        for (text, principal) in cases {
            let der = certificate_with(&[
                SanType::DnsName("client.example".try_into().expect("ia5")),
                uri("https://example.org/not-ours"),
                uri(text),
            ]);
            assert_eq!(principal_from_certificate(&der), Ok(principal), "{text}");
        }
    }

    #[test]
    fn no_second_guessing() {
        let refused = [
            (vec![], CertificatePrincipalError::NoPrincipalUri),
            (
                vec![SanType::DnsName("operator".try_into().expect("ia5"))],
                CertificatePrincipalError::NoPrincipalUri,
            ),
            (
                vec![uri("urn:voucherledger:operator")],
                CertificatePrincipalError::NoPrincipalUri,
            ),
            (
                vec![uri("voucherledger:operator"), uri("voucherledger:auditor")],
                CertificatePrincipalError::SeveralPrincipalUris,
            ),
            (
                vec![uri("voucherledger:Operator")],
                CertificatePrincipalError::UnknownPrincipal,
            ),
            (
                vec![uri("voucherledger:provider:")],
                CertificatePrincipalError::UnknownPrincipal,
            ),
            (
                vec![uri("voucherledger:provider:AG 0012")],
                CertificatePrincipalError::UnknownPrincipal,
            ),
            (
                vec![uri("voucherledger:root")],
                CertificatePrincipalError::UnknownPrincipal,
            ),
        ];
        for (names, error) in refused {
            let der = certificate_with(&names);
            assert_eq!(principal_from_certificate(&der), Err(error), "{names:?}");
        }
        assert_eq!(
            principal_from_certificate(b"not a certificate"),
            Err(CertificatePrincipalError::Unparsable)
        );
    }

    #[test]
    fn beyond_loopback_only_over_tls_and_never_the_demo() {
        let loopback: std::net::SocketAddr = "127.0.0.1:50051".parse().expect("an address");
        let loopback_v6: std::net::SocketAddr = "[::1]:50051".parse().expect("an address");
        let anywhere: std::net::SocketAddr = "0.0.0.0:50051".parse().expect("an address");
        let lan: std::net::SocketAddr = "192.0.2.7:50051".parse().expect("an address");
        for (tls, demo) in [(false, false), (true, false), (false, true), (true, true)] {
            assert!(check_listen(loopback, tls, demo).is_ok());
            assert!(check_listen(loopback_v6, tls, demo).is_ok());
        }
        assert!(matches!(
            check_listen(anywhere, false, false),
            Err(ListenRefused::WithoutTls(_))
        ));
        assert!(check_listen(anywhere, true, false).is_ok());
        assert!(check_listen(lan, true, false).is_ok());
        assert!(matches!(
            check_listen(lan, true, true),
            Err(ListenRefused::Demo(_))
        ));
    }

    #[test]
    fn tls_files_go_together() {
        assert!(matches!(TlsFiles::load("", "", ""), Ok(None)));
        assert!(matches!(
            TlsFiles::load("cert.pem", "", ""),
            Err(TlsFilesError::Incomplete)
        ));
        assert!(matches!(
            TlsFiles::load("", "", "ca.pem"),
            Err(TlsFilesError::ClientCaWithoutTls)
        ));
        let folder = tempfile::tempdir().expect("a temporary folder");
        let not_pem = folder.path().join("cert.pem");
        std::fs::write(&not_pem, "hello").expect("written");
        let path = not_pem.to_string_lossy().into_owned();
        assert!(matches!(
            TlsFiles::load(&path, &path, ""),
            Err(TlsFilesError::NoPem { .. })
        ));
        assert!(matches!(
            TlsFiles::load(&path, "/nonexistent/key.pem", ""),
            Err(TlsFilesError::NoPem { .. } | TlsFilesError::Read { .. })
        ));
    }
}
