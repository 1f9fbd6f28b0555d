//! Year points: the budgets and the year summaries' figures kept every
//! [`YEAR_POINT_INTERVAL_EVENTS`] positions, so that a year summary `as_of` any position
//! reads one small index, its year's figures and at most one interval of the log (issue 12
//! item 4), instead of a snapshot of every projection and up to ~150 000 events.
//!
//! Layout, under the retained snapshots' folder (`data/projections/years/`): `index/` holds
//! one file per point, the budgets and, for each year, the point whose file holds that year's
//! summary figures as they stand at this point; `YYYY/` holds a year's figures, written only
//! at the points where they had moved since the point before (a closed year is written once,
//! not at every point). Each file is a retained snapshot (`RetainedSnapshots`: position, chain
//! hash, SHA-256 of the body, checked at every read), and like them derived data, written
//! without `fsync`: a missing, damaged or foreign file only sends the report down the longer
//! path of the full projections (`recovery::projections_as_of`).
//!
//! The writer records which years each durable event moved ([`ledger_projections::summary_year`],
//! the function the folds use) and, once the head passes the next point, hands a copy of those
//! years' figures to a thread of its own that writes them, so neither the encoding nor the files
//! hold up a group. After a start it does not know which years moved since the newest point, so
//! its first point writes every year.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc;

use ledger_domain::event::HoursRedeemed;
use ledger_domain::Event;
use ledger_projections::{
    summary_year, BudgetFigures, Projections, Trainee, YearFigures, YearSummaryFold,
};
use ledger_store::{Head, LogReader, RetainedSnapshots, StoreError};
use serde::{Deserialize, Serialize};

use crate::recovery::original_of;
use crate::{decode, StartError};

/// Positions between two year points. A year summary `as_of` a position replays at most this
/// many events after the point before it: about 55 ms at the ~180 000 events/s a replay reads
/// on this machine, within the 200 ms the issue asks. Each point writes the years that moved
/// (mostly the current one, ~1 MB after a full year of the scheme): ~100 bytes per event.
pub const YEAR_POINT_INTERVAL_EVENTS: u64 = 10_000;

/// First byte of every year point file: the version of its encoding. A file of another version
/// is passed over (the report takes the path of the full projections), never misread.
const YEAR_POINTS_FORMAT: u8 = 1;

const YEARS_DIR_NAME: &str = "years";
const INDEX_DIR_NAME: &str = "index";

/// A point's index: the budgets, and for each year the position of the point whose file holds
/// its figures as they stand at this point.
#[derive(Serialize, Deserialize)]
struct PointIndex {
    budgets: BTreeMap<i32, BudgetFigures>,
    holders: BTreeMap<i32, u64>,
}

/// The year points of one data folder.
#[derive(Clone, Debug)]
pub struct YearPoints {
    dir: PathBuf,
}

impl YearPoints {
    /// The year points kept beside `retained`, the retained snapshots of the projections.
    pub fn beside(retained: &RetainedSnapshots) -> YearPoints {
        YearPoints {
            dir: retained.dir().join(YEARS_DIR_NAME),
        }
    }

    fn index(&self) -> RetainedSnapshots {
        RetainedSnapshots::in_dir(self.dir.join(INDEX_DIR_NAME))
    }

    fn year(&self, year: i32) -> RetainedSnapshots {
        RetainedSnapshots::in_dir(self.dir.join(year.to_string()))
    }

    /// Every folder of year points (the index's and each year's).
    fn folders(&self) -> Result<Vec<RetainedSnapshots>, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        Ok(entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .map(|entry| RetainedSnapshots::in_dir(entry.path()))
            .collect())
    }

    /// Removes the points beyond `head`, the head of the log at open: they are of another log
    /// (a folder restored from an older backup).
    pub fn forget_beyond(&self, head: u64) -> Result<(), StoreError> {
        for folder in self.folders()? {
            for beyond in folder
                .positions()?
                .into_iter()
                .filter(|saved| *saved > head)
            {
                folder.remove(beyond)?;
            }
        }
        Ok(())
    }

    /// Writes a point: the years' files first, then the index that names them, so that an
    /// index is never read before the files it names are there.
    fn save(&self, point: &PointToSave) -> Result<(), StoreError> {
        for (year, figures) in &point.years {
            let mut body = vec![YEAR_POINTS_FORMAT];
            body.extend(figures.summary_bytes());
            self.year(*year).save(&point.head, &body)?;
        }
        let index = PointIndex {
            budgets: point.budgets.clone(),
            holders: point.holders.clone(),
        };
        let mut body = vec![YEAR_POINTS_FORMAT];
        // Serializing plain data into a Vec cannot fail.
        body.extend(postcard::to_stdvec(&index).unwrap_or_default());
        self.index().save(&point.head, &body)
    }

    /// The budgets and `year`'s summary figures as of `position` (at most the head): from the
    /// newest point at or before it and the events after it. `None` when no usable point is
    /// there (none yet, or a file missing, damaged, of another log or of another version):
    /// the caller then takes the path of the full projections.
    pub fn summary_as_of(
        &self,
        reader: &LogReader,
        position: u64,
        year: i32,
    ) -> Result<Option<YearSummaryFold>, StartError> {
        let Some(index) = self.index().latest_at_or_before(position, reader)? else {
            return Ok(None);
        };
        let Some(PointIndex { budgets, holders }) =
            body_of(&index.body).and_then(|bytes| postcard::from_bytes::<PointIndex>(bytes).ok())
        else {
            tracing::warn!(
                position = index.head.position,
                "year point index of another encoding; using the full projections"
            );
            return Ok(None);
        };
        let figures = match holders.get(&year) {
            // No event of the year's summary before this point.
            None => YearFigures::default(),
            Some(&holder) => {
                let Some(saved) = self.year(year).at(holder, reader)? else {
                    return Ok(None);
                };
                match body_of(&saved.body).and_then(YearFigures::from_summary_bytes) {
                    Some(figures) => figures,
                    None => {
                        tracing::warn!(
                            year,
                            position = holder,
                            "year point of another encoding; using the full projections"
                        );
                        return Ok(None);
                    }
                }
            }
        };
        let mut summary = YearSummaryFold {
            position: index.head.position,
            year,
            budgets,
            figures,
        };
        for recorded in reader.iter(summary.position + 1, position) {
            let recorded = recorded?;
            let position = recorded.position;
            let event =
                decode(&recorded).map_err(|source| StartError::Undecodable { position, source })?;
            let original = original_of(reader, position, &event)?;
            summary
                .apply(
                    position,
                    &event,
                    original.as_ref().map(|redeemed| &redeemed.event),
                )
                .map_err(|source| StartError::Projection { source })?;
        }
        Ok(Some(summary))
    }
}

fn body_of(bytes: &[u8]) -> Option<&[u8]> {
    match bytes.split_first() {
        Some((&YEAR_POINTS_FORMAT, rest)) => Some(rest),
        _ => None,
    }
}

/// What the writer hands to the thread that writes a point.
#[derive(Debug)]
struct PointToSave {
    head: Head,
    budgets: BTreeMap<i32, BudgetFigures>,
    /// The years whose figures moved since the point before, with their summary figures.
    years: Vec<(i32, YearFigures)>,
    holders: BTreeMap<i32, u64>,
}

/// Points waiting for the thread that writes them: one at most. When the thread is behind,
/// the writer keeps the years that moved and tries again after the next group.
const POINTS_IN_FLIGHT_MAX: usize = 1;

/// The writer's side of the year points: which years moved, when the next point is due, and
/// the thread that writes them.
#[derive(Debug)]
pub struct YearPointWriter {
    interval_events: u64,
    /// The head at or past which the next point is written.
    next_position: u64,
    /// Years whose summary figures moved since the last point written.
    moved: BTreeSet<i32>,
    /// After a start: which years moved since the newest point is unknown, so all did.
    all_moved: bool,
    /// For each year, the point whose file holds its figures as they stand.
    holders: BTreeMap<i32, u64>,
    /// `None` once the thread is gone (no point is written any more; reports take the longer
    /// path).
    sender: Option<mpsc::SyncSender<PointToSave>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for YearPointWriter {
    /// Lets the thread write the point it was handed, so that a stopped engine leaves its
    /// folder as it will stay (the point is small: a few milliseconds).
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl YearPointWriter {
    /// The writer of `points`, for a log whose head is `head` (points beyond it are removed).
    pub fn start(points: YearPoints, head: u64, interval_events: u64) -> YearPointWriter {
        if let Err(error) = points.forget_beyond(head) {
            tracing::warn!(%error, head, "year points beyond the head not removed");
        }
        let (sender, jobs) = mpsc::sync_channel::<PointToSave>(POINTS_IN_FLIGHT_MAX);
        let saver = points.clone();
        let thread = std::thread::Builder::new()
            .name("ledger-year-points".into())
            .spawn(move || {
                for point in jobs {
                    if let Err(error) = saver.save(&point) {
                        // A missing point costs a longer replay of an `as_of` summary, nothing
                        // more.
                        tracing::warn!(%error, position = point.head.position, "year point not saved");
                    }
                }
            })
            .map_err(|error| tracing::warn!(%error, "year points thread not started"))
            .ok();
        let sender = thread.as_ref().map(|_| sender);
        let interval_events = interval_events.max(1);
        YearPointWriter {
            interval_events,
            next_position: (head / interval_events + 1) * interval_events,
            moved: BTreeSet::new(),
            all_moved: true,
            holders: BTreeMap::new(),
            sender,
            thread,
        }
    }

    /// Notes the year whose summary a durable event moved; `reversed` is the redemption a
    /// reversal takes back.
    pub fn note(&mut self, event: &Event, reversed: Option<&HoursRedeemed>) {
        if let Some(year) = summary_year(event, reversed.map(Trainee::of).as_ref()) {
            self.moved.insert(year);
        }
    }

    /// After a group folded into `projections` (whose position is the durable head `head`):
    /// hands a point to the thread when one is due.
    pub fn after_group(&mut self, projections: &Projections, head: &Head) {
        if head.position < self.next_position || head.position != projections.position {
            return;
        }
        let Some(sender) = &self.sender else {
            return;
        };
        let moved: Vec<i32> = if self.all_moved {
            projections.years.keys().copied().collect()
        } else {
            self.moved.iter().copied().collect()
        };
        let mut holders = self.holders.clone();
        let years = moved
            .into_iter()
            .filter_map(|year| {
                let figures = projections.years.get(&year)?;
                holders.insert(year, head.position);
                Some((year, figures.summary_only()))
            })
            .collect();
        let point = PointToSave {
            head: *head,
            budgets: projections.budgets.clone(),
            years,
            holders,
        };
        let holders = point.holders.clone();
        match sender.try_send(point) {
            Ok(()) => {
                self.holders = holders;
                self.moved.clear();
                self.all_moved = false;
                self.next_position =
                    (head.position / self.interval_events + 1) * self.interval_events;
            }
            // The thread is still writing the last one: try again after the next group.
            Err(mpsc::TrySendError::Full(_)) => {}
            Err(mpsc::TrySendError::Disconnected(_)) => {
                tracing::warn!("year points thread stopped; no more year points are written");
                self.sender = None;
            }
        }
    }
}

/// The year points a rebuild leaves on its way (see [`crate::recovery::rebuild`]), so that a
/// log that had none (written by an earlier version) has them afterwards. With no writer to
/// say which years moved, a year's figures are written again when their bytes differ from the
/// last ones written.
#[derive(Debug)]
pub struct RebuiltYearPoints {
    points: YearPoints,
    /// For each year, the bytes last written and the point holding them.
    written: BTreeMap<i32, (Vec<u8>, u64)>,
}

impl RebuiltYearPoints {
    pub fn new(points: YearPoints) -> RebuiltYearPoints {
        RebuiltYearPoints {
            points,
            written: BTreeMap::new(),
        }
    }

    /// Writes the point of `projections`, taken at `head`.
    pub fn save(&mut self, projections: &Projections, head: &Head) -> Result<(), StoreError> {
        let mut years = Vec::new();
        for (year, figures) in &projections.years {
            let bytes = figures.summary_bytes();
            if self
                .written
                .get(year)
                .is_some_and(|(written, _)| *written == bytes)
            {
                continue;
            }
            let mut body = vec![YEAR_POINTS_FORMAT];
            body.extend_from_slice(&bytes);
            self.points.year(*year).save(head, &body)?;
            years.push((*year, bytes));
        }
        for (year, bytes) in years {
            self.written.insert(year, (bytes, head.position));
        }
        let index = PointIndex {
            budgets: projections.budgets.clone(),
            holders: self
                .written
                .iter()
                .map(|(year, (_, holder))| (*year, *holder))
                .collect(),
        };
        let mut body = vec![YEAR_POINTS_FORMAT];
        body.extend(postcard::to_stdvec(&index).unwrap_or_default());
        self.points.index().save(head, &body)
    }
}
