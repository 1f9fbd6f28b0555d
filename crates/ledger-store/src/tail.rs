//! The request records and the index by name of the latest groups, kept in their group records
//! until a checkpoint folds them into the `r` and `n` keys.
//!
//! Why: the request record (`r` ‖ request id) and the index by name (`n` ‖ id ‖ position) are
//! keyed by random ids, so each group's batch touched one sled leaf per command for each of them,
//! and sled copies a leaf on every change. Measured per event with sled alone (the committer's
//! batch of 100 events of 470 bytes, flush and `fdatasync`; `BENCHMARKS.md`, 2026-11-30): the
//! entry alone 16.5 µs of CPU and 845 bytes of folder, with the two random keys 41–43 µs and
//! 1 850–1 900 bytes, with one group record instead 17.9 µs and 1 004 bytes. So a group writes
//! its entries and one group record (`g` ‖ head before ‖ head after ‖ first request id, a key
//! that follows the log) holding its request records and its names; the store keeps the same
//! records in memory ([`Tail`]) to answer retries and lookups by name. When the fingerprints
//! are saved with a checkpoint, the thread that saves them folds the group records before that
//! head into `r` and `n` keys (in key order, off the writer's path) and then removes them; the
//! writer then forgets those records from memory. A log holds every request record and name in
//! a group record not yet folded or under its own key (both, with the same bytes, after a crash
//! in the middle of a fold).
//!
//! Durability is the group's: the group record is in the group's batch, so a group acknowledged
//! has its records on disk. A fold is not synced: lost at a crash, it is redone at the next
//! save, and the group records stay until their records are under their own keys.
//!
//! Versions: a group record of version 1 (written before this module) lists only ids, its
//! requests and names having their own keys already; version 2 starts with the byte 2 (a
//! version 1 record starts with the high byte of its request count, always 0).
//!
//! Version 2's value: 2, the number of requests (u32 BE), each request as its id (16 bytes),
//! the length of its encoded `RequestRecord` (u16 BE) and those bytes (the value its `r` key
//! will hold), then each name as its id (16 bytes) and its position (u64 BE).

use std::collections::HashMap;

use ledger_proto::event::v1::RequestRecord;
use prost::Message;
use uuid::Uuid;

use crate::keys;
use crate::store::StoreError;

/// First byte of a version 2 group record.
const GROUP_RECORD_VERSION: u8 = 2;
/// Bytes of one id.
const ID_BYTES: usize = 16;

/// Most bytes of request records and names in one group record. sled 0.34 writes a page
/// larger than a quarter of a segment (128 KiB) to a blob file it never syncs (see
/// [`crate::EVENT_BYTES_MAX`]), and a leaf holds several records: a group of 1 000 commands
/// is therefore cut into records of at most this much, each under the 4 KiB of an event.
const GROUP_RECORD_BYTES_MAX: usize = 3 * 1024;

/// One request of a group, for its group record.
#[derive(Debug)]
pub(crate) struct GroupRequest {
    pub(crate) request_id: Uuid,
    /// The head before and after the command's events.
    pub(crate) head_before: u64,
    pub(crate) head_after: u64,
    /// The encoded `RequestRecord`, as its `r` key will hold it.
    pub(crate) record: Vec<u8>,
}

/// The group records of one group: its requests, in order, cut into runs of at most
/// [`GROUP_RECORD_BYTES_MAX`] (a single command larger than that is a run of its own), each
/// keyed by the heads before and after its run and its first request id, so that the runs of
/// one group read like consecutive groups; each name goes with the run holding its position.
pub(crate) fn group_records(
    requests: &[GroupRequest],
    names: &[(Uuid, u64)],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut records = Vec::new();
    let mut start = 0;
    while start < requests.len() {
        let head_before = requests[start].head_before;
        let mut end = start;
        let mut bytes = 0;
        while end < requests.len() {
            let request = &requests[end];
            let named = names
                .iter()
                .filter(|(_, position)| {
                    request.head_before < *position && *position <= request.head_after
                })
                .count();
            let added = ID_BYTES + 2 + request.record.len() + named * (ID_BYTES + 8);
            if end > start && bytes + added > GROUP_RECORD_BYTES_MAX {
                break;
            }
            bytes += added;
            end += 1;
        }
        let run = &requests[start..end];
        let head_after = run.last().map_or(head_before, |request| request.head_after);
        let run_names: Vec<(Uuid, u64)> = names
            .iter()
            .filter(|(_, position)| head_before < *position && *position <= head_after)
            .copied()
            .collect();
        let run_requests: Vec<(Uuid, &[u8])> = run
            .iter()
            .map(|request| (request.request_id, request.record.as_slice()))
            .collect();
        records.push((
            keys::group_key(head_before, head_after, run[0].request_id).to_vec(),
            encode_group_record(&run_requests, &run_names),
        ));
        start = end;
    }
    records
}

/// The value of a version 2 group record.
pub(crate) fn encode_group_record(requests: &[(Uuid, &[u8])], names: &[(Uuid, u64)]) -> Vec<u8> {
    let request_bytes: usize = requests
        .iter()
        .map(|(_, record)| ID_BYTES + 2 + record.len())
        .sum();
    let mut value = Vec::with_capacity(1 + 4 + request_bytes + names.len() * (ID_BYTES + 8));
    value.push(GROUP_RECORD_VERSION);
    // A group holds at most a few thousand commands, far below u32::MAX.
    value.extend_from_slice(&(requests.len() as u32).to_be_bytes());
    for (request_id, record) in requests {
        value.extend_from_slice(request_id.as_bytes());
        // A request record is a digest, two integers and a timestamp: far below 64 KiB.
        let len = u16::try_from(record.len()).expect("a request record is far below 64 KiB");
        value.extend_from_slice(&len.to_be_bytes());
        value.extend_from_slice(record);
    }
    for (id, position) in names {
        value.extend_from_slice(id.as_bytes());
        value.extend_from_slice(&position.to_be_bytes());
    }
    value
}

/// What a group record holds: its request ids, each with its encoded `RequestRecord` (version
/// 2) or without (version 1: the record has its own `r` key), and its names, each with its
/// position (version 2) or without (version 1: the `n` key has it).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupRecord {
    pub(crate) requests: Vec<(Uuid, Option<Vec<u8>>)>,
    pub(crate) names: Vec<(Uuid, Option<u64>)>,
}

/// A group record's value of either version; `None` when it is malformed.
pub(crate) fn decode_group_record(value: &[u8]) -> Option<GroupRecord> {
    match value.first() {
        Some(&GROUP_RECORD_VERSION) => decode_version_2(&value[1..]),
        Some(0) => decode_version_1(value),
        _ => None,
    }
}

fn decode_version_1(value: &[u8]) -> Option<GroupRecord> {
    let (count, ids) = value.split_first_chunk::<4>()?;
    let count = u32::from_be_bytes(*count) as usize;
    if ids.len() % ID_BYTES != 0 || ids.len() / ID_BYTES < count {
        return None;
    }
    let mut all = ids
        .chunks_exact(ID_BYTES)
        .map(|id| Uuid::from_slice(id).ok());
    let requests = all
        .by_ref()
        .take(count)
        .map(|id| id.map(|id| (id, None)))
        .collect::<Option<Vec<_>>>()?;
    let names = all
        .map(|id| id.map(|id| (id, None)))
        .collect::<Option<Vec<_>>>()?;
    Some(GroupRecord { requests, names })
}

fn decode_version_2(value: &[u8]) -> Option<GroupRecord> {
    let (count, mut rest) = value.split_first_chunk::<4>()?;
    let count = u32::from_be_bytes(*count) as usize;
    let mut record = GroupRecord::default();
    for _ in 0..count {
        let (id, after_id) = rest.split_first_chunk::<ID_BYTES>()?;
        let (len, after_len) = after_id.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if after_len.len() < len {
            return None;
        }
        let (bytes, after) = after_len.split_at(len);
        record
            .requests
            .push((Uuid::from_bytes(*id), Some(bytes.to_vec())));
        rest = after;
    }
    if rest.len() % (ID_BYTES + 8) != 0 {
        return None;
    }
    for name in rest.chunks_exact(ID_BYTES + 8) {
        let (id, position) = name.split_at(ID_BYTES);
        let id = Uuid::from_slice(id).ok()?;
        let position = u64::from_be_bytes(position.try_into().ok()?);
        record.names.push((id, Some(position)));
    }
    Some(record)
}

/// The request records and names of the group records not yet folded, in memory: what the
/// store answers a retry or a lookup by name from before reading sled's `r` and `n` keys.
/// Bounded by the groups written since the last save of the fingerprints (about one checkpoint
/// interval), not by the history.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// Each request's record and the head before its group (what the fold goes by).
    requests: HashMap<Uuid, (RequestRecord, u64)>,
    /// Each named id's positions, ascending.
    names: HashMap<Uuid, Vec<u64>>,
}

impl Tail {
    pub(crate) fn insert_request(
        &mut self,
        request_id: Uuid,
        record: RequestRecord,
        head_before: u64,
    ) {
        self.requests.insert(request_id, (record, head_before));
    }

    pub(crate) fn insert_name(&mut self, id: Uuid, position: u64) {
        let positions = self.names.entry(id).or_default();
        if let Err(index) = positions.binary_search(&position) {
            positions.insert(index, position);
        }
    }

    /// Adds a group record's records of version 2 (those of version 1 have their own keys).
    pub(crate) fn insert_group(
        &mut self,
        record: GroupRecord,
        head_before: u64,
    ) -> Result<(), Uuid> {
        for (request_id, bytes) in record.requests {
            if let Some(bytes) = bytes {
                let decoded = RequestRecord::decode(bytes.as_slice()).map_err(|_| request_id)?;
                self.insert_request(request_id, decoded, head_before);
            }
        }
        for (id, position) in record.names {
            if let Some(position) = position {
                self.insert_name(id, position);
            }
        }
        Ok(())
    }

    pub(crate) fn request(&self, request_id: Uuid) -> Option<&RequestRecord> {
        self.requests.get(&request_id).map(|(record, _)| record)
    }

    pub(crate) fn positions_naming(&self, id: Uuid) -> &[u64] {
        self.names.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Forgets what the fold of the group records written from a head before `position` moved
    /// to their own keys.
    pub(crate) fn forget_folded(&mut self, position: u64) {
        self.requests
            .retain(|_, (_, head_before)| *head_before >= position);
        self.names.retain(|_, positions| {
            positions.retain(|named| *named > position);
            !positions.is_empty()
        });
    }

    pub(crate) fn request_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.requests.keys().copied()
    }

    pub(crate) fn named_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.names.keys().copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.requests.len()
    }
}

/// Every group record of `db` that holds records (version 2), with the head before its group.
pub(crate) fn read_tail(db: &sled::Db) -> Result<Tail, StoreError> {
    let mut tail = Tail::default();
    for item in db.scan_prefix([keys::GROUP_PREFIX]) {
        let (key, value) = item?;
        let Some((head_before, _)) = keys::group_heads_of(&key) else {
            continue;
        };
        let Some(record) = decode_group_record(&value) else {
            return Err(StoreError::GroupRecordMalformed { key: key.to_vec() });
        };
        if let Err(request_id) = tail.insert_group(record, head_before) {
            return Err(StoreError::RequestRecordInGroupUndecodable { request_id });
        }
    }
    Ok(tail)
}

/// The positions of the events naming `id` in the group records not yet folded, for a reader
/// without the store's [`Tail`] (a replay, an audit): a scan of those records, about one
/// checkpoint interval's.
pub(crate) fn positions_naming_in_groups(db: &sled::Db, id: Uuid) -> Result<Vec<u64>, StoreError> {
    let mut positions = Vec::new();
    for item in db.scan_prefix([keys::GROUP_PREFIX]) {
        let (key, value) = item?;
        let Some(record) = decode_group_record(&value) else {
            return Err(StoreError::GroupRecordMalformed { key: key.to_vec() });
        };
        positions.extend(
            record
                .names
                .into_iter()
                .filter(|(named, _)| *named == id)
                .filter_map(|(_, position)| position),
        );
    }
    Ok(positions)
}

/// Moves the records of the group records written from a head before `position` to their own
/// `r` and `n` keys, then removes those group records.
///
/// The keys are inserted one by one, in key order, not as one batch: sled holds every other
/// writer back for the whole of a batch (a fold of 100 000 keys held the committer's flush for
/// 5 s in `bench`), while single inserts interleave with the committer's batches. A crash in
/// the middle leaves records both under their keys and in their group record, with the same
/// bytes: the store reads them from either, and the next fold writes them again.
pub(crate) fn fold_group_records_before(db: &sled::Db, position: u64) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let mut folded: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut group_keys = Vec::new();
    for item in db.range(keys::group_key_from(0)..keys::group_key_from(position)) {
        let (key, value) = item?;
        let Some(record) = decode_group_record(&value) else {
            // Left as it is: a start reports it (`read_tail`).
            tracing::warn!(key = %hex::encode(&key), "group record malformed; not folded");
            continue;
        };
        for (request_id, bytes) in record.requests {
            if let Some(bytes) = bytes {
                folded.push((keys::request_key(request_id).to_vec(), bytes));
            }
        }
        for (id, named_at) in record.names {
            if let Some(named_at) = named_at {
                folded.push((keys::name_key(id, named_at).to_vec(), Vec::new()));
            }
        }
        group_keys.push(key);
    }
    // In key order, so that consecutive inserts meet the same sled leaves while they are warm.
    folded.sort_unstable_by(|left, right| left.0.cmp(&right.0));
    let folded_len = folded.len();
    for (key, value) in folded {
        db.insert(key, value)?;
    }
    // The group records go once every record is under its own key; their keys follow the log,
    // so this batch is short for sled.
    let mut removal = sled::Batch::default();
    for key in group_keys {
        removal.remove(key);
    }
    db.apply_batch(removal)?;
    tracing::info!(
        position,
        records = folded_len,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "group records folded under their own keys"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(first_position: u64) -> RequestRecord {
        RequestRecord {
            request_digest: vec![7; 32],
            first_position,
            event_count: 1,
            recorded_at: "2025-06-30T10:00:00.000000Z".to_owned(),
        }
    }

    #[test]
    fn a_version_2_group_record_gives_back_its_records_and_names() {
        let requests = [
            (Uuid::from_u128(1), record(5).encode_to_vec()),
            (Uuid::from_u128(2), record(6).encode_to_vec()),
        ];
        let names = vec![(Uuid::from_u128(3), 6)];
        let borrowed: Vec<(Uuid, &[u8])> = requests
            .iter()
            .map(|(id, bytes)| (*id, bytes.as_slice()))
            .collect();
        let value = encode_group_record(&borrowed, &names);
        let decoded = decode_group_record(&value).expect("well formed");
        assert_eq!(
            decoded.requests,
            requests
                .iter()
                .map(|(id, bytes)| (*id, Some(bytes.clone())))
                .collect::<Vec<_>>()
        );
        assert_eq!(decoded.names, vec![(Uuid::from_u128(3), Some(6))]);
        assert_eq!(decode_group_record(&value[..value.len() - 1]), None);
        assert_eq!(decode_group_record(&value[..10]), None);
    }

    #[test]
    fn a_version_1_group_record_gives_back_ids_only() {
        let mut value = 1u32.to_be_bytes().to_vec();
        value.extend_from_slice(Uuid::from_u128(1).as_bytes());
        value.extend_from_slice(Uuid::from_u128(3).as_bytes());
        let decoded = decode_group_record(&value).expect("well formed");
        assert_eq!(decoded.requests, vec![(Uuid::from_u128(1), None)]);
        assert_eq!(decoded.names, vec![(Uuid::from_u128(3), None)]);
        assert_eq!(decode_group_record(&value[..value.len() - 1]), None);
        assert_eq!(decode_group_record(&[9, 0, 0, 0]), None);
    }

    #[test]
    fn a_large_group_is_cut_into_records_that_read_like_consecutive_groups() {
        // 200 commands of one event each from head 10, every one naming an id, and a last
        // command that wrote no event.
        let mut requests: Vec<GroupRequest> = (0..200u64)
            .map(|index| GroupRequest {
                request_id: Uuid::from_u128(u128::from(index) + 1),
                head_before: 10 + index,
                head_after: 11 + index,
                record: record(11 + index).encode_to_vec(),
            })
            .collect();
        requests.push(GroupRequest {
            request_id: Uuid::from_u128(999),
            head_before: 210,
            head_after: 210,
            record: record(211).encode_to_vec(),
        });
        let names: Vec<(Uuid, u64)> = (0..200u64)
            .map(|index| (Uuid::from_u128(1_000 + u128::from(index)), 11 + index))
            .collect();
        let records = group_records(&requests, &names);
        assert!(records.len() > 1, "cut");
        let mut reached = 10;
        let mut all_requests = Vec::new();
        let mut all_names = Vec::new();
        for (key, value) in &records {
            assert!(
                value.len() <= GROUP_RECORD_BYTES_MAX + 5,
                "{} bytes",
                value.len()
            );
            let (before, after) = keys::group_heads_of(key).expect("a group key");
            assert_eq!(before, reached, "runs follow each other");
            reached = after;
            let decoded = decode_group_record(value).expect("well formed");
            all_requests.extend(decoded.requests.into_iter().map(|(id, _)| id));
            for (id, position) in decoded.names {
                let position = position.expect("version 2");
                assert!(before < position && position <= after, "a name in its run");
                all_names.push(id);
            }
        }
        assert_eq!(reached, 210);
        assert_eq!(
            all_requests,
            requests
                .iter()
                .map(|request| request.request_id)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            all_names,
            names.iter().map(|(id, _)| *id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_tail_forgets_only_what_was_folded() {
        let mut tail = Tail::default();
        tail.insert_request(Uuid::from_u128(1), record(1), 0);
        tail.insert_request(Uuid::from_u128(2), record(3), 2);
        tail.insert_name(Uuid::from_u128(9), 4);
        tail.insert_name(Uuid::from_u128(9), 2);
        assert_eq!(tail.positions_naming(Uuid::from_u128(9)), &[2, 4]);
        tail.forget_folded(2);
        assert!(tail.request(Uuid::from_u128(1)).is_none());
        assert_eq!(tail.request(Uuid::from_u128(2)), Some(&record(3)));
        assert_eq!(tail.positions_naming(Uuid::from_u128(9)), &[4]);
        tail.forget_folded(4);
        assert!(tail.positions_naming(Uuid::from_u128(9)).is_empty());
        assert_eq!(tail.len(), 0);
    }
}
