//! Following a log that another process writes (issue 19): a hot standby on PostgreSQL reads
//! the groups the writer commits and folds them into its own state, and its store's head must
//! move with them, though it never appends. What it is not: a way to write; the store's stream
//! versions and fingerprints stay as they were at open (a standby never prepares a group, and
//! it opens a fresh store, reading them again, when it becomes the writer).

use crate::chain::{ChainBreak, ChainBreakKind, Head};
use crate::store::{Store, StoreError};

impl Store {
    /// Moves the head of a store that follows a log written elsewhere to `head`, a later entry
    /// of that log the caller has read (checked against the chain) and folded. Refused as a
    /// chain break when the log holds no such entry: the follower's state must never be ahead
    /// of, or beside, the log it answers for.
    pub fn follow_to(&mut self, head: Head) -> Result<(), StoreError> {
        assert!(
            head.position >= self.head.position,
            "a follower's head never moves back"
        );
        if head.position == self.head.position {
            return Ok(());
        }
        let stored = self.reader().read_at(head.position)?;
        if stored.hash != head.hash {
            return Err(StoreError::ChainBroken(ChainBreak {
                position: head.position,
                kind: ChainBreakKind::HashMismatch {
                    stored: stored.hash,
                    computed: head.hash,
                },
            }));
        }
        self.head = head;
        Ok(())
    }
}
