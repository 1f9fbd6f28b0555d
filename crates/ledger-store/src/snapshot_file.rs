//! The file format of the checkpoint and of the retained snapshots: a header naming what the
//! file is, the position and chain hash of the log it reflects and the SHA-256 of its body, then
//! the body, opaque to the store.
//!
//! A file is written under a temporary name and renamed, so that a running reader never sees
//! half of one. Reading checks the kind and the digest; whether the log still has that hash at
//! that position is for the caller to check.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::store::{sync_directory, StoreError};
use crate::Head;

/// The kind, the position, the chain hash at that position, the SHA-256 of the body.
pub(crate) const HEADER_BYTES: usize = 8 + 8 + 32 + 32;

/// What a file is and the version of its header: its first 8 bytes.
pub(crate) type Kind = [u8; 8];

/// Bytes of a file written between two `fdatasync`s of it, whether or not it is `durable`. Not
/// for durability: a checkpoint or snapshot of a long history is a hundred megabytes or more,
/// and the kernel holding that much dirty makes the committer's next `fdatasync` of sled's file
/// wait behind it (ext4 commits its journal, with the data of newly allocated blocks, for the
/// whole file system): the batched phase of the ten-year bench stalled for seconds at each
/// checkpoint. Written and synced a few megabytes at a time, no commit carries more than that.
const SYNC_BYTES_MAX: usize = 4 << 20;

/// Writes `body`, reflecting `head`, to `path` (through `path` with the extension `tmp`).
/// `durable`: the data is `fdatasync`ed before the rename and the folder synced after, so that
/// after a power cut the file is either the old one or the new one, whole.
pub(crate) fn write(
    path: &Path,
    kind: &Kind,
    head: &Head,
    body: &[u8],
    durable: bool,
) -> Result<(), StoreError> {
    write_streamed(path, kind, head, durable, &mut |out| out.write_all(body))
}

/// The body `encode` writes (one or many `write`s), reflecting `head`, to `path`, as [`write`]
/// does: the same file, but the body is never whole in memory. A ten-year checkpoint is 175 MB,
/// and its encoding was held in a `Vec` per part and then in the joined one, up to 350 MB
/// beside the state while serving. The header's digest is written last, once the body is
/// through.
pub(crate) fn write_streamed(
    path: &Path,
    kind: &Kind,
    head: &Head,
    durable: bool,
    encode: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<(), StoreError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| StoreError::Io { path, source }
    };
    let temporary = path.with_extension("tmp");
    let written = write_temporary(&temporary, kind, head, durable, encode);
    if written.is_err() {
        // Best effort: a leftover is replaced by the next write of the same file.
        let _ = fs::remove_file(&temporary);
    }
    written?;
    fs::rename(&temporary, path).map_err(io_error(path))?;
    if durable {
        if let Some(dir) = path.parent() {
            sync_directory(dir)?;
        }
    }
    Ok(())
}

/// The file of [`write_streamed`] under its temporary name, whole (and synced when `durable`).
fn write_temporary(
    temporary: &Path,
    kind: &Kind,
    head: &Head,
    durable: bool,
    encode: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<(), StoreError> {
    let io_error = |source: io::Error| StoreError::Io {
        path: temporary.to_path_buf(),
        source,
    };
    let file = fs::File::create(temporary).map_err(io_error)?;
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(kind);
    header.extend_from_slice(&head.position.to_be_bytes());
    header.extend_from_slice(&head.hash);
    // The digest's place, filled once the body is written.
    header.resize(HEADER_BYTES, 0);
    let mut body = Body {
        out: io::BufWriter::with_capacity(BODY_BUFFER_BYTES, file),
        hasher: Sha256::new(),
        unsynced: 0,
    };
    body.out.write_all(&header).map_err(io_error)?;
    encode(&mut body).map_err(io_error)?;
    let Body { out, hasher, .. } = body;
    let file = out
        .into_inner()
        .map_err(|error| io_error(error.into_error()))?;
    header[HEADER_BYTES - 32..].copy_from_slice(&hasher.finalize());
    file.write_all_at(&header, 0).map_err(io_error)?;
    if durable {
        file.sync_data().map_err(io_error)?;
    }
    Ok(())
}

/// The buffer between an encoder's many small writes and the file.
const BODY_BUFFER_BYTES: usize = 1 << 20;

/// A body on its way to the file: hashed as it goes, and synced every [`SYNC_BYTES_MAX`].
struct Body {
    out: io::BufWriter<fs::File>,
    hasher: Sha256,
    /// Bytes written since the last `fdatasync`.
    unsynced: usize,
}

impl Write for Body {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.out.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.unsynced += written;
        if self.unsynced >= SYNC_BYTES_MAX {
            self.out.flush()?;
            self.out.get_ref().sync_data()?;
            self.unsynced = 0;
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Why a file is refused, and the position it claims when its header is readable.
pub(crate) type Refused = (Option<u64>, &'static str);

/// A file's bytes checked against its kind and digest: the head it reflects and its body.
pub(crate) fn decode<'a>(kind: &Kind, bytes: &'a [u8]) -> Result<(Head, &'a [u8]), Refused> {
    if bytes.len() < HEADER_BYTES {
        return Err((None, "shorter than its header"));
    }
    let (header, body) = bytes.split_at(HEADER_BYTES);
    if &header[..8] != kind {
        return Err((None, "not a file of this kind and version"));
    }
    let mut position = [0; 8];
    position.copy_from_slice(&header[8..16]);
    let position = u64::from_be_bytes(position);
    let mut hash = [0; 32];
    hash.copy_from_slice(&header[16..48]);
    if header[48..80] != Sha256::digest(body)[..] {
        return Err((Some(position), "its body does not match its digest"));
    }
    Ok((Head { position, hash }, body))
}

/// [`decode`] of a file read whole, giving its body back in the same buffer: a checkpoint is
/// tens of megabytes, which a copy would hold twice at a start.
pub(crate) fn decode_owned(kind: &Kind, mut bytes: Vec<u8>) -> Result<(Head, Vec<u8>), Refused> {
    let head = decode(kind, &bytes)?.0;
    bytes.drain(..HEADER_BYTES);
    Ok((head, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: &Kind = b"TESTKND1";

    #[test]
    fn a_body_of_several_sync_chunks_is_written_whole_and_in_order() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("file");
        let head = Head {
            position: 11,
            hash: [3; 32],
        };
        // Two whole chunks and a part of a third, each byte telling where it is.
        let body: Vec<u8> = (0..2 * SYNC_BYTES_MAX + 3)
            .map(|index| (index % 251) as u8)
            .collect();
        for durable in [false, true] {
            write(&path, KIND, &head, &body, durable).expect("written");
            let bytes = fs::read(&path).expect("read");
            assert_eq!(bytes.len(), HEADER_BYTES + body.len());
            assert_eq!(decode(KIND, &bytes), Ok((head, &body[..])));
        }
        write(&path, KIND, &head, b"", true).expect("an empty body is written");
        let bytes = fs::read(&path).expect("read");
        assert_eq!(decode(KIND, &bytes), Ok((head, &b""[..])));
    }

    #[test]
    fn a_body_written_in_many_pieces_is_the_file_of_the_whole_body() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let (whole, pieces) = (dir.path().join("whole"), dir.path().join("pieces"));
        let head = Head {
            position: 5,
            hash: [4; 32],
        };
        let body: Vec<u8> = (0..SYNC_BYTES_MAX + 1_000)
            .map(|index| (index % 253) as u8)
            .collect();
        write(&whole, KIND, &head, &body, true).expect("written whole");
        write_streamed(&pieces, KIND, &head, true, &mut |out| {
            // Pieces of every size from 1 byte, as an encoder writes them.
            let mut rest = &body[..];
            let mut len = 1;
            while !rest.is_empty() {
                let (piece, after) = rest.split_at(len.min(rest.len()));
                out.write_all(piece)?;
                rest = after;
                len = len % 4_099 + 1;
            }
            Ok(())
        })
        .expect("written in pieces");
        let bytes = fs::read(&pieces).expect("read");
        assert_eq!(bytes, fs::read(&whole).expect("read"));
        assert_eq!(decode(KIND, &bytes), Ok((head, &body[..])));
        // An encoder that fails leaves no file, and not the temporary one either.
        let failed = dir.path().join("failed");
        let refused = write_streamed(&failed, KIND, &head, true, &mut |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("the encoder failed"))
        });
        assert!(refused.is_err());
        assert!(!failed.exists());
    }

    #[test]
    fn a_written_body_decodes_as_written_and_a_flipped_byte_is_refused() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("file");
        let head = Head {
            position: 7,
            hash: [9; 32],
        };
        for durable in [false, true] {
            write(&path, KIND, &head, b"projections", durable).expect("written");
            let mut bytes = fs::read(&path).expect("read");
            assert_eq!(decode(KIND, &bytes), Ok((head, &b"projections"[..])));
            assert_eq!(
                decode(b"OTHERKND", &bytes),
                Err((None, "not a file of this kind and version"))
            );
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            assert_eq!(
                decode(KIND, &bytes),
                Err((Some(7), "its body does not match its digest"))
            );
            assert_eq!(
                decode(KIND, &bytes[..HEADER_BYTES - 1]),
                Err((None, "shorter than its header"))
            );
            assert!(!path.with_extension("tmp").exists());
        }
    }
}
