//! Authentication, and the role each read needs. [`Ledger::authenticate`] is the one place a
//! request's principal is found: from a bearer token (known only by its SHA-256 digest) or,
//! with `auth_mode = "mtls"`, from the client certificate the TLS layer verified (see
//! [`crate::transport`] for the SAN URI convention). Writes are authorized by the domain's
//! `authorize`, reads here.

use std::collections::HashMap;
use std::sync::Arc;

use ledger_domain::{EnterpriseNumber, Identifier, Principal};
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::CertificateDer;
use tonic::{Request, Status};

use crate::edge::Authenticated;
use crate::status::{server_status, ServerReason};

/// Longest `authorization` header value accepted, in bytes.
const AUTHORIZATION_BYTES_MAX: usize = 512;

#[derive(Clone, Debug, Default)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], Principal>,
}

impl Tokens {
    pub fn new(entries: &[([u8; 32], Principal)]) -> Tokens {
        Tokens {
            by_digest: entries.iter().cloned().collect(),
        }
    }

    /// The principal behind the request's bearer token, or UNAUTHENTICATED.
    ///
    /// Strict on purpose: exactly one `authorization` header, whose value is `Bearer`, one
    /// space and the token, with no other space or control character anywhere. Two headers
    /// could be read differently by a proxy in front and by us; a value we would have to
    /// trim is a client bug to surface, not to guess around.
    pub fn principal(&self, metadata: &MetadataMap) -> Result<Principal, Status> {
        let unauthenticated =
            |message: &str| server_status(ServerReason::Unauthenticated, message.to_owned());
        let mut headers = metadata.get_all("authorization").iter();
        let header = headers
            .next()
            .ok_or_else(|| unauthenticated("missing bearer token"))?;
        if headers.next().is_some() {
            return Err(unauthenticated("more than one authorization header"));
        }
        if header.len() > AUTHORIZATION_BYTES_MAX {
            return Err(unauthenticated("authorization header too long"));
        }
        let header = header
            .to_str()
            .map_err(|_| unauthenticated("authorization header is not text"))?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| unauthenticated("authorization is not `Bearer <token>`"))?;
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(unauthenticated(
                "authorization is not `Bearer <token>`: the token is empty or holds a space",
            ));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_digest
            .get(&digest)
            .cloned()
            .ok_or_else(|| unauthenticated("unknown bearer token"))
    }
}

/// Where principals come from, as configured by `auth_mode`.
#[derive(Clone, Debug)]
pub enum Authentication {
    /// `authorization: Bearer <token>`, looked up by digest.
    Tokens(Tokens),
    /// The verified client certificate of the TLS connection names the principal. Bearer
    /// tokens are not read: a stolen token is worth nothing without the certificate's key.
    ClientCertificates,
}

impl Authentication {
    pub fn from_settings(settings: &crate::settings::Settings) -> Authentication {
        match settings.auth_mode {
            crate::settings::AuthMode::Token => {
                Authentication::Tokens(Tokens::new(&settings.tokens))
            }
            crate::settings::AuthMode::Mtls => Authentication::ClientCertificates,
        }
    }
}

/// The certificates a mutual-TLS caller presented, as rustls verified them during the
/// handshake (the leaf first).
type PeerCertificates = Option<Arc<Vec<CertificateDer<'static>>>>;

/// The principal of a mutual-TLS caller: the leaf of the chain that rustls verified against
/// the client CA during the handshake.
fn certificate_principal(peer_certificates: PeerCertificates) -> Result<Principal, Status> {
    let unauthenticated = |message: String| server_status(ServerReason::Unauthenticated, message);
    let chain =
        peer_certificates.ok_or_else(|| unauthenticated("no client certificate".to_owned()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| unauthenticated("no client certificate".to_owned()))?;
    crate::transport::principal_from_certificate(leaf).map_err(|error| {
        tracing::info!(%error, "client certificate refused");
        unauthenticated(error.to_string())
    })
}

impl crate::services::Ledger {
    /// Who is calling: the one place every RPC learns its principal. Behind the edge
    /// ([`crate::edge`]) the principal was found before the body was read, and is taken from
    /// the request's extensions.
    pub(crate) fn authenticate<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        if let Some(Authenticated(principal)) = request.extensions().get::<Authenticated>() {
            return Ok(principal.clone());
        }
        self.principal_of(request.metadata(), request.peer_certs())
    }

    /// [`Self::authenticate`] on the HTTP request, before tonic reads its body.
    pub(crate) fn authenticate_http<B>(
        &self,
        request: &tonic::codegen::http::Request<B>,
    ) -> Result<Principal, Status> {
        match &self.inner.authentication {
            Authentication::Tokens(tokens) => {
                tokens.principal(&MetadataMap::from_headers(request.headers().clone()))
            }
            Authentication::ClientCertificates => certificate_principal(
                request
                    .extensions()
                    .get::<TlsConnectInfo<TcpConnectInfo>>()
                    .and_then(TlsConnectInfo::peer_certs),
            ),
        }
    }

    fn principal_of(
        &self,
        metadata: &MetadataMap,
        peer_certificates: PeerCertificates,
    ) -> Result<Principal, Status> {
        match &self.inner.authentication {
            Authentication::Tokens(tokens) => tokens.principal(metadata),
            Authentication::ClientCertificates => certificate_principal(peer_certificates),
        }
    }
}

/// What a read is about, to decide who may make it.
#[derive(Clone, Debug)]
pub enum Read<'a> {
    Wallet,
    Statement {
        provider_id: &'a Identifier,
    },
    Report,
    Events,
    Head,
    /// The providers and modules approved: public facts of the scheme, for every role.
    Catalogue,
    /// A provider's redemptions and reversals: the provider itself, the operator who pays
    /// them, the auditors.
    Redemptions {
        provider_id: &'a Identifier,
    },
    /// A company's own data: its wallet, its usage codes.
    Company {
        enterprise_number: &'a EnterpriseNumber,
    },
    /// One usage code: its company's, its provider's.
    UsageCode {
        enterprise_number: &'a EnterpriseNumber,
        provider_id: &'a Identifier,
    },
}

pub fn may_read(principal: &Principal, read: &Read<'_>) -> Result<(), Status> {
    use Principal::{Administration, Auditor, Company, Operator, Provider};
    let allowed = match read {
        Read::Wallet | Read::Report | Read::Head => {
            matches!(principal, Administration | Operator | Auditor)
        }
        Read::Statement { provider_id } => match principal {
            Provider(acting) => acting == *provider_id,
            Administration | Operator | Auditor => true,
            Company(_) => false,
        },
        Read::Events => matches!(principal, Auditor),
        Read::Catalogue => true,
        Read::Redemptions { provider_id } => match principal {
            Provider(acting) => acting == *provider_id,
            Operator | Auditor => true,
            // A company reads its trainings through its usage codes, not a provider's list.
            Administration | Company(_) => false,
        },
        Read::Company { enterprise_number } => match principal {
            Company(acting) => acting == *enterprise_number,
            Administration | Operator | Auditor => true,
            Provider(_) => false,
        },
        Read::UsageCode {
            enterprise_number,
            provider_id,
        } => match principal {
            Company(acting) => acting == *enterprise_number,
            Provider(acting) => acting == *provider_id,
            Administration | Operator | Auditor => true,
        },
    };
    if allowed {
        return Ok(());
    }
    Err(server_status(
        ServerReason::PermissionDenied,
        format!("principal {principal} may not read this"),
    ))
}

/// The roles that may call a write RPC at all, checked before its input is parsed so that a
/// caller without the role learns nothing from validation errors.
pub fn may_call(principal: &Principal, allowed: &[Role]) -> Result<(), Status> {
    let role = match principal {
        Principal::Administration => Role::Administration,
        Principal::Operator => Role::Operator,
        Principal::Provider(_) => Role::Provider,
        Principal::Auditor => Role::Auditor,
        Principal::Company(_) => Role::Company,
    };
    if allowed.contains(&role) {
        return Ok(());
    }
    Err(server_status(
        ServerReason::PermissionDenied,
        format!("principal {principal} may not call this"),
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Administration,
    Operator,
    Provider,
    Auditor,
    Company,
}
