//! The keys of the one sled tree and the encoding of the head record.
//!
//! Every key starts with a one-byte prefix naming what it holds; positions are big-endian so
//! that sled's byte order is the log's order. Nothing here reads or writes sled.

use uuid::Uuid;

use crate::chain::Head;

/// Prefix of a log entry: `e` ‖ position (u64 big-endian).
pub(crate) const ENTRY_PREFIX: u8 = b'e';
/// Prefix of a request record: `r` ‖ request id (16 UUID bytes).
pub(crate) const REQUEST_PREFIX: u8 = b'r';
/// Prefix of a stream version: `s` ‖ stream name (UTF-8).
pub(crate) const STREAM_PREFIX: u8 = b's';
/// The head record: position (u64 big-endian) ‖ 32-byte hash.
pub(crate) const HEAD_KEY: &[u8] = b"h";
/// Prefix of the index by name: `n` ‖ id (16 UUID bytes) ‖ position (u64 big-endian), with an
/// empty value: one key per event that names the id, so that appending never reads a key back.
pub(crate) const NAME_PREFIX: u8 = b'n';
/// Present, with the index's version, once every event of the log is in the index by name.
pub(crate) const NAME_INDEX_KEY: &[u8] = b"N";
/// The version of the index by name that this code writes.
pub(crate) const NAME_INDEX_VERSION: u8 = 1;
/// Prefix of a group record: `g` ‖ head before the group (u64 BE) ‖ head after it (u64 BE) ‖
/// the group's first request id (16 UUID bytes), whose value lists the group's request ids and
/// indexed names (see `fingerprints`). Sorted by the head before, then after, so that a scan
/// from a position meets the groups in the order they were written (a group that wrote no event
/// before the one that did, from the same head).
pub(crate) const GROUP_PREFIX: u8 = b'g';

/// Length of an entry key: the prefix and eight bytes of position.
const ENTRY_KEY_LEN: usize = 1 + 8;
/// Length of the head record: eight bytes of position and the 32-byte hash.
pub(crate) const HEAD_RECORD_LEN: usize = 8 + 32;

pub(crate) fn entry_key(position: u64) -> [u8; ENTRY_KEY_LEN] {
    let mut key = [0u8; ENTRY_KEY_LEN];
    key[0] = ENTRY_PREFIX;
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

/// The position named by an entry key, or `None` when the key is not `e` ‖ 8 bytes.
pub(crate) fn entry_position(key: &[u8]) -> Option<u64> {
    match key {
        [ENTRY_PREFIX, position @ ..] => {
            let position: [u8; 8] = position.try_into().ok()?;
            Some(u64::from_be_bytes(position))
        }
        _ => None,
    }
}

pub(crate) fn request_key(request_id: Uuid) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = REQUEST_PREFIX;
    key[1..].copy_from_slice(request_id.as_bytes());
    key
}

/// The request id of a request record's key; `None` for a key of another shape.
pub(crate) fn request_id_of(key: &[u8]) -> Option<Uuid> {
    match key {
        [REQUEST_PREFIX, rest @ ..] => Uuid::from_slice(rest).ok(),
        _ => None,
    }
}

pub(crate) fn name_key(id: Uuid, position: u64) -> [u8; 25] {
    let mut key = [0u8; 25];
    key[0] = NAME_PREFIX;
    key[1..17].copy_from_slice(id.as_bytes());
    key[17..].copy_from_slice(&position.to_be_bytes());
    key
}

pub(crate) fn name_prefix(id: Uuid) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = NAME_PREFIX;
    key[1..].copy_from_slice(id.as_bytes());
    key
}

/// The id and position of an index-by-name key; `None` for a key of another shape.
pub(crate) fn name_of(key: &[u8]) -> Option<(Uuid, u64)> {
    match key {
        [NAME_PREFIX, rest @ ..] if rest.len() == 24 => {
            let id = Uuid::from_slice(&rest[..16]).ok()?;
            let position: [u8; 8] = rest[16..].try_into().ok()?;
            Some((id, u64::from_be_bytes(position)))
        }
        _ => None,
    }
}

pub(crate) fn group_key(previous_head: u64, head: u64, first_request_id: Uuid) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[0] = GROUP_PREFIX;
    key[1..9].copy_from_slice(&previous_head.to_be_bytes());
    key[9..17].copy_from_slice(&head.to_be_bytes());
    key[17..].copy_from_slice(first_request_id.as_bytes());
    key
}

/// The first group key whose head before the group is `previous_head` or later.
pub(crate) fn group_key_from(previous_head: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = GROUP_PREFIX;
    key[1..].copy_from_slice(&previous_head.to_be_bytes());
    key
}

/// The heads before and after the group of a group key; `None` for a key of another shape.
pub(crate) fn group_heads_of(key: &[u8]) -> Option<(u64, u64)> {
    match key {
        [GROUP_PREFIX, rest @ ..] if rest.len() == 32 => {
            let previous: [u8; 8] = rest[..8].try_into().ok()?;
            let head: [u8; 8] = rest[8..16].try_into().ok()?;
            Some((u64::from_be_bytes(previous), u64::from_be_bytes(head)))
        }
        _ => None,
    }
}

pub(crate) fn stream_key(stream: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + stream.len());
    key.push(STREAM_PREFIX);
    key.extend_from_slice(stream.as_bytes());
    key
}

pub(crate) fn encode_head(head: Head) -> [u8; HEAD_RECORD_LEN] {
    let mut record = [0u8; HEAD_RECORD_LEN];
    record[..8].copy_from_slice(&head.position.to_be_bytes());
    record[8..].copy_from_slice(&head.hash);
    record
}

/// The head in a head record, or `None` when the record is not 40 bytes.
pub(crate) fn decode_head(record: &[u8]) -> Option<Head> {
    let record: &[u8; HEAD_RECORD_LEN] = record.try_into().ok()?;
    let (position, hash) = record.split_at(8);
    Some(Head {
        position: u64::from_be_bytes(position.try_into().ok()?),
        hash: hash.try_into().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_in_position_order() {
        let positions = [1u64, 2, 255, 256, 65_536, u64::MAX];
        for pair in positions.windows(2) {
            assert!(entry_key(pair[0]) < entry_key(pair[1]));
        }
        for position in positions {
            assert_eq!(entry_position(&entry_key(position)), Some(position));
        }
    }

    #[test]
    fn malformed_entry_keys_name_no_position() {
        assert_eq!(entry_position(b"e"), None);
        assert_eq!(entry_position(b"e12345678"[..8].as_ref()), None);
        assert_eq!(entry_position(b"x12345678"), None);
    }

    #[test]
    fn group_keys_sort_by_the_head_before_then_after_and_name_both() {
        let id = Uuid::from_u128(7);
        let keys = [
            group_key(5, 5, Uuid::from_u128(u128::MAX)),
            group_key(5, 9, Uuid::from_u128(1)),
            group_key(9, 9, id),
            group_key(256, 300, id),
        ];
        for pair in keys.windows(2) {
            assert!(pair[0] < pair[1]);
        }
        assert!(group_key_from(5)[..] <= keys[0][..] && keys[1][..] < group_key_from(6)[..]);
        assert_eq!(group_heads_of(&keys[3]), Some((256, 300)));
        assert_eq!(group_heads_of(&keys[3][..32]), None);
        assert_eq!(group_heads_of(&entry_key(5)), None);
    }

    #[test]
    fn head_record_round_trips() {
        let head = Head {
            position: 42,
            hash: [7u8; 32],
        };
        assert_eq!(decode_head(&encode_head(head)), Some(head));
        assert_eq!(decode_head(&encode_head(head)[..39]), None);
    }
}
