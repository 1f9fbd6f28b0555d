//! Checkpoints: the engine's encoded state at some position of the log, written in the same
//! sled batch as a group's events, so that a restart replays only the tail after it.
//!
//! A checkpoint is opaque bytes to the store. It is cut into chunks of at most
//! [`CHECKPOINT_CHUNK_BYTES`] so that no sled page grows past the blob threshold (see
//! `EVENT_BYTES_MAX`), and described by one meta record: the position and chain hash it
//! reflects, the SHA-256 of its bytes, its length and its number of chunks. Loading checks the
//! digest and that the log still has that hash at that position; a checkpoint that fails either
//! check is ignored (the caller replays from position 1), never trusted.

use sha2::{Digest, Sha256};

use crate::chain::Head;

/// Size of one stored chunk of a checkpoint, in bytes: two of them fit where one event fits.
pub const CHECKPOINT_CHUNK_BYTES: usize = 2048;

/// The meta record: `k` → position (u64 BE) ‖ hash (32) ‖ digest (32) ‖ byte length (u64 BE) ‖
/// chunk count (u32 BE).
pub(crate) const CHECKPOINT_META_KEY: &[u8] = b"k";
/// Prefix of a chunk: `c` ‖ chunk index (u32 BE).
pub(crate) const CHECKPOINT_CHUNK_PREFIX: u8 = b'c';
const META_LEN: usize = 8 + 32 + 32 + 8 + 4;

/// A checkpoint read back from the store, its digest and its place in the chain checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The position and hash of the last event the checkpoint reflects.
    pub head: Head,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CheckpointMeta {
    pub(crate) head: Head,
    pub(crate) digest: [u8; 32],
    pub(crate) byte_len: u64,
    pub(crate) chunk_count: u32,
}

pub(crate) fn chunk_key(index: u32) -> [u8; 5] {
    let mut key = [0u8; 5];
    key[0] = CHECKPOINT_CHUNK_PREFIX;
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

pub(crate) fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub(crate) fn encode_meta(meta: &CheckpointMeta) -> [u8; META_LEN] {
    let mut record = [0u8; META_LEN];
    record[..8].copy_from_slice(&meta.head.position.to_be_bytes());
    record[8..40].copy_from_slice(&meta.head.hash);
    record[40..72].copy_from_slice(&meta.digest);
    record[72..80].copy_from_slice(&meta.byte_len.to_be_bytes());
    record[80..84].copy_from_slice(&meta.chunk_count.to_be_bytes());
    record
}

pub(crate) fn decode_meta(record: &[u8]) -> Option<CheckpointMeta> {
    if record.len() != META_LEN {
        return None;
    }
    Some(CheckpointMeta {
        head: Head {
            position: u64::from_be_bytes(record[..8].try_into().ok()?),
            hash: record[8..40].try_into().ok()?,
        },
        digest: record[40..72].try_into().ok()?,
        byte_len: u64::from_be_bytes(record[72..80].try_into().ok()?),
        chunk_count: u32::from_be_bytes(record[80..84].try_into().ok()?),
    })
}

/// Adds the writes of a checkpoint to `batch`: its chunks, the removal of the previous
/// checkpoint's extra chunks, and its meta record. Returns its chunk count.
pub(crate) fn write_into(
    batch: &mut sled::Batch,
    head: Head,
    bytes: &[u8],
    previous_chunk_count: u32,
) -> u32 {
    let chunk_count = u32::try_from(bytes.len().div_ceil(CHECKPOINT_CHUNK_BYTES))
        .expect("a checkpoint of more than 8 TiB cannot be held in memory");
    for (index, chunk) in (0u32..).zip(bytes.chunks(CHECKPOINT_CHUNK_BYTES)) {
        batch.insert(&chunk_key(index)[..], chunk);
    }
    for index in chunk_count..previous_chunk_count {
        batch.remove(&chunk_key(index)[..]);
    }
    let meta = CheckpointMeta {
        head,
        digest: digest(bytes),
        byte_len: bytes.len() as u64,
        chunk_count,
    };
    batch.insert(CHECKPOINT_META_KEY, &encode_meta(&meta)[..]);
    chunk_count
}

/// What the checkpoint records of a log hold, before anyone compares it with the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointFound {
    /// No checkpoint was ever written.
    Absent,
    /// The meta record and every chunk are there and the bytes match their digest. Whether the
    /// log still has `head.hash` at `head.position` is for the caller to check.
    Intact(StoredCheckpoint),
    /// The records do not hold together: a malformed meta record, a missing chunk, or bytes
    /// that do not match their digest. `position` is the one the meta record claims, if any.
    Damaged {
        position: Option<u64>,
        why: &'static str,
    },
}

/// Reads the checkpoint records of `db` and checks them against their own digest.
pub(crate) fn read_stored(db: &sled::Db) -> Result<CheckpointFound, sled::Error> {
    let Some(record) = db.get(CHECKPOINT_META_KEY)? else {
        return Ok(CheckpointFound::Absent);
    };
    let Some(meta) = decode_meta(&record) else {
        return Ok(CheckpointFound::Damaged {
            position: None,
            why: "the meta record is malformed",
        });
    };
    let damaged = |why| {
        Ok(CheckpointFound::Damaged {
            position: Some(meta.head.position),
            why,
        })
    };
    // The meta record's length is not trusted for the allocation: a damaged one could claim
    // terabytes. Beyond this, the vector grows with the chunks actually found.
    const PREALLOCATED_BYTES_MAX: u64 = 64 * 1024 * 1024;
    let capacity = meta.byte_len.min(PREALLOCATED_BYTES_MAX);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    for index in 0..meta.chunk_count {
        match db.get(chunk_key(index))? {
            Some(chunk) => bytes.extend_from_slice(&chunk),
            None => return damaged("a chunk is missing"),
        }
    }
    if bytes.len() as u64 != meta.byte_len || digest(&bytes) != meta.digest {
        return damaged("bytes do not match their digest");
    }
    Ok(CheckpointFound::Intact(StoredCheckpoint {
        head: meta.head,
        bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips() {
        let meta = CheckpointMeta {
            head: Head {
                position: 42,
                hash: [7; 32],
            },
            digest: [9; 32],
            byte_len: 5000,
            chunk_count: 3,
        };
        assert_eq!(decode_meta(&encode_meta(&meta)), Some(meta));
        assert_eq!(decode_meta(&[0; 10]), None);
    }
}
