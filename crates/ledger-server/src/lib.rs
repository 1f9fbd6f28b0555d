//! The voucher-ledger server: the gRPC API over the single-writer engine, authentication (bearer
//! tokens or mutual TLS), configuration and tracing.
//!
//! Only this crate builds a `tonic::Status` (in [`status`], from the domain's refusals, in one
//! exhaustive match). Only this crate reads configuration and sees raw national register
//! numbers, which [`wire`] turns into pseudonyms before anything else sees them.

pub mod audit;
pub mod auth;
pub mod business_date;
pub mod company;
pub mod edge;
pub mod logging;
pub mod metrics;
pub mod offline;
pub mod otlp;
pub mod queries;
pub mod serve;
pub mod services;
pub mod settings;
pub mod standby;
pub mod status;
pub mod transport;
pub mod wire;
