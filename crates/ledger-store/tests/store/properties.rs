//! A property test: random groups of random commands, checked against a simple model.

use std::collections::HashMap;

use ledger_store::{Head, Store};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use crate::common::{command, uuid};

const STREAMS: [&str; 3] = ["budget/2025", "provider/AG-0012", "company/0403019261"];

/// Groups of commands; a command is the list of the streams of its events (possibly none).
fn groups() -> impl Strategy<Value = Vec<Vec<Vec<usize>>>> {
    vec(vec(vec(0..STREAMS.len(), 0..4), 1..4), 1..6)
}

proptest! {
    // Each case opens a sled database and syncs every group: a few dozen cases keep the test
    // to seconds while still mixing empty commands, shared streams and multi-command groups.
    // A failing case's seed is saved in the crate's tests/proptest-regressions/, which is
    // committed on purpose: every later run, everyone's, tries those cases first.
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/store-properties.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_groups_append_gap_free_and_verify(groups in groups()) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(dir.path()).expect("open a new log");

        // The model: how many events each stream has, and where each request starts.
        let mut model_versions: HashMap<&str, u64> = HashMap::new();
        let mut model_requests = Vec::new();
        let mut model_position = 0u64;
        let mut request_seed = 0u128;

        for group in &groups {
            let mut commands = Vec::new();
            for stream_indexes in group {
                request_seed += 1;
                let streams: Vec<&str> =
                    stream_indexes.iter().map(|index| STREAMS[*index]).collect();
                model_requests.push((request_seed, model_position + 1, streams.len() as u32));
                for stream in &streams {
                    *model_versions.entry(stream).or_default() += 1;
                }
                model_position += streams.len() as u64;
                commands.push(command(request_seed, &streams));
            }
            let recorded = store.append(commands).expect("append");
            prop_assert_eq!(recorded.len(), group.len());
        }
        drop(store);

        let store = Store::open(dir.path()).expect("reopen");
        let head = store.verify().expect("verify runs").expect("the chain holds");
        prop_assert_eq!(head, store.head());
        prop_assert_eq!(head.position, model_position);
        if model_position == 0 {
            prop_assert_eq!(head, Head::EMPTY);
        }

        let all = store.read_range(1, usize::MAX).expect("read");
        let positions: Vec<u64> = all.iter().map(|event| event.position).collect();
        prop_assert_eq!(positions, (1..=model_position).collect::<Vec<_>>());

        for stream in STREAMS {
            let expected = model_versions.get(stream).copied().unwrap_or_default();
            prop_assert_eq!(store.stream_version(stream).expect("version"), expected);
            let versions: Vec<u64> = all
                .iter()
                .filter(|event| event.event.stream == stream)
                .map(|event| event.event.stream_version)
                .collect();
            prop_assert_eq!(versions, (1..=expected).collect::<Vec<_>>());
        }
        for (seed, first_position, event_count) in model_requests {
            let record = store.request(uuid(seed)).expect("request").expect("recorded");
            let stored = (record.first_position, record.event_count);
            prop_assert_eq!(stored, (first_position, event_count));
        }
    }
}
