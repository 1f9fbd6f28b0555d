//! `voucherctl wait`: polls the server's standard gRPC health service (`grpc.health.v1`) until
//! it answers SERVING or the timeout passes. A script that starts `voucher-ledger serve` in the
//! background runs it before its first call, instead of sleeping and hoping.

use std::time::{Duration, Instant};

use clap::Args;
use tonic::transport::Endpoint;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Pause between two attempts: short enough that a script goes on within a tenth of a second
/// of the server serving, long enough that polling a loopback port costs nothing.
const WAIT_POLL_INTERVAL_MS: u64 = 100;

/// Longest wait for one connection or one health answer, in milliseconds; the overall timeout
/// bounds it too. The server answers a health check from memory, within a millisecond.
const WAIT_ATTEMPT_TIMEOUT_MS: u64 = 2_000;

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Give up after this many seconds (exit status 3).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout_seconds: u64,
    /// The service whose health is asked, such as voucherledger.v1.OperatorService; empty for
    /// the server as a whole.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub service: String,
}

/// Why the server was not serving when the time ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotServing {
    pub server: String,
    pub timeout_seconds: u64,
    /// What the last attempt found: a refused connection, NOT_SERVING, an unknown service.
    pub last: String,
}

impl std::fmt::Display for NotServing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server at {} was not serving after {} seconds (last attempt: {})",
            self.server, self.timeout_seconds, self.last
        )
    }
}

/// Polls until the health check of `service` answers SERVING; the number of attempts made.
pub async fn wait(endpoint: &Endpoint, args: &WaitArgs) -> Result<u64, NotServing> {
    let server = endpoint.uri().to_string();
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let attempt_timeout = remaining.min(Duration::from_millis(WAIT_ATTEMPT_TIMEOUT_MS));
        let last = match check(endpoint, &args.service, attempt_timeout).await {
            Ok(ServingStatus::Serving) => return Ok(attempts),
            Ok(status) => format!("health status {}", status.as_str_name()),
            Err(reason) => reason,
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(NotServing {
                server,
                timeout_seconds: args.timeout_seconds,
                last,
            });
        }
        tokio::time::sleep(remaining.min(Duration::from_millis(WAIT_POLL_INTERVAL_MS))).await;
    }
}

/// One health check, or why it gave no status.
async fn check(
    endpoint: &Endpoint,
    service: &str,
    timeout: Duration,
) -> Result<ServingStatus, String> {
    let channel = endpoint
        .clone()
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|error| crate::failure::error_chain(&error))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map_err(|status| {
            format!(
                "{}: {}",
                crate::failure::code_name(status.code()),
                status.message()
            )
        })?;
    Ok(response.into_inner().status())
}
