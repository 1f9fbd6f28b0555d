//! Tests of the event log against real sled databases in temporary directories.

mod backup;
mod chain_hash;
mod checkpoint;
mod common;
mod fingerprints;
mod power_loss;
mod properties;
mod reopen;
mod rewrite;
mod segments;
mod tail;
mod tamper;
