//! The rules of Wallonia's training-voucher scheme, as pure functions.
//!
//! `decide(&state, &command, &context)` either refuses with one named [`Refusal`] or returns the
//! events the command causes; `state.apply(&event)` folds an event into the state. Nothing here
//! does IO, reads the clock or draws a random number: the time, the policy table and every id
//! arrive as arguments, so a replay of the same events always gives the same state.
//!
//! This crate must never depend on sled, tonic, tokio or the generated protobuf code. The log's
//! encoding lives in `ledger-codec`, the durability in `ledger-store`, the single writer in
//! `ledger-engine`.

pub mod command;
pub mod decide;
pub mod dense;
pub mod event;
pub mod identity;
pub mod money;
pub mod policy;
pub mod refusal;
pub mod small_map;
pub mod state;
pub mod types;
pub mod usage_code;
mod usage_rules;
pub mod worker_hours;

pub use command::{Command, Principal};
pub use decide::{authorize, decide, Context};
pub use event::{Account, Event, Posting, Side};
pub use identity::{EnterpriseNumber, Identifier, NationalNumber, PseudonymKey, WorkerPseudonym};
pub use policy::{Policy, PolicyError, PolicyTable};
pub use refusal::{Ineligibility, Refusal};
pub use state::LedgerState;
pub use types::{LegalForm, Region, SizeClass, Theme, TraineeStatus, VoucherType};
pub use usage_code::UsageCode;
