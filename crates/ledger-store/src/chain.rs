//! The hash chain: how an entry's hash is computed, how one stored entry is checked against the
//! one before it, and how a break is reported.
//!
//! Pure functions over bytes: nothing here touches sled, so the same checks serve the reads of
//! the engine, the full `verify` of an auditor and the tests.

use std::fmt;

use ledger_proto::event::v1::{Event, LogEntry};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::keys;

/// The last position of the log and its hash, as published to auditors.
///
/// Position 0 with the zero hash is the head of an empty log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Head {
    pub position: u64,
    pub hash: [u8; 32],
}

impl Head {
    /// The head of a log with no entry.
    pub const EMPTY: Head = Head {
        position: 0,
        hash: [0u8; 32],
    };
}

impl fmt::Display for Head {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "position {} hash {}",
            self.position,
            hex::encode(self.hash)
        )
    }
}

/// `SHA-256(prev ‖ position as u64 big-endian ‖ event_bytes)`: the hash of the entry at
/// `position`, whose predecessor's hash is `prev` (32 zero bytes before position 1).
pub fn chain_hash(prev: &[u8; 32], position: u64, event_bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(position.to_be_bytes());
    hasher.update(event_bytes);
    hasher.finalize().into()
}

/// One event as it stands in the log: decoded, with its place in the chain and its exact bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub position: u64,
    /// The chain hash of this entry.
    pub hash: [u8; 32],
    /// The chain hash of the entry before (32 zero bytes for position 1).
    pub prev_hash: [u8; 32],
    /// The decoded event; its `position` equals `position` and its `stream_version` is filled.
    pub event: Event,
    /// The encoded event, byte for byte as it was hashed and stored.
    pub event_bytes: Vec<u8>,
}

/// Where and how the log stops being the chain it should be: the expected failure of a check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the event log breaks at position {position}: {kind}")]
pub struct ChainBreak {
    /// The first position that cannot be trusted. For the head kinds, see each kind; 0 when
    /// `open` finds a last entry whose key names no position.
    pub position: u64,
    pub kind: ChainBreakKind,
}

/// The ways an entry or the head can fail the chain check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreakKind {
    /// A key with the entry prefix is not followed by exactly eight bytes of position.
    #[error("an entry key is {key_length} bytes instead of 9")]
    KeyMalformed { key_length: usize },
    /// The next stored entry is not the expected position: entries were deleted or renumbered.
    #[error("expected position {expected}, found {found}")]
    Gap { expected: u64, found: u64 },
    /// A read was promised this entry by the head and it is not there.
    #[error("the entry is missing")]
    EntryMissing,
    /// The stored value does not decode as a `LogEntry`.
    #[error("the entry does not decode: {error}")]
    EntryUndecodable { error: prost::DecodeError },
    /// The entry's `hash` field is not 32 bytes.
    #[error("the stored hash is {length} bytes instead of 32")]
    HashMalformed { length: usize },
    /// The recomputed hash differs from the stored one: these event bytes, or the stored hash,
    /// were changed, or the entry was moved from another position.
    #[error(
        "stored hash {} differs from computed {}",
        hex::encode(stored),
        hex::encode(computed)
    )]
    HashMismatch {
        stored: [u8; 32],
        computed: [u8; 32],
    },
    /// The event bytes match their hash but do not decode as an `Event`.
    #[error("the event does not decode: {error}")]
    EventUndecodable { error: prost::DecodeError },
    /// The event says it is at another position than its key.
    #[error("the event says it is at position {event_position}")]
    PositionMismatch { event_position: u64 },
    /// Entries exist but there is no head record. `position` is the last entry's.
    #[error("the head record is missing")]
    HeadMissing,
    /// The head record is not 40 bytes. `position` is the last entry's.
    #[error("the head record is {length} bytes instead of 40")]
    HeadMalformed { length: usize },
    /// The head record does not name the last entry: the tail was truncated (head ahead), entries
    /// were added without the head (head behind), or the head's hash was changed. `position` is
    /// the first position after the shorter of the two, or the shared position when only the
    /// hashes differ.
    #[error("the stored head ({stored_head}) is not the last entry ({last_entry})")]
    HeadMismatch { stored_head: Head, last_entry: Head },
    /// A segment file of the sealed past (see the `segment` module) is not whole: its form,
    /// its digest, or its place in the run of segments. `position` is the first it should hold.
    #[error("segment file {file} is damaged: {why}")]
    SegmentDamaged { file: String, why: String },
}

/// Checks one stored entry, expected at `expected_position` after an entry whose hash is
/// `prev_hash`, and decodes it.
///
/// The order of the checks is the order of trust: the key, the entry, the hash over the exact
/// bytes, and only then what the bytes say.
pub(crate) fn check_entry(
    expected_position: u64,
    prev_hash: &[u8; 32],
    key: &[u8],
    value: &[u8],
) -> Result<RecordedEvent, ChainBreak> {
    let breaks_with = |kind| ChainBreak {
        position: expected_position,
        kind,
    };
    let position = keys::entry_position(key).ok_or_else(|| {
        breaks_with(ChainBreakKind::KeyMalformed {
            key_length: key.len(),
        })
    })?;
    if position != expected_position {
        return Err(breaks_with(ChainBreakKind::Gap {
            expected: expected_position,
            found: position,
        }));
    }
    let (event_bytes, hash) = decode_entry(value).map_err(breaks_with)?;
    let computed = chain_hash(prev_hash, position, &event_bytes);
    if computed != hash {
        return Err(breaks_with(ChainBreakKind::HashMismatch {
            stored: hash,
            computed,
        }));
    }
    let event = Event::decode(event_bytes.as_slice())
        .map_err(|error| breaks_with(ChainBreakKind::EventUndecodable { error }))?;
    if event.position != position {
        return Err(breaks_with(ChainBreakKind::PositionMismatch {
            event_position: event.position,
        }));
    }
    Ok(RecordedEvent {
        position,
        hash,
        prev_hash: *prev_hash,
        event,
        event_bytes,
    })
}

/// The encoded `LogEntry { event, hash }`, byte for byte what prost writes for it, without
/// copying the event bytes into a message first (the writer stores every event this way).
pub(crate) fn encode_entry(event_bytes: &[u8], hash: &[u8; 32]) -> Vec<u8> {
    use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
    let len = key_len(1)
        + encoded_len_varint(event_bytes.len() as u64)
        + event_bytes.len()
        + key_len(2)
        + encoded_len_varint(hash.len() as u64)
        + hash.len();
    let mut buf = Vec::with_capacity(len);
    // proto3 leaves an empty `bytes` field out, as prost does.
    for (tag, bytes) in [(1, event_bytes), (2, hash.as_slice())] {
        if !bytes.is_empty() {
            encode_key(tag, WireType::LengthDelimited, &mut buf);
            encode_varint(bytes.len() as u64, &mut buf);
            buf.extend_from_slice(bytes);
        }
    }
    buf
}

/// The event bytes and the stored hash of an encoded `LogEntry`, unchecked against the chain.
pub(crate) fn decode_entry(value: &[u8]) -> Result<(Vec<u8>, [u8; 32]), ChainBreakKind> {
    let entry =
        LogEntry::decode(value).map_err(|error| ChainBreakKind::EntryUndecodable { error })?;
    let hash: [u8; 32] =
        entry
            .hash
            .as_slice()
            .try_into()
            .map_err(|_| ChainBreakKind::HashMalformed {
                length: entry.hash.len(),
            })?;
    Ok((entry.event, hash))
}

/// Compares the stored head record (`None` when absent) with the last entry of the log
/// (`Head::EMPTY` when there is none), and returns the head they agree on.
pub(crate) fn check_head(
    stored_record: Option<&[u8]>,
    last_entry: Head,
) -> Result<Head, ChainBreak> {
    let Some(record) = stored_record else {
        if last_entry == Head::EMPTY {
            return Ok(Head::EMPTY);
        }
        return Err(ChainBreak {
            position: last_entry.position,
            kind: ChainBreakKind::HeadMissing,
        });
    };
    let Some(stored_head) = keys::decode_head(record) else {
        return Err(ChainBreak {
            position: last_entry.position,
            kind: ChainBreakKind::HeadMalformed {
                length: record.len(),
            },
        });
    };
    if stored_head == last_entry {
        return Ok(stored_head);
    }
    let position = if stored_head.position == last_entry.position {
        stored_head.position
    } else {
        stored_head.position.min(last_entry.position) + 1
    };
    Err(ChainBreak {
        position,
        kind: ChainBreakKind::HeadMismatch {
            stored_head,
            last_entry,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_encoded_as_prost_encodes_them() {
        for event_bytes in [Vec::new(), vec![7u8; 3], vec![1u8; 300]] {
            let hash = [9u8; 32];
            let expected = LogEntry {
                event: event_bytes.clone(),
                hash: hash.to_vec(),
            }
            .encode_to_vec();
            assert_eq!(encode_entry(&event_bytes, &hash), expected);
        }
    }
}
