//! TLS and mutual TLS for `voucherctl`: `--ca` names the CA that signed the server's
//! certificate, `--cert` and `--key` the caller's client certificate and its key (a server in
//! `auth_mode = "mtls"` reads the caller's principal from that certificate's SAN URI
//! `voucherledger:<principal>`). They go with an `https://` server URL; an `http://` URL is
//! plain HTTP/2, which the server accepts only on loopback.
//!
//! Nothing here touches the network: [`configure`] reads the files and returns the endpoint to
//! connect to, or says what is wrong with the command line.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Largest certificate or key file read, in bytes: a PEM chain of a few certificates is a few
/// KiB.
const PEM_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// The TLS options of the command line.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Why the TLS options cannot be used; a bad command line (exit status 2).
#[derive(Debug)]
pub enum TlsSetupError {
    PlainHttp,
    NoCa,
    Incomplete,
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    TooLarge {
        path: PathBuf,
    },
    NotPem {
        path: PathBuf,
        expected: &'static str,
    },
    Tonic(tonic::transport::Error),
}

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsSetupError::PlainHttp => f.write_str(
                "--ca, --cert and --key need an https:// server url (the server speaks tls)",
            ),
            TlsSetupError::NoCa => f.write_str(
                "an https:// server needs --ca FILE, the certificate of the ca that signed the server's certificate",
            ),
            TlsSetupError::Incomplete => f.write_str(
                "--cert and --key go together: the client certificate and its private key",
            ),
            TlsSetupError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            TlsSetupError::TooLarge { path } => write!(
                f,
                "{} is larger than {PEM_FILE_BYTES_MAX} bytes",
                path.display()
            ),
            TlsSetupError::NotPem { path, expected } => write!(
                f,
                "{} is not PEM: expected a -----BEGIN {expected}----- block",
                path.display()
            ),
            TlsSetupError::Tonic(error) => write!(f, "tls cannot be configured: {error}"),
        }
    }
}

impl std::error::Error for TlsSetupError {}

/// The endpoint to connect to: `server` as it is for `http://`, with TLS (and a client
/// certificate, when given) for `https://`.
pub fn configure(server: &Endpoint, options: &TlsOptions) -> Result<Endpoint, TlsSetupError> {
    let https = server.uri().scheme_str() == Some("https");
    let any_option = options.ca.is_some() || options.cert.is_some() || options.key.is_some();
    if !https {
        return if any_option {
            Err(TlsSetupError::PlainHttp)
        } else {
            Ok(server.clone())
        };
    }
    let ca = options.ca.as_deref().ok_or(TlsSetupError::NoCa)?;
    let mut config =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read_pem(ca, "CERTIFICATE")?));
    match (&options.cert, &options.key) {
        (Some(cert), Some(key)) => {
            config = config.identity(Identity::from_pem(
                read_pem(cert, "CERTIFICATE")?,
                read_pem(key, "PRIVATE KEY")?,
            ));
        }
        (None, None) => {}
        _ => return Err(TlsSetupError::Incomplete),
    }
    server
        .clone()
        .tls_config(config)
        .map_err(TlsSetupError::Tonic)
}

/// Reads a PEM file with at least one block whose label ends with `expected`.
fn read_pem(path: &Path, expected: &'static str) -> Result<Vec<u8>, TlsSetupError> {
    let read = |source| TlsSetupError::Read {
        path: path.to_owned(),
        source,
    };
    if std::fs::metadata(path).map_err(read)?.len() > PEM_FILE_BYTES_MAX {
        return Err(TlsSetupError::TooLarge {
            path: path.to_owned(),
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let text = String::from_utf8_lossy(&bytes);
    let found = text.lines().any(|line| {
        line.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .is_some_and(|label| label.ends_with(expected))
    });
    if !found {
        return Err(TlsSetupError::NotPem {
            path: path.to_owned(),
            expected,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::from_shared(url.to_owned()).expect("a valid url")
    }

    /// A self-signed certificate and its key, PEM.
    fn certificate_and_key() -> (String, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("rcgen makes a certificate");
        (certified.cert.pem(), certified.signing_key.serialize_pem())
    }

    #[test]
    fn plain_http_takes_no_tls_option() {
        let http = endpoint("http://127.0.0.1:50051");
        assert!(configure(&http, &TlsOptions::default()).is_ok());
        let with_ca = TlsOptions {
            ca: Some("ca.pem".into()),
            ..TlsOptions::default()
        };
        assert!(matches!(
            configure(&http, &with_ca),
            Err(TlsSetupError::PlainHttp)
        ));
    }

    #[test]
    fn https_needs_a_ca_and_a_whole_identity() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let ca = folder.path().join("ca.pem");
        let cert = folder.path().join("client.pem");
        let key = folder.path().join("client.key");
        let (certificate, private_key) = certificate_and_key();
        std::fs::write(&ca, &certificate).expect("written");
        std::fs::write(&cert, &certificate).expect("written");
        std::fs::write(&key, &private_key).expect("written");
        let https = endpoint("https://ledger.example:50051");
        assert!(matches!(
            configure(&https, &TlsOptions::default()),
            Err(TlsSetupError::NoCa)
        ));
        let only_cert = TlsOptions {
            ca: Some(ca.clone()),
            cert: Some(cert.clone()),
            key: None,
        };
        assert!(matches!(
            configure(&https, &only_cert),
            Err(TlsSetupError::Incomplete)
        ));
        let server_only = TlsOptions {
            ca: Some(ca.clone()),
            ..TlsOptions::default()
        };
        assert!(configure(&https, &server_only).is_ok());
        let mutual = TlsOptions {
            ca: Some(ca.clone()),
            cert: Some(cert.clone()),
            key: Some(key.clone()),
        };
        assert!(configure(&https, &mutual).is_ok());
        let swapped = TlsOptions {
            ca: Some(ca),
            cert: Some(key),
            key: Some(cert),
        };
        assert!(matches!(
            configure(&https, &swapped),
            Err(TlsSetupError::NotPem { .. })
        ));
        let missing = TlsOptions {
            ca: Some(folder.path().join("nothing.pem")),
            ..TlsOptions::default()
        };
        assert!(matches!(
            configure(&https, &missing),
            Err(TlsSetupError::Read { .. })
        ));
    }
}
