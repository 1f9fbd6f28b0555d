//! End-to-end tests: the real `voucher-ledger` binary, started with the demo configuration on
//! 127.0.0.1:0 and a data folder of its own, driven over gRPC the way the administration, the
//! operator, the providers and the auditors use it. One server per test; tests share nothing.
//!
//! Business dates are in 2025 and early 2026, all in the past of the server's real clock.

use ledger_testkit::requests;
mod support;

mod batches;
mod business_date;
mod company_statement;
mod edge;
mod expiry_cap;
mod health_and_reflection;
mod lifecycle;
mod malformed_input;
mod queries;
mod refusals;
mod roles;
mod shutdown;
mod usage_codes;
mod usage_codes_batch;
