//! Security tests against the real `voucher-ledger` binary.
//!
//! - Mutual TLS: a caller without a client certificate, or with one from another CA, never
//!   gets a gRPC answer; a certificate's SAN URI is its principal, and that principal is held to
//!   its role (a provider redeems only as itself, an auditor reads and never writes).
//! - Personal data: national register numbers sent through the API are nowhere in the data
//!   folder, stdout or the debug log afterwards, in plain text or in common encodings.
//! - Unsafe starts are refused: plain HTTP beyond loopback, the demo beyond loopback, mutual TLS
//!   without a client CA, no pseudonym key outside the demo.
//!
//! Certificates are made by each run with rcgen; no key material is committed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ledger_proto::event::v1::{LegalForm, Region, Theme, TraineeStatus, VoucherType};
use ledger_proto::v1 as api;
use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::audit_service_client::AuditServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use ledger_proto::v1::provider_service_client::ProviderServiceClient;
use ledger_proto::v1::report_service_client::ReportServiceClient;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tempfile::TempDir;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// A pseudonym key for the tests' own servers (hex of 32 bytes), passed in the environment as
/// an operator would; it is not the demo's.
const TEST_PSEUDONYM_KEY_HEX: &str =
    "5e3c0a7d1f2b4c6e8a9b0c1d2e3f405162738495a6b7c8d9eaf0b1c2d3e4f5a6";

use ledger_testkit::{workspace_root, Process};

// ---------------------------------------------------------------------------------------------
// Certificates

/// A certificate authority made for one test run.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM.
struct Credential {
    cert_pem: String,
    key_pem: String,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("rcgen makes a key pair");
        Authority {
            issuer: CertifiedIssuer::self_signed(params, key).expect("rcgen signs the ca"),
        }
    }

    fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    fn issue(
        &self,
        common_name: &str,
        names: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
    ) -> Credential {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = names;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("rcgen makes a key pair");
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("rcgen signs the certificate");
        Credential {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The server's certificate, for `localhost` and 127.0.0.1.
    fn server(&self) -> Credential {
        self.issue(
            "voucher-ledger test server",
            vec![
                SanType::DnsName("localhost".try_into().expect("ia5")),
                SanType::IpAddress([127, 0, 0, 1].into()),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate naming `principal` by the convention `voucherledger:<principal>`.
    fn client(&self, principal: &str) -> Credential {
        self.issue(
            &format!("test client {principal}"),
            vec![SanType::URI(
                format!("voucherledger:{principal}")
                    .try_into()
                    .expect("ia5"),
            )],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The server process

/// A running `voucher-ledger serve`, its stdout and stderr captured in files of its home.
struct Server {
    // Declared before `home`: the process is killed before its folder is removed.
    process: Process,
    address: SocketAddr,
    home: TempDir,
}

/// How a start ended when the server did not come up.
#[derive(Debug)]
struct StartFailure {
    exit_code: Option<i32>,
    stderr: String,
}

/// The server's stderr in its home; its stdout goes beside it, as `server.stdout`.
const SERVER_LOG: &str = "server.log";

impl Server {
    /// Starts `voucher-ledger serve ARGS --listen 127.0.0.1:0 --data HOME/data` with only the
    /// given `VOUCHER_LEDGER*` variables (and the policy file of the workspace).
    fn start(home: TempDir, args: &[&str], env: &[(&str, &str)]) -> Result<Server, StartFailure> {
        Server::start_listening(home, args, env, "127.0.0.1:0")
    }

    /// `serve --demo` on a fresh folder: the start of every test that only needs a ledger.
    fn start_demo() -> Server {
        let home = tempfile::tempdir().expect("a temporary folder");
        Server::start(home, &["--demo"], &[])
            .unwrap_or_else(|failure| panic!("the demo server starts: {failure:?}"))
    }

    /// A plain-text connection to the server.
    async fn connect(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .expect("a valid uri")
            .connect()
            .await
            .expect("the server accepts a connection")
    }

    fn start_listening(
        home: TempDir,
        args: &[&str],
        env: &[(&str, &str)],
        listen: &str,
    ) -> Result<Server, StartFailure> {
        let mut command = ledger_testkit::command(env!("CARGO_BIN_EXE_voucher-ledger"), &["serve"]);
        command
            .args(args)
            .args(["--listen", listen])
            .arg("--data")
            .arg(home.path().join("data"))
            .current_dir(home.path())
            .envs(env.iter().copied());
        match Process::spawn(&mut command, &home.path().join(SERVER_LOG)) {
            Ok(process) => Ok(Server {
                address: process
                    .address()
                    .parse()
                    .expect("the printed address parses"),
                process,
                home,
            }),
            Err(failure) => Err(StartFailure {
                exit_code: failure.status.and_then(|status| status.code()),
                stderr: failure.stderr,
            }),
        }
    }

    /// Stops the server with SIGTERM, as an operator would, and waits for it to exit 0. Async,
    /// so that the test's own connections keep being served while the server closes them.
    async fn stop(self) -> TempDir {
        let Server { process, home, .. } = self;
        process.stop().await;
        home
    }

    fn stderr(&self) -> String {
        self.process.log()
    }
}

/// A folder with the TLS material of one mutual-TLS server, and a started server on it.
struct MtlsLedger {
    server: Server,
    authority: Authority,
    ca_pem: String,
}

impl MtlsLedger {
    fn start() -> MtlsLedger {
        let home = tempfile::Builder::new()
            .prefix("voucher-ledger-security-")
            .tempdir()
            .expect("a temporary folder");
        let authority = Authority::new("voucher-ledger test ca");
        let server_credential = authority.server();
        let tls = home.path().join("tls");
        std::fs::create_dir(&tls).expect("the tls folder can be made");
        std::fs::write(tls.join("ca.pem"), authority.cert_pem()).expect("written");
        std::fs::write(tls.join("server.pem"), &server_credential.cert_pem).expect("written");
        std::fs::write(tls.join("server.key"), &server_credential.key_pem).expect("written");
        let config = home.path().join("voucher-ledger.toml");
        std::fs::write(
            &config,
            format!(
                "auth_mode = \"mtls\"\n\
                 tls_cert_file = {:?}\n\
                 tls_key_file = {:?}\n\
                 tls_client_ca_file = {:?}\n",
                tls.join("server.pem"),
                tls.join("server.key"),
                tls.join("ca.pem"),
            ),
        )
        .expect("the configuration can be written");
        let config = config.to_string_lossy().into_owned();
        let server = Server::start(
            home,
            &["--config", &config],
            &[("VOUCHER_LEDGER__PSEUDONYM_KEY_HEX", TEST_PSEUDONYM_KEY_HEX)],
        )
        .unwrap_or_else(|failure| panic!("the mutual-tls server starts: {failure:?}"));
        let ca_pem = authority.cert_pem();
        MtlsLedger {
            server,
            authority,
            ca_pem,
        }
    }

    /// A connection that trusts the test CA and presents `credential`, if any.
    async fn connect(&self, credential: Option<&Credential>) -> Result<Channel, String> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name("localhost");
        if let Some(credential) = credential {
            tls = tls.identity(Identity::from_pem(
                &credential.cert_pem,
                &credential.key_pem,
            ));
        }
        Channel::from_shared(format!("https://{}", self.server.address))
            .expect("a valid uri")
            .tls_config(tls)
            .map_err(|error| format!("tls config: {error}"))?
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .map_err(|error| format!("connect: {error:?}"))
    }

    async fn connect_as(&self, principal: &str) -> Channel {
        let credential = self.authority.client(principal);
        self.connect(Some(&credential))
            .await
            .unwrap_or_else(|error| panic!("{principal} connects: {error}"))
    }
}

/// Whether a status came from the ledger's own handlers (they all carry an `ErrorInfo` of the
/// API's domain) rather than from the transport.
fn from_the_ledger(status: &Status) -> bool {
    status
        .get_details_error_info()
        .is_some_and(|info| info.domain == "voucherledger.v1")
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// What a caller gets from GetHead over a connection it tried to open: the head, or why not.
async fn try_get_head(channel: Result<Channel, String>) -> Result<api::Head, String> {
    let channel = channel?;
    AuditServiceClient::new(channel)
        .get_head(api::GetHeadRequest {})
        .await
        .map(|response| response.into_inner())
        .map_err(|status| {
            assert!(
                !from_the_ledger(&status),
                "a caller that did not finish the handshake reached the ledger: {status:?}"
            );
            assert!(
                matches!(
                    status.code(),
                    Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
                ),
                "a transport failure, not {status:?}"
            );
            format!("{status:?}")
        })
}

// ---------------------------------------------------------------------------------------------
// Requests

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii metadata"),
        );
    }
    request
}

const PROVIDER: &str = "AG-0012";
const OTHER_PROVIDER: &str = "AG-0099";
const MODULE: &str = "AG-0012-AI-01";
const COMPANY: &str = "0403019261";

fn redeem(provider_id: &str, national_number: &str, hours: &str) -> api::RedeemHoursRequest {
    api::RedeemHoursRequest {
        request_id: request_id(),
        provider_id: provider_id.to_owned(),
        module_id: MODULE.to_owned(),
        enterprise_number: COMPANY.to_owned(),
        national_number: national_number.to_owned(),
        trainee_status: TraineeStatus::Employee as i32,
        voucher_type: VoucherType::General as i32,
        hours: hours.to_owned(),
        training_date: "2025-06-02".to_owned(),
        usage_code: String::new(),
    }
}

/// The budget, a provider with a module, a registered company with 100 general vouchers: what a
/// redemption needs. Each caller is a channel and the bearer token it sends, if any.
async fn set_up_year(administration: (Channel, Option<&str>), operator: (Channel, Option<&str>)) {
    let mut admin = AdministrationServiceClient::new(administration.0);
    let token = administration.1;
    admin
        .open_budget(with_token(
            api::OpenBudgetRequest {
                request_id: request_id(),
                year: 2025,
                allocated_eur: "7657000.00".to_owned(),
            },
            token,
        ))
        .await
        .expect("the administration opens the budget");
    for provider_id in [PROVIDER, OTHER_PROVIDER] {
        admin
            .approve_provider(with_token(
                api::ApproveProviderRequest {
                    request_id: request_id(),
                    provider_id: provider_id.to_owned(),
                    name: format!("Formations {provider_id}"),
                    approved_from: "2025-01-01".to_owned(),
                    approved_until: String::new(),
                },
                token,
            ))
            .await
            .expect("the administration approves the provider");
    }
    admin
        .approve_module(with_token(
            api::ApproveModuleRequest {
                request_id: request_id(),
                module_id: MODULE.to_owned(),
                provider_id: PROVIDER.to_owned(),
                title: "AI for small businesses".to_owned(),
                hours_max: 40,
                accepted_voucher_types: vec![VoucherType::General as i32],
                themes: vec![Theme::Ai as i32],
                approved_from: "2025-01-01".to_owned(),
                approved_until: String::new(),
            },
            token,
        ))
        .await
        .expect("the administration approves the module");
    let mut operator_client = OperatorServiceClient::new(operator.0);
    let token = operator.1;
    operator_client
        .register_company(with_token(
            api::RegisterCompanyRequest {
                request_id: request_id(),
                enterprise_number: "0403.019.261".to_owned(),
                year: 2025,
                name: "Meuse Numérique SRL".to_owned(),
                legal_form: LegalForm::CommercialCompany as i32,
                region: Region::WalloniaFrenchSpeaking as i32,
                fte: "12".to_owned(),
                turnover_eur: "1000000.00".to_owned(),
                balance_sheet_total_eur: "500000.00".to_owned(),
                autonomous: true,
                secondary_activity_months: 0,
                nace_sector: "62.01".to_owned(),
                registered_on: "2025-01-05".to_owned(),
            },
            token,
        ))
        .await
        .expect("the operator registers the company");
    operator_client
        .issue_vouchers(with_token(
            api::IssueVouchersRequest {
                request_id: request_id(),
                enterprise_number: COMPANY.to_owned(),
                voucher_type: VoucherType::General as i32,
                quantity: 100,
                paid_amount_eur: "1500.00".to_owned(),
                payment_date: "2025-03-10".to_owned(),
                payment_reference: "VIR-2025-0001".to_owned(),
            },
            token,
        ))
        .await
        .expect("the operator issues vouchers");
}

// ---------------------------------------------------------------------------------------------
// Mutual TLS

#[tokio::test]
async fn mtls_without_a_client_certificate_fails_at_the_transport() {
    let ledger = MtlsLedger::start();
    let outcome = try_get_head(ledger.connect(None).await).await;
    assert!(
        outcome.is_err(),
        "a caller without a certificate was answered: {outcome:?}"
    );
    // A caller with a certificate still gets through, so the failure above was the missing one.
    let auditor = ledger.connect_as("auditor").await;
    try_get_head(Ok(auditor))
        .await
        .expect("an auditor's certificate is accepted");
    ledger.server.stop().await;
}

#[tokio::test]
async fn mtls_with_a_certificate_of_another_ca_fails_at_the_transport() {
    let ledger = MtlsLedger::start();
    let stranger = Authority::new("some other ca");
    // The same SAN URI as a real operator: only the signature differs.
    let credential = stranger.client("operator");
    let outcome = try_get_head(ledger.connect(Some(&credential)).await).await;
    assert!(
        outcome.is_err(),
        "a certificate of another ca was answered: {outcome:?}"
    );
    ledger.server.stop().await;
}

#[tokio::test]
async fn plain_http_to_a_tls_server_gets_no_answer() {
    let ledger = MtlsLedger::start();
    let channel = Channel::from_shared(format!("http://{}", ledger.server.address))
        .expect("a valid uri")
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|error| format!("{error:?}"));
    let outcome = try_get_head(channel).await;
    assert!(outcome.is_err(), "plain http was answered: {outcome:?}");
    ledger.server.stop().await;
}

#[tokio::test]
async fn the_certificate_names_the_principal_and_its_role_holds() {
    let ledger = MtlsLedger::start();
    let administration = ledger.connect_as("administration").await;
    let operator = ledger.connect_as("operator").await;
    set_up_year((administration, None), (operator, None)).await;

    // Provider AG-0012 redeems as itself, then tries to redeem as AG-0099.
    let mut provider = ProviderServiceClient::new(ledger.connect_as("provider:AG-0012").await);
    provider
        .redeem_hours(redeem(PROVIDER, "85.07.30-033.28", "3"))
        .await
        .expect("a provider redeems as itself");
    let refused = provider
        .redeem_hours(redeem(OTHER_PROVIDER, "85.07.30-033.28", "3"))
        .await
        .expect_err("a provider may not redeem as another");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(reason(&refused), "PERMISSION_DENIED");

    // AG-0099's own certificate may not act as AG-0012 either, nor read its statement.
    let channel = ledger.connect_as("provider:AG-0099").await;
    let refused = ProviderServiceClient::new(channel.clone())
        .redeem_hours(redeem(PROVIDER, "85.07.30-033.28", "1"))
        .await
        .expect_err("AG-0099 may not redeem as AG-0012");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = ProviderServiceClient::new(channel)
        .get_statement(api::GetStatementRequest {
            provider_id: PROVIDER.to_owned(),
            as_of: None,
        })
        .await
        .expect_err("AG-0099 may not read AG-0012's statement");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // The auditor reads, and writes nothing, even with an operator's bearer token attached:
    // under mutual TLS the token is not read.
    let auditor = ledger.connect_as("auditor").await;
    let head = AuditServiceClient::new(auditor.clone())
        .get_head(api::GetHeadRequest {})
        .await
        .expect("an auditor reads the head")
        .into_inner();
    assert_eq!(
        head.position, 7,
        "budget, two providers, module, company, batch, redemption"
    );
    ReportServiceClient::new(auditor.clone())
        .get_year_summary(api::GetYearSummaryRequest {
            year: 2025,
            as_of: None,
        })
        .await
        .expect("an auditor reads the reports");
    let refused = AdministrationServiceClient::new(auditor.clone())
        .open_budget(with_token(
            api::OpenBudgetRequest {
                request_id: request_id(),
                year: 2026,
                allocated_eur: "1.00".to_owned(),
            },
            Some("demo-administration-token"),
        ))
        .await
        .expect_err("an auditor may not write");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = OperatorServiceClient::new(auditor)
        .issue_vouchers(with_token(
            api::IssueVouchersRequest {
                request_id: request_id(),
                enterprise_number: COMPANY.to_owned(),
                voucher_type: VoucherType::General as i32,
                quantity: 1,
                paid_amount_eur: "15.00".to_owned(),
                payment_date: "2025-03-10".to_owned(),
                payment_reference: "VIR-2025-0002".to_owned(),
            },
            Some("demo-operator-token"),
        ))
        .await
        .expect_err("an auditor may not issue");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    ledger.server.stop().await;
}

#[tokio::test]
async fn a_certificate_of_the_ca_without_a_principal_is_unauthenticated() {
    let ledger = MtlsLedger::start();
    let cases = [
        ledger.authority.issue(
            "no uri",
            vec![SanType::DnsName("client.example".try_into().expect("ia5"))],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
        ledger.authority.client("superuser"),
        ledger.authority.issue(
            "two principals",
            vec![
                SanType::URI("voucherledger:auditor".try_into().expect("ia5")),
                SanType::URI("voucherledger:operator".try_into().expect("ia5")),
            ],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    ];
    for credential in &cases {
        let channel = ledger
            .connect(Some(credential))
            .await
            .expect("the ca's certificate passes the handshake");
        let refused = AuditServiceClient::new(channel)
            .get_head(api::GetHeadRequest {})
            .await
            .expect_err("a certificate without one principal is refused");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert_eq!(reason(&refused), "UNAUTHENTICATED");
    }
    ledger.server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Unsafe starts

fn start_failure(args: &[&str], env: &[(&str, &str)], listen: &str) -> StartFailure {
    let home = tempfile::tempdir().expect("a temporary folder");
    match Server::start_listening(home, args, env, listen) {
        Ok(server) => panic!("voucher-ledger started on {} with {args:?}", server.address),
        Err(failure) => failure,
    }
}

#[test]
fn unsafe_starts_are_refused() {
    let key = [("VOUCHER_LEDGER__PSEUDONYM_KEY_HEX", TEST_PSEUDONYM_KEY_HEX)];

    // Plain HTTP beyond loopback. The check runs before anything is bound.
    let failure = start_failure(&[], &key, "0.0.0.0:0");
    assert_eq!(failure.exit_code, Some(2), "{failure:?}");
    assert!(
        failure.stderr.contains("tls is not configured"),
        "{failure:?}"
    );

    // The demo beyond loopback, even over TLS.
    let failure = start_failure(
        &["--demo"],
        &[
            ("VOUCHER_LEDGER__TLS_CERT_FILE", "/nonexistent/server.pem"),
            ("VOUCHER_LEDGER__TLS_KEY_FILE", "/nonexistent/server.key"),
        ],
        "0.0.0.0:0",
    );
    assert_eq!(failure.exit_code, Some(2), "{failure:?}");

    // Mutual TLS without TLS, or without a client CA.
    let failure = start_failure(
        &[],
        &[key[0], ("VOUCHER_LEDGER__AUTH_MODE", "mtls")],
        "127.0.0.1:0",
    );
    assert_eq!(failure.exit_code, Some(2), "{failure:?}");
    assert!(failure.stderr.contains("tls_client_ca_file"), "{failure:?}");

    // A pseudonym key written in a configuration file.
    let folder = tempfile::tempdir().expect("a temporary folder");
    let config = folder.path().join("ledger.toml");
    std::fs::write(
        &config,
        format!("pseudonym_key_hex = \"{TEST_PSEUDONYM_KEY_HEX}\"\n"),
    )
    .expect("written");
    let config = config.to_string_lossy().into_owned();
    let failure = start_failure(&["--config", &config], &[], "127.0.0.1:0");
    assert_eq!(failure.exit_code, Some(2), "{failure:?}");
    assert!(
        failure.stderr.contains("holds pseudonym_key_hex"),
        "{failure:?}"
    );

    // No pseudonym key outside the demo.
    let failure = start_failure(&[], &[], "127.0.0.1:0");
    assert_eq!(failure.exit_code, Some(2), "{failure:?}");
    assert!(failure.stderr.contains("no pseudonym key"), "{failure:?}");
}

#[test]
fn the_committed_default_configuration_holds_no_secret() {
    let text = std::fs::read_to_string(workspace_root().join("config/default.toml"))
        .expect("config/default.toml is readable");
    // Each setting on a line of its own, `name = value`.
    let setting = |name: &str| -> Option<String> {
        text.lines()
            .filter_map(|line| line.split_once('='))
            .find(|(key, _)| key.trim() == name)
            .map(|(_, value)| value.trim().to_owned())
    };
    for (name, value) in [
        ("pseudonym_key_hex", "\"\""),
        ("pseudonym_key_file", "\"\""),
        ("tokens", "[]"),
        ("auth_mode", "\"token\""),
        ("tls_cert_file", "\"\""),
        ("tls_key_file", "\"\""),
        ("tls_client_ca_file", "\"\""),
    ] {
        assert_eq!(setting(name).as_deref(), Some(value), "{name}");
    }
    assert!(
        !text.contains("[[tokens]]"),
        "no token in the default configuration"
    );
    // No private key anywhere in the configuration folder.
    for entry in std::fs::read_dir(workspace_root().join("config")).expect("config/ is readable") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            !text.contains("PRIVATE KEY"),
            "{} holds a private key",
            path.display()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Personal data

/// A valid NISS for the nine digits `body` (born before 2000), in the dotted form.
fn niss(body: u64) -> String {
    let check = 97 - body % 97;
    let digits = format!("{body:09}{check:02}");
    format!(
        "{}.{}.{}-{}.{}",
        &digits[0..2],
        &digits[2..4],
        &digits[4..6],
        &digits[6..9],
        &digits[9..11]
    )
}

/// A valid NISS of someone born from 2000 on, digits only.
fn niss_2000(body: u64) -> String {
    let check = 97 - (2_000_000_000 + body) % 97;
    format!("{body:09}{check:02}")
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Every byte string a NISS could be written as: as typed, digits only, UTF-16LE, base64 of the
/// digits (with and without padding, as typed too), hex of the ASCII digits.
fn encodings(typed: &str) -> Vec<(String, Vec<u8>)> {
    let digits: String = typed.chars().filter(char::is_ascii_digit).collect();
    let mut forms = vec![
        ("as typed".to_owned(), typed.as_bytes().to_vec()),
        ("digits".to_owned(), digits.as_bytes().to_vec()),
        ("utf-16le as typed".to_owned(), utf16le(typed)),
        ("utf-16le digits".to_owned(), utf16le(&digits)),
        (
            "hex of digits".to_owned(),
            hex::encode(digits.as_bytes()).into_bytes(),
        ),
        (
            "HEX of digits".to_owned(),
            hex::encode_upper(digits.as_bytes()).into_bytes(),
        ),
    ];
    for (name, text) in [("digits", &digits), ("as typed", &typed.to_owned())] {
        let encoded = base64(text.as_bytes());
        forms.push((
            format!("base64 of {name}"),
            encoded.trim_end_matches('=').as_bytes().to_vec(),
        ));
    }
    forms
}

fn files_under(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("the folder is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn test_helpers_encode_as_expected() {
    assert_eq!(niss(850730033), "85.07.30-033.28");
    assert_eq!(niss_2000(10203001), "01020300170");
    assert_eq!(base64(b"85073003328"), "ODUwNzMwMDMzMjg=");
    assert_eq!(base64(b"ab"), "YWI=");
}

#[tokio::test]
async fn national_numbers_are_written_nowhere() {
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-niss-")
        .tempdir()
        .expect("a temporary folder");
    let server = Server::start(home, &["--demo"], &[("VOUCHER_LEDGER_LOG", "debug")])
        .unwrap_or_else(|failure| panic!("the demo server starts: {failure:?}"));
    let channel = server.connect().await;
    set_up_year(
        (channel.clone(), Some("demo-administration-token")),
        (channel.clone(), Some("demo-operator-token")),
    )
    .await;

    let valid = [
        niss(850730033),
        niss(900101123),
        niss(751231456),
        niss(601015987),
        niss_2000(10203001),
        niss_2000(50607123),
    ];
    // Fails its check digits, and one with letters: refused, never echoed.
    let invalid = ["85.07.30-033.29".to_owned(), "8507300332X".to_owned()];
    let mut provider = ProviderServiceClient::new(channel.clone());
    let token = Some("demo-provider-AG-0012-token");
    for (index, number) in valid.iter().enumerate() {
        let request = redeem(PROVIDER, number, "2");
        let accepted = provider
            .redeem_hours(with_token(request.clone(), token))
            .await
            .expect("a redemption with a valid NISS is accepted");
        // The answer holds the event as stored: the pseudonym, not the number.
        let answer = format!("{:?}", accepted.get_ref());
        assert!(
            !answer.contains(number.as_str()),
            "the answer echoes a NISS"
        );
        if index == 0 {
            // A retry, answered from the log.
            provider
                .redeem_hours(with_token(request, token))
                .await
                .expect("a retry is answered");
        }
        // Refused by a rule (too many hours for the module), by a role, and by the wrong
        // provider: the number was valid, and is pseudonymized before any of these.
        for (request, token) in [
            (redeem(PROVIDER, number, "41"), token),
            (redeem(OTHER_PROVIDER, number, "1"), token),
            (redeem(PROVIDER, number, "1"), Some("demo-operator-token")),
        ] {
            let refused = provider
                .redeem_hours(with_token(request, token))
                .await
                .expect_err("refused");
            assert!(
                !format!("{refused:?}").contains(number.as_str()),
                "{refused:?}"
            );
        }
    }
    for number in &invalid {
        let refused = provider
            .redeem_hours(with_token(redeem(PROVIDER, number, "1"), token))
            .await
            .expect_err("an invalid NISS is refused");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(reason(&refused), "INVALID_NATIONAL_NUMBER");
        let shown = format!("{refused:?}");
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        assert!(
            !shown.contains(number.as_str()) && !shown.contains(&digits),
            "{shown}"
        );
    }
    let summary = ReportServiceClient::new(channel.clone())
        .get_year_summary(with_token(
            api::GetYearSummaryRequest {
                year: 2025,
                as_of: None,
            },
            Some("demo-auditor-token"),
        ))
        .await
        .expect("the auditor reads the summary")
        .into_inner();
    assert_eq!(summary.workers_trained, valid.len() as u32);
    // The auditor's view of the whole log, as an auditor would export it.
    let mut events = AuditServiceClient::new(channel)
        .read_events(with_token(
            api::ReadEventsRequest {
                from_position: 1,
                limit: 1000,
            },
            Some("demo-auditor-token"),
        ))
        .await
        .expect("the auditor reads the log")
        .into_inner();
    let mut log_bytes = Vec::new();
    while let Some(event) = events.message().await.expect("a page of events") {
        log_bytes.extend(prost::Message::encode_to_vec(&event));
        log_bytes.extend(format!("{event:?}").into_bytes());
    }
    assert!(log_bytes.len() > 1000, "the log holds the year");

    let stderr = server.stderr();
    assert!(
        stderr.contains("DEBUG"),
        "the server logged at debug level:\n{stderr}"
    );
    let home = server.stop().await;
    let mut scanned: Vec<(String, Vec<u8>)> = files_under(&home.path().join("data"))
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a data file is readable");
            (path.display().to_string(), bytes)
        })
        .collect();
    for name in ["server.stdout", SERVER_LOG] {
        let bytes = std::fs::read(home.path().join(name)).expect("the captured output");
        scanned.push((name.to_owned(), bytes));
    }
    scanned.push(("the events read by the auditor".to_owned(), log_bytes));
    assert!(
        scanned.len() > 3,
        "the data folder has files: {:?}",
        scanned.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );
    // The scan finds what is there: the enterprise number is stored as it is, in the log.
    assert!(
        scanned.iter().any(|(_, haystack)| haystack
            .windows(COMPANY.len())
            .any(|window| window == COMPANY.as_bytes())),
        "the scan sees the enterprise number in the data folder"
    );
    for number in valid.iter().chain(&invalid) {
        for (form, needle) in encodings(number) {
            for (name, haystack) in &scanned {
                assert!(
                    !haystack
                        .windows(needle.len())
                        .any(|window| window == needle.as_slice()),
                    "a NISS ({form}) is in {name}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// voucherctl over mutual TLS

/// What voucherctl does with `arguments`: its TLS setup, then the one call.
async fn voucherctl(
    arguments: &[&str],
) -> Result<voucherctl::output::Answer, voucherctl::failure::Failure> {
    use clap::Parser;
    let cli = voucherctl::cli::Cli::try_parse_from(
        std::iter::once("voucherctl").chain(arguments.iter().copied()),
    )
    .expect("a valid voucherctl command line");
    let options = voucherctl::tls::TlsOptions {
        ca: cli.ca.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
    };
    let endpoint =
        voucherctl::tls::configure(&cli.server, &options).expect("voucherctl's tls options fit");
    let plan = cli.plan().expect("a command that is one call");
    voucherctl::client::execute(&endpoint, cli.token.as_ref(), plan.call, false).await
}

#[tokio::test]
async fn voucherctl_speaks_mutual_tls() {
    let ledger = MtlsLedger::start();
    let folder = tempfile::tempdir().expect("a temporary folder");
    let write = |name: &str, text: &str| -> String {
        let path = folder.path().join(name);
        std::fs::write(&path, text).expect("written");
        path.to_string_lossy().into_owned()
    };
    let auditor = ledger.authority.client("auditor");
    let ca = write("ca.pem", &ledger.ca_pem);
    let cert = write("auditor.pem", &auditor.cert_pem);
    let key = write("auditor.key", &auditor.key_pem);
    let server = format!("https://{}", ledger.server.address);
    let tls = [
        "--server", &server, "--ca", &ca, "--cert", &cert, "--key", &key,
    ];

    let head = voucherctl(&[&["head"][..], &tls[..]].concat()).await;
    assert!(
        matches!(&head, Ok(voucherctl::output::Answer::Head(head)) if head.position == 0),
        "{head:?}"
    );
    let refused = voucherctl(
        &[
            &["budget", "open", "--year", "2026", "--allocated", "1.00"][..],
            &tls[..],
        ]
        .concat(),
    )
    .await;
    match refused {
        Err(voucherctl::failure::Failure::Refused(status)) => {
            assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        }
        other => panic!("an auditor's write is refused, not {other:?}"),
    }
    // Without a client certificate the handshake fails: voucherctl says the server is
    // unreachable (exit status 3), not that it refused.
    let without_certificate = voucherctl(&["head", "--server", &server, "--ca", &ca]).await;
    assert!(
        matches!(
            without_certificate,
            Err(voucherctl::failure::Failure::Unreachable { .. })
        ),
        "{without_certificate:?}"
    );
    ledger.server.stop().await;
}

/// A log written before the server refused control characters: one provider approval whose
/// name holds a screen clear, a carriage return, a forged line and a bell.
const OLD_HOSTILE_NAME: &str = "Meuse\u{1b}[2J\rforged\nreceipt: replayed yes\u{7}";

fn write_log_with_a_hostile_name(data: &Path) {
    use ledger_proto::event::v1::{event::Payload, ProviderApproved};
    let request_id = uuid::Uuid::new_v4();
    let mut store = ledger_store::Store::open(data).expect("a new log");
    store
        .append(vec![ledger_store::NewCommand {
            request_id,
            request_digest: [7; 32],
            recorded_at: "2025-01-02T09:00:00Z".to_owned(),
            events: vec![ledger_store::NewEvent {
                stream: "provider/AG-0012".to_owned(),
                event_id: uuid::Uuid::new_v4(),
                request_id,
                principal: "administration".to_owned(),
                recorded_at: "2025-01-02T09:00:00Z".to_owned(),
                business_date: "2025-01-02".to_owned(),
                names: None,
                payload: Payload::ProviderApproved(ProviderApproved {
                    provider_id: "AG-0012".to_owned(),
                    name: OLD_HOSTILE_NAME.to_owned(),
                    approved_from: "2025-01-01".to_owned(),
                    approved_until: String::new(),
                }),
            }],
        }])
        .expect("the old event is written");
}

/// voucherctl prints what came from the ledger with its control characters escaped: an old
/// event's ESC never reaches the auditor's terminal, nor does a stored line break forge a line.
#[tokio::test]
async fn voucherctl_escapes_control_characters_that_came_from_the_ledger() {
    let home = tempfile::tempdir().expect("a temporary folder");
    write_log_with_a_hostile_name(&home.path().join("data"));
    let server = Server::start(home, &["--demo"], &[]).expect("the server starts on the old log");
    let url = format!("http://{}", server.address);
    let readable = |answer: &voucherctl::output::Answer| voucherctl::output::human(answer);
    let mut shown = Vec::new();
    for arguments in [
        vec!["events", "--from", "1", "--token", "demo-auditor-token"],
        vec![
            "statement",
            "--provider",
            "AG-0012",
            "--token",
            "demo-auditor-token",
        ],
    ] {
        let answer = voucherctl(&[&arguments[..], &["--server", &url][..]].concat())
            .await
            .unwrap_or_else(|failure| panic!("{arguments:?} is answered: {failure:?}"));
        shown.push(readable(&answer));
    }
    for text in &shown {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a control character reaches the terminal: {text:?}"
        );
        assert!(
            text.contains("Meuse\\x1b[2J\\x0dforged\\x0areceipt: replayed yes\\x07"),
            "{text}"
        );
        assert!(
            !text.lines().any(|line| line.starts_with("receipt:")),
            "a stored line break forged a line: {text}"
        );
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Hostile bytes through the real server

/// A codec that sends a request body as it is and takes the answer's bytes as they are, to put
/// bytes that are no valid message on the wire.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

#[derive(Clone, Copy, Debug, Default)]
struct RawEncoder;

#[derive(Clone, Copy, Debug, Default)]
struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = prost::bytes::Buf::copy_to_bytes(src, prost::bytes::Buf::remaining(src));
        Ok(Some(bytes.to_vec()))
    }
}

/// splitmix64: the same bodies on every run, without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Bodies for one RPC: random bytes, bytes that break the protobuf framing on purpose, and
/// mutations of `valid`.
fn hostile_bodies(random: &mut Random, valid: &[u8], count: usize) -> Vec<Vec<u8>> {
    let mut bodies = vec![
        Vec::new(),
        // A length-delimited field 1 announcing 2^35 bytes.
        vec![0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
        // A varint that never ends.
        vec![
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
        // Field number 0, and a group start without its end.
        vec![0x00, 0x01],
        vec![0x0b, 0x10, 0x01],
        // Field 1 as a string that is not UTF-8.
        vec![0x0a, 0x02, 0xc3, 0x28],
        // A thousand unknown fields.
        [0xf8u8, 0xff, 0x7f, 0x01].repeat(1000),
    ];
    for _ in 0..count {
        if random.below(2) == 0 {
            let len = random.below(300);
            bodies.push(random.bytes(len));
        } else {
            let mut body = valid.to_vec();
            for _ in 0..1 + random.below(3) {
                let at = random.below(body.len() + 1);
                match random.below(4) {
                    0 if at < body.len() => body[at] = random.next() as u8,
                    1 if at < body.len() => body[at] ^= 1 << random.below(8),
                    2 => body.insert(at, random.next() as u8),
                    _ => body.truncate(at),
                }
            }
            bodies.push(body);
        }
    }
    bodies
}

#[tokio::test]
async fn hostile_bytes_to_the_real_server_always_get_a_status() {
    use prost::Message;
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-hostile-")
        .tempdir()
        .expect("a temporary folder");
    let server = Server::start(home, &["--demo"], &[])
        .unwrap_or_else(|failure| panic!("the demo server starts: {failure:?}"));
    let channel = server.connect().await;
    set_up_year(
        (channel.clone(), Some("demo-administration-token")),
        (channel.clone(), Some("demo-operator-token")),
    )
    .await;

    const ADMINISTRATION: &str = "demo-administration-token";
    const OPERATOR: &str = "demo-operator-token";
    const PROVIDER_TOKEN: &str = "demo-provider-AG-0012-token";
    const AUDITOR: &str = "demo-auditor-token";
    let valid_redemption = redeem(PROVIDER, "85.07.30-033.28", "1").encode_to_vec();
    let valid_redemption_batch = api::RedeemHoursBatchRequest {
        items: vec![
            redeem(PROVIDER, "85.07.30-033.28", "1"),
            redeem(PROVIDER, "85.07.30-033.28", "2"),
        ],
    }
    .encode_to_vec();
    let valid_year = api::GetYearSummaryRequest {
        year: 2025,
        as_of: None,
    }
    .encode_to_vec();
    // Every unary RPC, and ReadEvents. Not Subscribe (it follows the log until the client
    // leaves) nor Backup (a body that decodes may name a real folder to write a copy into).
    let rpcs: [(&str, &str, &[u8]); 23] = [
        ("AdministrationService/OpenBudget", ADMINISTRATION, &[]),
        ("AdministrationService/AdjustBudget", ADMINISTRATION, &[]),
        ("AdministrationService/ApproveProvider", ADMINISTRATION, &[]),
        (
            "AdministrationService/WithdrawProvider",
            ADMINISTRATION,
            &[],
        ),
        ("AdministrationService/ApproveModule", ADMINISTRATION, &[]),
        ("AdministrationService/WithdrawModule", ADMINISTRATION, &[]),
        ("OperatorService/RegisterCompany", OPERATOR, &[]),
        ("OperatorService/IssueVouchers", OPERATOR, &[]),
        ("OperatorService/IssueVouchersBatch", OPERATOR, &[]),
        ("OperatorService/ExpireVouchers", OPERATOR, &[]),
        ("OperatorService/RecordPayout", OPERATOR, &[]),
        ("OperatorService/GetWallet", OPERATOR, &[]),
        (
            "ProviderService/RedeemHours",
            PROVIDER_TOKEN,
            &valid_redemption,
        ),
        (
            "ProviderService/RedeemHoursBatch",
            PROVIDER_TOKEN,
            &valid_redemption_batch,
        ),
        ("ProviderService/ReverseRedemption", PROVIDER_TOKEN, &[]),
        ("ProviderService/GetStatement", PROVIDER_TOKEN, &[]),
        ("ReportService/GetBudget", AUDITOR, &valid_year),
        ("ReportService/GetYearSummary", AUDITOR, &valid_year),
        ("ReportService/GetCompanies", AUDITOR, &valid_year),
        ("ReportService/GetTrainingHours", AUDITOR, &valid_year),
        ("ReportService/GetTrialBalance", AUDITOR, &[]),
        ("AuditService/GetHead", AUDITOR, &[]),
        ("AuditService/ReadEvents", AUDITOR, &[]),
    ];
    let mut random = Random(0x5eed_0006);
    let mut calls = 0;
    let mut malformed = 0;
    for (rpc, token, valid) in rpcs {
        let path: tonic::codegen::http::uri::PathAndQuery = format!("/voucherledger.v1.{rpc}")
            .parse()
            .expect("a valid path");
        for body in hostile_bodies(&mut random, valid, 40) {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.expect("the connection is ready");
            let request = with_token(body, Some(token));
            let outcome = if rpc.ends_with("ReadEvents") {
                match grpc.server_streaming(request, path.clone(), RawCodec).await {
                    Ok(response) => {
                        let mut stream = response.into_inner();
                        loop {
                            match stream.message().await {
                                Ok(Some(_)) => {}
                                Ok(None) => break Ok(()),
                                Err(status) => break Err(status),
                            }
                        }
                    }
                    Err(status) => Err(status),
                }
            } else {
                grpc.unary::<Vec<u8>, Vec<u8>, _>(request, path.clone(), RawCodec)
                    .await
                    .map(drop)
            };
            calls += 1;
            if let Err(status) = outcome {
                // The server answered with the API's details, every time: a refusal of the
                // ledger, or a body that does not decode (INVALID_ARGUMENT /
                // MALFORMED_REQUEST, never tonic's bare INTERNAL). Never a dropped connection,
                // a reset stream or a crash.
                assert!(from_the_ledger(&status), "{rpc}: not an answer: {status:?}");
                assert_ne!(status.code(), Code::Internal, "{rpc}: {status:?}");
                if reason(&status) == "MALFORMED_REQUEST" {
                    malformed += 1;
                    assert_eq!(status.code(), Code::InvalidArgument, "{rpc}: {status:?}");
                }
            }
        }
    }
    assert!(calls > 800, "{calls} calls");
    assert!(malformed > 100, "{malformed} bodies refused as malformed");
    // Still serving, and it stops cleanly.
    let head = AuditServiceClient::new(channel)
        .get_head(with_token(api::GetHeadRequest {}, Some(AUDITOR)))
        .await
        .expect("the server still answers")
        .into_inner();
    assert!(head.position >= 6, "{head:?}");
    server.stop().await;
}

/// `body` sent as is to the unary method at `path` (`/package.Service/Method`) with `token`,
/// bypassing the generated clients: what a hostile client can send. No size cap on the
/// client's side, so that the server's is the one tested.
async fn raw_unary(
    channel: &Channel,
    path: &str,
    body: Vec<u8>,
    token: Option<&str>,
) -> Result<Vec<u8>, tonic::Status> {
    let path: tonic::codegen::http::uri::PathAndQuery = path.parse().expect("a valid path");
    let mut grpc = tonic::client::Grpc::new(channel.clone()).max_encoding_message_size(usize::MAX);
    grpc.ready().await.expect("the connection is ready");
    grpc.unary::<Vec<u8>, Vec<u8>, _>(with_token(body, token), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Authentication comes before decoding: a caller without a valid token gets UNAUTHENTICATED
/// whatever its body, even one that does not decode or announces a huge message.
#[tokio::test]
async fn an_unauthenticated_caller_is_refused_before_its_body_is_decoded() {
    let server = Server::start_demo();
    let channel = server.connect().await;
    let bodies: [Vec<u8>; 4] = [
        // A varint that never ends.
        vec![
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
        // Field 1 as a fixed64 where a string is expected (wrong wire type).
        vec![0x09, 1, 2, 3, 4, 5, 6, 7, 8],
        // Deep nesting: a length-delimited field opened a thousand times.
        [0x0au8, 0x7f].repeat(1000),
        // Over every decoding cap.
        vec![b'n'; 3 * 1024 * 1024],
    ];
    for path in [
        "/voucherledger.v1.AdministrationService/OpenBudget",
        "/voucherledger.v1.ProviderService/RedeemHoursBatch",
        "/voucherledger.v1.AuditService/GetHead",
    ] {
        for (index, body) in bodies.iter().enumerate() {
            for token in [None, Some("not-a-token")] {
                let status = raw_unary(&channel, path, body.clone(), token)
                    .await
                    .expect_err("an unauthenticated call is refused");
                assert_eq!(
                    (status.code(), reason(&status)),
                    (Code::Unauthenticated, "UNAUTHENTICATED".to_owned()),
                    "{path} body {index} token {token:?}: {status:?}"
                );
            }
        }
    }
    server.stop().await;
}

/// With a valid token, a body that does not decode is INVALID_ARGUMENT / MALFORMED_REQUEST.
#[tokio::test]
async fn an_undecodable_body_is_invalid_argument_malformed_request() {
    let server = Server::start_demo();
    let channel = server.connect().await;
    let bodies: [(&str, Vec<u8>); 4] = [
        ("a truncated varint", vec![0x10, 0xff, 0xff]),
        ("a wrong wire type", vec![0x09, 1, 2, 3, 4, 5, 6, 7, 8]),
        ("deep nesting", [0x0au8, 0x7f].repeat(1000)),
        ("a string that is not utf-8", vec![0x0a, 0x02, 0xc3, 0x28]),
    ];
    for (what, body) in bodies {
        let status = raw_unary(
            &channel,
            "/voucherledger.v1.AdministrationService/OpenBudget",
            body,
            Some("demo-administration-token"),
        )
        .await
        .expect_err("an undecodable body is refused");
        assert_eq!(
            (status.code(), reason(&status)),
            (Code::InvalidArgument, "MALFORMED_REQUEST".to_owned()),
            "{what}: {status:?}"
        );
        assert!(
            status
                .message()
                .starts_with("the request body cannot be decoded"),
            "{what}: {status:?}"
        );
    }
    server.stop().await;
}

/// A write whose deadline passes before it is answered (here: its body arrives after the
/// deadline) is answered DEADLINE_EXCEEDED / LEDGER_OUTCOME_UNKNOWN a little before the
/// deadline, not tonic's bare CANCELLED; the retry with the same request id settles it, once.
#[tokio::test]
async fn a_write_past_its_deadline_is_told_to_retry_with_the_same_id() {
    use prost::Message;
    const ADMINISTRATION: &str = "demo-administration-token";
    let server = Server::start_demo();
    let channel = server.connect().await;
    let message = api::OpenBudgetRequest {
        request_id: request_id(),
        year: 2025,
        allocated_eur: "1000.00".into(),
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let body = message.encode_to_vec();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = sender.send(body).await;
    });
    let mut request = with_token(
        tokio_stream::wrappers::ReceiverStream::new(receiver),
        Some(ADMINISTRATION),
    );
    request.set_timeout(Duration::from_millis(300));
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("the connection is ready");
    let started = Instant::now();
    let status = grpc
        .client_streaming::<_, Vec<u8>, Vec<u8>, _>(
            request,
            "/voucherledger.v1.AdministrationService/OpenBudget"
                .parse()
                .expect("a valid path"),
            RawCodec,
        )
        .await
        .expect_err("the deadline passes first");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered before the body came"
    );
    assert_eq!(
        (status.code(), reason(&status)),
        (Code::DeadlineExceeded, "LEDGER_OUTCOME_UNKNOWN".to_owned()),
        "{status:?}"
    );
    assert!(status.message().contains("same request id"), "{status:?}");
    late.abort();

    let retried = AdministrationServiceClient::new(channel.clone())
        .open_budget(with_token(message.clone(), Some(ADMINISTRATION)))
        .await
        .expect("the retry with the same id is answered")
        .into_inner();
    let again = AdministrationServiceClient::new(channel.clone())
        .open_budget(with_token(message, Some(ADMINISTRATION)))
        .await
        .expect("and again")
        .into_inner();
    assert_eq!(
        again.receipt.map(|receipt| receipt.replayed),
        Some(true),
        "{retried:?}"
    );
    let head = AuditServiceClient::new(channel)
        .get_head(with_token(
            api::GetHeadRequest {},
            Some("demo-auditor-token"),
        ))
        .await
        .expect("the head")
        .into_inner();
    assert_eq!(head.position, 1, "the budget is written once");
    server.stop().await;
}
