//! What the query calls need beyond the reports: for each provider, where its redemptions,
//! their reversals and its payouts are in the log. Positions only (8 bytes an event), never the
//! events themselves: a page of a listing reads its events back from the log, so the
//! projections stay as small as the reports need while a provider's history can be listed
//! page by page in log order.

use serde::{Deserialize, Serialize};

/// A provider's events, by log position, increasing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRecords {
    /// Positions of its `HoursRedeemed` and `RedemptionReversed` events.
    pub redemptions: Vec<u64>,
    /// Positions of its `PayoutRecorded` events.
    pub payouts: Vec<u64>,
}

/// The positions of `positions` (increasing) after `after`, at most `len_max` of them, and
/// whether more follow.
pub fn page_after(positions: &[u64], after: u64, len_max: usize) -> (&[u64], bool) {
    let start = positions.partition_point(|position| *position <= after);
    let rest = positions.get(start..).unwrap_or_default();
    if rest.len() > len_max {
        (rest.get(..len_max).unwrap_or_default(), true)
    } else {
        (rest, false)
    }
}

#[cfg(test)]
mod tests {
    use super::page_after;

    #[test]
    fn a_page_starts_after_the_cursor_and_says_whether_more_follow() {
        let positions = [3, 5, 8, 13];
        assert_eq!(page_after(&positions, 0, 2), (&[3, 5][..], true));
        assert_eq!(page_after(&positions, 5, 2), (&[8, 13][..], false));
        assert_eq!(page_after(&positions, 4, 10), (&[5, 8, 13][..], false));
        assert_eq!(page_after(&positions, 13, 2), (&[][..], false));
    }
}
