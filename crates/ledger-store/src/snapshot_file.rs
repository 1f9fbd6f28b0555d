//! The file format of the checkpoint, the retained snapshots (and the year points kept the same
//! way) and the saved fingerprints: a header naming what the file is, the position and chain
//! hash of the log it reflects and the SHA-256 of its stored body, then the body, opaque to the
//! store.
//!
//! A [`Format`] that is `compressed` stores its body as one zstd frame (level
//! [`COMPRESSION_LEVEL`]) and adds the body's length to the header; the digest is of the stored
//! bytes, so a damaged file is refused before its body is trusted. Why: the checkpoint, the
//! retained snapshots and the year points were 420 of the 1 170 bytes per event of a ten-year
//! data folder, and zstd stores each in 49–65 % of its size (the state's pseudonyms and ids are
//! what does not shrink). Files of the uncompressed layout written before stay readable
//! ([`Format::reads_plain`]).
//!
//! A file is written under a temporary name and renamed, so that a running reader never sees
//! half of one. Reading checks the kind and the digest; whether the log still has that hash at
//! that position is for the caller to check.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::store::{sync_directory, StoreError};
use crate::Head;

/// The kind, the position, the chain hash at that position, the SHA-256 of the stored body.
pub(crate) const HEADER_BYTES: usize = 8 + 8 + 32 + 32;

/// The header of a compressed body: [`HEADER_BYTES`] and the body's length before compression
/// (u64 big-endian), so that a reader allocates it once and knows a body cut short.
pub(crate) const COMPRESSED_HEADER_BYTES: usize = HEADER_BYTES + 8;

/// zstd's level for the bodies: its fastest regular level. On a ten-year checkpoint (149 MB)
/// level 1 gave 79.6 MB in 0.40 s of a core and level 3 76.7 MB in 0.60 s; the bodies are
/// written off the writer's thread but beside it on two cores, so the cheaper one.
const COMPRESSION_LEVEL: i32 = 1;

/// What a file is and the version of its header: its first 8 bytes.
pub(crate) type Kind = [u8; 8];

/// How the files of one use are laid out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Format {
    /// The first 8 bytes of the files written.
    pub(crate) kind: Kind,
    /// Whether the body is stored as one zstd frame.
    pub(crate) compressed: bool,
    /// The kind of the files written before the body was compressed, still read: the same body,
    /// stored as it is.
    pub(crate) reads_plain: Option<Kind>,
}

impl Format {
    fn header_bytes(&self) -> usize {
        if self.compressed {
            COMPRESSED_HEADER_BYTES
        } else {
            HEADER_BYTES
        }
    }
}

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
    format: &Format,
    head: &Head,
    body: &[u8],
    durable: bool,
) -> Result<(), StoreError> {
    write_streamed(path, format, head, durable, &mut |out| out.write_all(body)).map(|_| ())
}

/// The body `encode` writes (one or many `write`s), reflecting `head`, to `path`, as [`write`]
/// does: the same file, but the body is never whole in memory. A ten-year checkpoint is 150 MB,
/// and its encoding was held in a `Vec` per part and then in the joined one, up to 350 MB
/// beside the state while serving. The header's digest (and length) is written last, once the
/// body is through. The length of the body, before compression.
pub(crate) fn write_streamed(
    path: &Path,
    format: &Format,
    head: &Head,
    durable: bool,
    encode: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<u64, StoreError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| StoreError::Io { path, source }
    };
    let temporary = path.with_extension("tmp");
    let written = write_temporary(&temporary, format, head, durable, encode);
    if written.is_err() {
        // Best effort: a leftover is replaced by the next write of the same file.
        let _ = fs::remove_file(&temporary);
    }
    let body_len = written?;
    fs::rename(&temporary, path).map_err(io_error(path))?;
    if durable {
        if let Some(dir) = path.parent() {
            sync_directory(dir)?;
        }
    }
    Ok(body_len)
}

/// The file of [`write_streamed`] under its temporary name, whole (and synced when `durable`);
/// the length of its body before compression.
fn write_temporary(
    temporary: &Path,
    format: &Format,
    head: &Head,
    durable: bool,
    encode: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<u64, StoreError> {
    let io_error = |source: io::Error| StoreError::Io {
        path: temporary.to_path_buf(),
        source,
    };
    let file = fs::File::create(temporary).map_err(io_error)?;
    let mut header = Vec::with_capacity(format.header_bytes());
    header.extend_from_slice(&format.kind);
    header.extend_from_slice(&head.position.to_be_bytes());
    header.extend_from_slice(&head.hash);
    // The digest's place (and the length's), filled once the body is written.
    header.resize(format.header_bytes(), 0);
    let mut body = Body {
        out: io::BufWriter::with_capacity(BODY_BUFFER_BYTES, file),
        hasher: Sha256::new(),
        unsynced: 0,
    };
    body.out.write_all(&header).map_err(io_error)?;
    let body_len = if format.compressed {
        let mut encoder =
            zstd::stream::write::Encoder::new(&mut body, COMPRESSION_LEVEL).map_err(io_error)?;
        let body_len = encode_counted(&mut encoder, encode).map_err(io_error)?;
        encoder.finish().map_err(io_error)?;
        header[HEADER_BYTES..].copy_from_slice(&body_len.to_be_bytes());
        body_len
    } else {
        encode_counted(&mut body, encode).map_err(io_error)?
    };
    let Body { out, hasher, .. } = body;
    let file = out
        .into_inner()
        .map_err(|error| io_error(error.into_error()))?;
    header[HEADER_BYTES - 32..HEADER_BYTES].copy_from_slice(&hasher.finalize());
    file.write_all_at(&header, 0).map_err(io_error)?;
    if durable {
        file.sync_data().map_err(io_error)?;
    }
    Ok(body_len)
}

/// Runs `encode` into `out`; the bytes it wrote (a body's length before compression).
fn encode_counted(
    out: &mut dyn Write,
    encode: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> io::Result<u64> {
    let mut counted = Counted {
        inner: out,
        bytes: 0,
    };
    encode(&mut counted)?;
    Ok(counted.bytes)
}

/// A writer that counts the bytes through it.
struct Counted<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
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
    let head = head_of(header);
    if header[48..80] != Sha256::digest(body)[..] {
        return Err((Some(head.position), "its body does not match its digest"));
    }
    Ok((head, body))
}

/// The position and chain hash a header names, after its kind: both layouts share its first
/// [`HEADER_BYTES`], which `header` holds at least.
fn head_of(header: &[u8]) -> Head {
    let mut position = [0; 8];
    position.copy_from_slice(&header[8..16]);
    let mut hash = [0; 32];
    hash.copy_from_slice(&header[16..48]);
    Head {
        position: u64::from_be_bytes(position),
        hash,
    }
}

/// [`decode`] of a file read whole, giving its body back in the same buffer: a checkpoint is
/// tens of megabytes, which a copy would hold twice at a start.
fn decode_owned(kind: &Kind, mut bytes: Vec<u8>) -> Result<(Head, Vec<u8>), Refused> {
    let head = decode(kind, &bytes)?.0;
    bytes.drain(..HEADER_BYTES);
    Ok((head, bytes))
}

/// Reads the file at `path` of `format` (or of its older plain layout), checked against its
/// kind, its digest and, when compressed, its length: the head it reflects and its body. The
/// outer error is the file's reading (`NotFound` when there is none); the inner one a file that
/// does not hold together.
///
/// A compressed body is decompressed as it is read and hashed, never held stored and
/// decompressed at once: a start holds the checkpoint's body and nothing more.
pub(crate) fn read(path: &Path, format: &Format) -> io::Result<Result<(Head, Vec<u8>), Refused>> {
    let mut file = fs::File::open(path)?;
    let stored_bytes = file.metadata()?.len();
    let mut kind: Kind = [0; 8];
    if let Some(short) = read_header_part(&mut file, &mut kind)? {
        return Ok(Err(short));
    }
    if format.compressed && kind == format.kind {
        return read_compressed(file, stored_bytes, kind);
    }
    let plain = if format.compressed {
        format.reads_plain
    } else {
        Some(format.kind)
    };
    match plain {
        Some(plain) if plain == kind => {
            let mut bytes = Vec::with_capacity(usize::try_from(stored_bytes).unwrap_or(0));
            bytes.extend_from_slice(&kind);
            file.read_to_end(&mut bytes)?;
            Ok(decode_owned(&plain, bytes))
        }
        _ => Ok(Err((None, "not a file of this kind and version"))),
    }
}

/// The rest of a compressed file whose kind was read.
fn read_compressed(
    mut file: fs::File,
    stored_bytes: u64,
    kind: Kind,
) -> io::Result<Result<(Head, Vec<u8>), Refused>> {
    let mut header = [0u8; COMPRESSED_HEADER_BYTES];
    header[..8].copy_from_slice(&kind);
    if let Some(short) = read_header_part(&mut file, &mut header[8..])? {
        return Ok(Err(short));
    }
    let head = head_of(&header);
    let mut digest = [0; 32];
    digest.copy_from_slice(&header[48..HEADER_BYTES]);
    let mut body_len = [0; 8];
    body_len.copy_from_slice(&header[HEADER_BYTES..]);
    let body_len = u64::from_be_bytes(body_len);
    let refused = |why| Ok(Err((Some(head.position), why)));
    let mut hashed = Hashed {
        inner: file,
        hasher: Sha256::new(),
        failed: None,
    };
    // The length comes from the header, which the digest does not cover: allocated up to a
    // plausible ratio only, and read no further than it plus one byte, so that a damaged length
    // costs neither an allocation of its size nor a body read past it.
    let stored_body = stored_bytes.saturating_sub(COMPRESSED_HEADER_BYTES as u64);
    let capacity = body_len.min(stored_body.saturating_mul(PREALLOCATED_RATIO_MAX));
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let decoded = match zstd::stream::read::Decoder::new(&mut hashed) {
        Ok(decoder) => {
            let mut decoder = decoder.single_frame();
            let read = decoder
                .by_ref()
                .take(body_len.saturating_add(1))
                .read_to_end(&mut body);
            // What the frame leaves (nothing, in a file this code wrote) is hashed too, so that
            // bytes appended to a file are refused by the digest.
            read.and_then(|_| io::copy(&mut decoder.finish(), &mut io::sink()))
        }
        Err(error) => Err(error),
    };
    if let Some(failed) = hashed.failed.take() {
        return Err(failed);
    }
    if decoded.is_err() {
        return refused("its body cannot be decompressed");
    }
    if hashed.hasher.finalize()[..] != digest {
        return refused("its body does not match its digest");
    }
    if body.len() as u64 != body_len {
        return refused("its body is not of the length its header gives");
    }
    Ok(Ok((head, body)))
}

/// How many times its stored size a compressed body is allocated at most before it is read:
/// the bodies here shrink about twice; a larger one grows its buffer as it is read.
const PREALLOCATED_RATIO_MAX: u64 = 8;

/// Fills `part` of a header from `file`; `Some` refusal when the file ends before.
fn read_header_part(file: &mut fs::File, part: &mut [u8]) -> io::Result<Option<Refused>> {
    match file.read_exact(part) {
        Ok(()) => Ok(None),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
            Ok(Some((None, "shorter than its header")))
        }
        Err(error) => Err(error),
    }
}

/// A file read through the hasher of its stored body. Its own read errors are kept aside, so
/// that a failing disk is told apart from a body the decoder refuses (which reaches the caller
/// as an `io::Error` too).
struct Hashed {
    inner: fs::File,
    hasher: Sha256,
    failed: Option<io::Error>,
}

impl Read for Hashed {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buffer) {
            Ok(read) => {
                self.hasher.update(&buffer[..read]);
                Ok(read)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(error),
            Err(error) => {
                let kind = error.kind();
                self.failed = Some(error);
                Err(io::Error::from(kind))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: &Kind = b"TESTKND1";
    /// The layout of `KIND`, bodies stored as they are.
    const PLAIN: Format = Format {
        kind: *KIND,
        compressed: false,
        reads_plain: None,
    };
    /// Its compressed successor, which still reads `KIND`'s files.
    const COMPRESSED: Format = Format {
        kind: *b"TESTKND2",
        compressed: true,
        reads_plain: Some(*KIND),
    };

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
            write(&path, &PLAIN, &head, &body, durable).expect("written");
            let bytes = fs::read(&path).expect("read");
            assert_eq!(bytes.len(), HEADER_BYTES + body.len());
            assert_eq!(decode(KIND, &bytes), Ok((head, &body[..])));
        }
        write(&path, &PLAIN, &head, b"", true).expect("an empty body is written");
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
        write(&whole, &PLAIN, &head, &body, true).expect("written whole");
        write_streamed(&pieces, &PLAIN, &head, true, &mut |out| {
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
        let refused = write_streamed(&failed, &PLAIN, &head, true, &mut |out| {
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
            write(&path, &PLAIN, &head, b"projections", durable).expect("written");
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

    /// A body shaped like the projections' encoding: repeated structure and some noise.
    fn sample_body(len: usize) -> Vec<u8> {
        (0..len)
            .map(|index| match index % 7 {
                0 => (index / 7 % 256) as u8,
                _ => b"company"[index % 7],
            })
            .collect()
    }

    #[test]
    fn a_compressed_body_reads_back_as_written_and_is_stored_smaller() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("file");
        let head = Head {
            position: 13,
            hash: [5; 32],
        };
        for len in [0, 1, 1_000, SYNC_BYTES_MAX + 3] {
            let body = sample_body(len);
            for durable in [false, true] {
                write(&path, &COMPRESSED, &head, &body, durable).expect("written");
                assert_eq!(
                    read(&path, &COMPRESSED).expect("read"),
                    Ok((head, body.clone()))
                );
                assert!(!path.with_extension("tmp").exists());
            }
            let stored = fs::metadata(&path).expect("stored").len() as usize;
            if len > SYNC_BYTES_MAX {
                assert!(
                    stored < COMPRESSED_HEADER_BYTES + len / 2,
                    "{stored} of {len}"
                );
            }
        }
        // In pieces, as an encoder writes: the same body.
        let body = sample_body(100_000);
        let body_len = write_streamed(&path, &COMPRESSED, &head, true, &mut |out| {
            body.chunks(333).try_for_each(|piece| out.write_all(piece))
        })
        .expect("written in pieces");
        assert_eq!(body_len, body.len() as u64);
        assert_eq!(read(&path, &COMPRESSED).expect("read"), Ok((head, body)));
    }

    #[test]
    fn a_file_of_the_plain_layout_is_still_read_and_one_of_another_kind_is_refused() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("file");
        let head = Head {
            position: 21,
            hash: [8; 32],
        };
        write(&path, &PLAIN, &head, b"written before", true).expect("written");
        assert_eq!(
            read(&path, &COMPRESSED).expect("read"),
            Ok((head, b"written before".to_vec()))
        );
        assert_eq!(
            read(&path, &PLAIN).expect("read"),
            Ok((head, b"written before".to_vec()))
        );
        // A reader of the plain layout alone does not know the compressed one.
        write(&path, &COMPRESSED, &head, b"written now", true).expect("written");
        assert_eq!(
            read(&path, &PLAIN).expect("read"),
            Err((None, "not a file of this kind and version"))
        );
        let other = Format {
            kind: *b"OTHERKND",
            compressed: true,
            reads_plain: None,
        };
        assert_eq!(
            read(&path, &other).expect("read"),
            Err((None, "not a file of this kind and version"))
        );
        fs::write(&path, b"TEST").expect("written");
        assert_eq!(
            read(&path, &COMPRESSED).expect("read"),
            Err((None, "shorter than its header"))
        );
        let missing = read(&dir.path().join("missing"), &COMPRESSED).expect_err("no file");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_compressed_file_with_any_byte_changed_cut_or_lengthened_is_refused() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("file");
        let head = Head {
            position: 34,
            hash: [6; 32],
        };
        let body = sample_body(10_000);
        write(&path, &COMPRESSED, &head, &body, false).expect("written");
        let written = fs::read(&path).expect("read");
        // Every byte after the kind: the position, the chain hash, the digest, the length, the
        // frame. A change of the position or the chain hash is the caller's to see (it names
        // another place of the log); every other one is refused here.
        for index in 8..written.len() {
            let mut damaged = written.clone();
            damaged[index] ^= 0x10;
            fs::write(&path, &damaged).expect("written");
            let outcome = read(&path, &COMPRESSED).expect("read");
            if index < 48 {
                let (read_head, read_body) = outcome.expect("the caller checks the head");
                assert_ne!(read_head, head);
                assert_eq!(read_body, body);
            } else {
                let (position, _why) = outcome.expect_err("a damaged byte");
                assert_eq!(position, Some(34), "byte {index}");
            }
        }
        let mut cut = written.clone();
        cut.truncate(written.len() - 1);
        fs::write(&path, &cut).expect("written");
        assert!(read(&path, &COMPRESSED).expect("read").is_err());
        let mut lengthened = written.clone();
        lengthened.push(0);
        fs::write(&path, &lengthened).expect("written");
        assert_eq!(
            read(&path, &COMPRESSED).expect("read"),
            Err((Some(34), "its body does not match its digest"))
        );
        // A length that claims more than the body, far beyond what the file could hold, is
        // refused without allocating it.
        let mut claims_more = written.clone();
        claims_more[HEADER_BYTES..COMPRESSED_HEADER_BYTES].copy_from_slice(&u64::MAX.to_be_bytes());
        fs::write(&path, &claims_more).expect("written");
        assert_eq!(
            read(&path, &COMPRESSED).expect("read"),
            Err((Some(34), "its body is not of the length its header gives"))
        );
        fs::write(&path, &written).expect("written");
        assert_eq!(read(&path, &COMPRESSED).expect("read"), Ok((head, body)));
    }
}
