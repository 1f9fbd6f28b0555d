//! `voucher-ledger-sim`: tools that drive a voucher-ledger server as gRPC clients, kept out of
//! the server's binary, which only serves.
//!
//! - [`simulate`]: a synthetic year of the scheme (or a range of years in one ledger) that
//!   reproduces the published figures exactly, sent through the API.
//! - [`bench`]: durable redemptions over gRPC, the raw store ceiling of the machine, a rebuild.
//! - [`client`]: what both need to talk to the ledger (bearer tokens, refusals read back).
//!
//! Both start a real server in this process from the `ledger-server` library, on 127.0.0.1:0,
//! and reach it only over loopback gRPC (`bench` also reads the writer's counters and measures
//! sled directly, which is the point of a benchmark). Nothing here is part of the server.

pub mod bench;
pub mod client;
pub mod simulate;
