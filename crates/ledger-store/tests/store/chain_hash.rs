//! `chain_hash` against vectors computed without this crate.

use ledger_store::chain_hash;
use sha2::{Digest, Sha256};

#[test]
fn chain_hash_matches_a_vector_computed_elsewhere() {
    // Computed with Python: hashlib.sha256(b"\0" * 32 + struct.pack(">Q", 1) + b"voucher-ledger")
    let first = chain_hash(&[0u8; 32], 1, b"voucher-ledger");
    assert_eq!(
        hex::encode(first),
        "cfb808621ca0f4b5934545fa655db76c1f130f7ce6af41498dfdb9b2892a1287"
    );
    // The same, chained on with empty event bytes at position 2.
    assert_eq!(
        hex::encode(chain_hash(&first, 2, b"")),
        "2ec3d36f545b3d34746ac1adbd706632d4f9fd7bc5ea2fd1f421511cbff2b527"
    );
}

#[test]
fn chain_hash_is_sha256_of_prev_position_and_bytes() {
    let prev: [u8; 32] = core::array::from_fn(|index| index as u8);
    let position: u64 = 0x0102_0304_0506_0708;
    let event_bytes = b"\x08\x2a\x12\x0bbudget/2025";

    let mut input = Vec::new();
    input.extend_from_slice(&prev);
    input.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    input.extend_from_slice(event_bytes);
    let expected: [u8; 32] = Sha256::digest(&input).into();

    assert_eq!(chain_hash(&prev, position, event_bytes), expected);
}
