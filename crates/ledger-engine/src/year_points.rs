//! Year points: the parts of the projections the year reports need, kept every
//! [`YEAR_POINT_INTERVAL_EVENTS`] positions, so that a year summary, budget, companies or
//! training hours report `as_of` any position reads one small index, the parts it needs and at
//! most one interval of the log (issue 12 item 4), instead of a snapshot of every projection
//! and up to ~150 000 events.
//!
//! Layout, under the retained snapshots' folder (`data/projections/years/`): `index/` holds
//! one file per point, the budgets and, for each part, the point whose file holds it as it
//! stands at this point; `YYYY/` holds a year's whole figures, `registered-YYYY/` the
//! registrations for a year, `modules/` the modules' themes, each written only at the points
//! where it had moved since the point before (a closed year is written once, not at every
//! point). Each file is a retained snapshot (`RetainedSnapshots`: position, chain hash, SHA-256
//! of the body, checked at every read), and like them derived data, written without `fsync`:
//! a missing, damaged, foreign or older-version file only sends the report down the longer
//! path of the full projections (`recovery::projections_as_of`).
//!
//! The writer records which parts each durable event moved ([`ledger_projections::summary_year`],
//! the function the folds use; a registration's year; a module's approval; the years the newly
//! registered companies have hours in, whose hours by sector may have moved) and, once the head
//! passes the next point, hands a copy of those parts to a thread of its own that writes them,
//! so neither the encoding nor the files hold up a group. After a start it does not know which
//! parts moved since the newest point, so its first point writes every one.
//!
//! What it hands over is kept small: a year's figures hold a set of every worker and company of
//! the year (tens of thousands of entries), and copying them whole at every point cost the
//! writer in proportion to the year's size. The thread keeps its own copy of the figures of the
//! years the last point wrote ([`YearMirror`]); the writer hands it a year whole only the first
//! time (after a start, or when a year moves again after a point without it), and otherwise
//! only the entries of the companies and workers the year's events named since the point
//! before, as they stand at the head ([`YearDelta`]), which the thread folds into its copy
//! before writing the year's whole figures, as before: the files do not change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc;

use imbl::{OrdMap, OrdSet};
use ledger_domain::event::HoursRedeemed;
use ledger_domain::{EnterpriseNumber, Event, WorkerPseudonym};
use ledger_projections::year_summary::fold_budgets;
use ledger_projections::{
    summary_year, BudgetFigures, HoursBreakdown, Projections, Trainee, YearFigures, YearReportFold,
    YearSummaryFold,
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
/// 2: a year's file holds its whole figures (the hours' breakdowns too), and the index names
/// the registrations' and the modules' files (the budget, companies and hours reports).
const YEAR_POINTS_FORMAT: u8 = 2;

const YEARS_DIR_NAME: &str = "years";
const INDEX_DIR_NAME: &str = "index";
const MODULES_DIR_NAME: &str = "modules";
/// Prefix of a registration year's folder (`registered-2024`).
const REGISTERED_DIR_PREFIX: &str = "registered-";

/// A point's index: the budgets, and for each part (a year's figures, a year's registrations,
/// the modules) the position of the point whose file holds it as it stands at this point.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct PointIndex {
    budgets: OrdMap<i32, BudgetFigures>,
    /// A year's whole figures (`YYYY/`).
    holders: BTreeMap<i32, u64>,
    /// The registrations for a year (`registered-YYYY/`).
    registrations: BTreeMap<i32, u64>,
    /// The modules' themes (`modules/`); `None` before the first module.
    modules: Option<u64>,
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

    fn registered(&self, year: i32) -> RetainedSnapshots {
        RetainedSnapshots::in_dir(self.dir.join(format!("{REGISTERED_DIR_PREFIX}{year}")))
    }

    fn modules(&self) -> RetainedSnapshots {
        RetainedSnapshots::in_dir(self.dir.join(MODULES_DIR_NAME))
    }

    /// Every folder of year points (the index's and each part's).
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

    /// Writes a point: the parts' files first, then the index that names them, so that an
    /// index is never read before the files it names are there. `mirror` holds the whole
    /// figures of the point's years (see [`YearMirror::take`]).
    fn save(&self, point: &PointToSave, mirror: &YearMirror) -> Result<(), StoreError> {
        for year in point.years.iter().map(|(year, _)| year) {
            if let Some(figures) = mirror.years.get(year) {
                self.year(*year)
                    .save(&point.head, &versioned(&figures.to_bytes()))?;
            }
        }
        for (year, bytes) in &point.registrations {
            self.registered(*year)
                .save(&point.head, &versioned(bytes))?;
        }
        if let Some(bytes) = &point.modules {
            self.modules().save(&point.head, &versioned(bytes))?;
        }
        self.index()
            .save(&point.head, &versioned(&encode(&point.index)))
    }

    /// The newest usable point's index at or before `position`, with its position.
    fn index_at_or_before(
        &self,
        reader: &LogReader,
        position: u64,
    ) -> Result<Option<(u64, PointIndex)>, StartError> {
        let Some(index) = self.index().latest_at_or_before(position, reader)? else {
            return Ok(None);
        };
        match body_of(&index.body).and_then(|bytes| postcard::from_bytes::<PointIndex>(bytes).ok())
        {
            Some(decoded) => Ok(Some((index.head.position, decoded))),
            None => {
                tracing::warn!(
                    position = index.head.position,
                    "year point index of another encoding; using the full projections"
                );
                Ok(None)
            }
        }
    }

    /// The body of a part's file saved at `holder`, checked and of this version; `None` (in
    /// the log) when it is missing, damaged, of another log or of another encoding.
    fn part(
        &self,
        folder: RetainedSnapshots,
        holder: u64,
        reader: &LogReader,
    ) -> Result<Option<Vec<u8>>, StartError> {
        let Some(saved) = folder.at(holder, reader)? else {
            return Ok(None);
        };
        match body_of(&saved.body) {
            Some(body) => Ok(Some(body.to_vec())),
            None => {
                tracing::warn!(
                    folder = %folder.dir().display(),
                    position = holder,
                    "year point of another encoding; using the full projections"
                );
                Ok(None)
            }
        }
    }

    /// `year`'s whole figures as the index names them (none when no event of the year came
    /// before the point); `None` when the file is not usable.
    fn figures(
        &self,
        index: &PointIndex,
        year: i32,
        reader: &LogReader,
    ) -> Result<Option<YearFigures>, StartError> {
        let Some(&holder) = index.holders.get(&year) else {
            return Ok(Some(YearFigures::default()));
        };
        Ok(self
            .part(self.year(year), holder, reader)?
            .and_then(|bytes| YearFigures::from_bytes(&bytes)))
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
        let Some((point, index)) = self.index_at_or_before(reader, position)? else {
            return Ok(None);
        };
        let Some(figures) = self.figures(&index, year, reader)? else {
            return Ok(None);
        };
        let mut summary = YearSummaryFold {
            position: point,
            year,
            budgets: index.budgets,
            figures: figures.summary_only(),
        };
        replay(
            reader,
            summary.position + 1,
            position,
            |at, event, reversed| summary.apply(at, event, reversed),
        )?;
        Ok(Some(summary))
    }

    /// The budgets as of `position` (at most the head): the newest point's index and the
    /// budget events after it. `None` as for [`YearPoints::summary_as_of`].
    pub fn budgets_as_of(
        &self,
        reader: &LogReader,
        position: u64,
    ) -> Result<Option<BudgetsAsOf>, StartError> {
        let Some((point, index)) = self.index_at_or_before(reader, position)? else {
            return Ok(None);
        };
        let mut budgets = BudgetsAsOf {
            position: point,
            budgets: index.budgets,
        };
        replay(reader, point + 1, position, |at, event, _| {
            fold_budgets(&mut budgets.budgets, event);
            budgets.position = at;
            Ok(())
        })?;
        Ok(Some(budgets))
    }

    /// The budgets, `year`'s whole figures and what they are broken down by, as of `position`
    /// (at most the head): what the budget, companies and training hours reports of `year`
    /// need, from the newest point at or before it and the events after it. `None` as for
    /// [`YearPoints::summary_as_of`].
    pub fn report_as_of(
        &self,
        reader: &LogReader,
        position: u64,
        year: i32,
    ) -> Result<Option<YearReportFold>, StartError> {
        let Some((point, index)) = self.index_at_or_before(reader, position)? else {
            return Ok(None);
        };
        let Some(figures) = self.figures(&index, year, reader)? else {
            return Ok(None);
        };
        let mut registrations = Vec::with_capacity(index.registrations.len());
        for (&registration_year, &holder) in &index.registrations {
            let Some(bytes) = self.part(self.registered(registration_year), holder, reader)? else {
                return Ok(None);
            };
            registrations.push((registration_year, bytes));
        }
        let modules = match index.modules {
            None => None,
            Some(holder) => match self.part(self.modules(), holder, reader)? {
                Some(bytes) => Some(bytes),
                None => return Ok(None),
            },
        };
        let Some(mut report) = YearReportFold::from_parts(
            point,
            year,
            index.budgets,
            figures,
            registrations
                .iter()
                .map(|(registration_year, bytes)| (*registration_year, bytes.as_slice())),
            modules.as_deref(),
        ) else {
            tracing::warn!(
                position = point,
                "year point parts of another encoding; using the full projections"
            );
            return Ok(None);
        };
        replay(
            reader,
            report.position + 1,
            position,
            |at, event, reversed| report.apply(at, event, reversed),
        )?;
        Ok(Some(report))
    }
}

/// The budgets as of a position: what the budget report needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetsAsOf {
    pub position: u64,
    pub budgets: OrdMap<i32, BudgetFigures>,
}

/// Folds the events `from_position..=last_position` of the log with `apply`, each with the
/// redemption a reversal takes back.
fn replay(
    reader: &LogReader,
    from_position: u64,
    last_position: u64,
    mut apply: impl FnMut(
        u64,
        &Event,
        Option<&HoursRedeemed>,
    ) -> Result<(), ledger_projections::ProjectionError>,
) -> Result<(), StartError> {
    for recorded in reader.iter(from_position, last_position) {
        let recorded = recorded?;
        let position = recorded.position;
        let event =
            decode(&recorded).map_err(|source| StartError::Undecodable { position, source })?;
        let original = original_of(reader, position, &event)?;
        apply(
            position,
            &event,
            original.as_ref().map(|redeemed| &redeemed.event),
        )
        .map_err(|source| StartError::Projection { source })?;
    }
    Ok(())
}

fn body_of(bytes: &[u8]) -> Option<&[u8]> {
    match bytes.split_first() {
        Some((&YEAR_POINTS_FORMAT, rest)) => Some(rest),
        _ => None,
    }
}

/// `bytes` behind the version byte of the year points' files.
fn versioned(bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes.len() + 1);
    body.push(YEAR_POINTS_FORMAT);
    body.extend_from_slice(bytes);
    body
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

/// What the writer hands to the thread that writes a point.
#[derive(Debug)]
struct PointToSave {
    head: Head,
    /// The years whose figures moved since the point before: whole, or what moved.
    years: Vec<(i32, YearPart)>,
    /// The registration years whose registrations moved, encoded.
    registrations: Vec<(i32, Vec<u8>)>,
    /// The modules, when they moved, encoded.
    modules: Option<Vec<u8>>,
    index: PointIndex,
}

/// Points waiting for the thread that writes them: one at most. When the thread is behind,
/// the writer keeps the years that moved and tries again after the next group.
const POINTS_IN_FLIGHT_MAX: usize = 1;

/// A year's figures as a point hands them to the thread that writes it.
#[derive(Debug)]
enum YearPart {
    /// The whole figures: the thread does not hold the year (see [`YearMirror`]).
    Whole(Box<YearFigures>),
    /// What moved since the point before, which the thread holds the year as of.
    Delta(YearDelta),
}

/// What moved in a year's figures since the point before: the entries of the companies and
/// workers its events named, as they stand at the point (`None`: no entry), and the small
/// parts whole. Folded into the figures of the point before by [`YearDelta::fold_into`], it
/// gives the figures at the point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct YearDelta {
    companies: Vec<CompanyEntries>,
    workers: Vec<(WorkerPseudonym, Option<u32>)>,
    vouchers_issued: u64,
    hours: HoursBreakdown,
}

/// A company's entries in a year's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CompanyEntries {
    enterprise_number: EnterpriseNumber,
    registered: bool,
    holding: bool,
    benefiting: Option<u32>,
    hours: Option<u64>,
}

impl YearDelta {
    /// The entries of `touched` in `figures`, the year's figures at the point.
    fn of(figures: &YearFigures, touched: &mut Touched) -> YearDelta {
        touched.companies.sort_unstable();
        touched.companies.dedup();
        touched.workers.sort_unstable();
        touched.workers.dedup();
        YearDelta {
            companies: touched
                .companies
                .iter()
                .map(|company| CompanyEntries {
                    enterprise_number: company.clone(),
                    registered: figures.registered.contains(company),
                    holding: figures.holding.contains(company),
                    benefiting: figures.benefiting.get(company).copied(),
                    hours: figures.hours_by_company.get(company).copied(),
                })
                .collect(),
            workers: touched
                .workers
                .iter()
                .map(|worker| (*worker, figures.workers.get(worker).copied()))
                .collect(),
            vouchers_issued: figures.vouchers_issued,
            hours: figures.hours.clone(),
        }
    }

    /// Brings `figures`, the year's figures at the point before, to those of this point.
    fn fold_into(self, figures: &mut YearFigures) {
        fn set<K: Ord + Clone, V: Clone>(map: &mut OrdMap<K, V>, key: K, value: Option<V>) {
            match value {
                Some(value) => {
                    map.insert(key, value);
                }
                None => {
                    map.remove(&key);
                }
            }
        }
        fn keep<K: Ord + Clone>(set: &mut OrdSet<K>, key: K, present: bool) {
            if present {
                set.insert(key);
            } else {
                set.remove(&key);
            }
        }
        for entries in self.companies {
            let company = entries.enterprise_number;
            keep(&mut figures.registered, company.clone(), entries.registered);
            keep(&mut figures.holding, company.clone(), entries.holding);
            set(&mut figures.benefiting, company.clone(), entries.benefiting);
            set(&mut figures.hours_by_company, company, entries.hours);
        }
        for (worker, count) in self.workers {
            set(&mut figures.workers, worker, count);
        }
        figures.vouchers_issued = self.vouchers_issued;
        figures.hours = self.hours;
    }
}

/// The companies and workers a year's events named since the point before (with repeats,
/// sorted out once at the point: a push per event costs less than a set's insert).
#[derive(Debug, Default)]
struct Touched {
    companies: Vec<EnterpriseNumber>,
    workers: Vec<WorkerPseudonym>,
}

impl Touched {
    /// Notes the companies and workers `event` names in the figures of its summary's year;
    /// `reversed` is the redemption a reversal takes back.
    fn note(&mut self, event: &Event, reversed: Option<&HoursRedeemed>) {
        match event {
            Event::CompanyRegistered(e) => self.companies.push(e.enterprise_number.clone()),
            Event::VouchersIssued(e) => self.companies.push(e.enterprise_number.clone()),
            Event::HoursRedeemed(e) => {
                self.companies.push(e.enterprise_number.clone());
                self.workers.push(e.worker);
            }
            Event::RedemptionReversed(_) => {
                if let Some(original) = reversed {
                    self.companies.push(original.enterprise_number.clone());
                    self.workers.push(original.worker);
                }
            }
            _ => {}
        }
    }
}

/// The whole figures of the years the last point wrote, as of that point: what the thread
/// that writes the points folds the next point's deltas into. Only those years: a year that
/// did not move at a point is let go (and handed whole again if it moves later), so the copy
/// stays as small as what moves (the current year, and the one before while its late
/// registrations and reversals come in).
#[derive(Debug, Default)]
struct YearMirror {
    years: BTreeMap<i32, YearFigures>,
}

impl YearMirror {
    /// Takes the point's years: a whole year replaces the copy, a delta is folded into it, and
    /// the years the point does not name are let go.
    fn take(&mut self, parts: &mut [(i32, YearPart)]) {
        let mut kept = BTreeMap::new();
        for (year, part) in parts.iter_mut() {
            let part = std::mem::replace(part, YearPart::Delta(YearDelta::default()));
            let figures = match part {
                YearPart::Whole(figures) => *figures,
                YearPart::Delta(delta) => {
                    // The writer hands a delta only for a year it handed at the point before.
                    let mut figures = self.years.remove(year).unwrap_or_default();
                    delta.fold_into(&mut figures);
                    figures
                }
            };
            kept.insert(*year, figures);
        }
        self.years = kept;
    }
}

/// The writer's side of the year points: which parts moved, when the next point is due, and
/// the thread that writes them.
#[derive(Debug)]
pub struct YearPointWriter {
    interval_events: u64,
    /// The head at or past which the next point is written.
    next_position: u64,
    /// Years whose figures moved since the last point written.
    moved: BTreeSet<i32>,
    /// For each of them, the companies and workers its events named.
    touched: BTreeMap<i32, Touched>,
    /// The years the thread holds as of the last point written (those it wrote; see
    /// [`YearMirror`]): a year among them is handed as a delta.
    mirrored: BTreeSet<i32>,
    /// Debug builds: the writer's own copy of the thread's, each point checked against the
    /// projections, so that a delta that misses an entry fails the tests instead of writing
    /// figures that are wrong.
    #[cfg(debug_assertions)]
    mirror_check: YearMirror,
    /// Companies registered since the last point written: a registration may move the hours
    /// by sector of any year the company has hours in, which is known at the point.
    registered_companies: BTreeSet<EnterpriseNumber>,
    /// Registration years whose registrations moved since the last point written.
    registrations_moved: BTreeSet<i32>,
    /// Whether a module was approved since the last point written.
    modules_moved: bool,
    /// After a start: which parts moved since the newest point is unknown, so all did.
    all_moved: bool,
    /// Where each part's file stands (the index's holders).
    holders: PointIndex,
    /// `None` once the thread is gone (no point is written any more; reports take the longer
    /// path).
    sender: Option<mpsc::SyncSender<PointToSave>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Whether a due point waits for the thread (a rebuild) instead of trying again later.
    waits: bool,
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
        YearPointWriter::spawn(points, head, interval_events, false)
    }

    /// The writer of a rebuild's points (`recovery::rebuild`), from position 1: it waits for
    /// the thread rather than moving a point past its multiple of the interval, so that a
    /// rebuild leaves its points at the same positions however busy the machine; the caller
    /// removed the points beyond the head.
    pub fn start_waiting(points: YearPoints, interval_events: u64) -> YearPointWriter {
        YearPointWriter::spawn(points, 0, interval_events, true)
    }

    fn spawn(points: YearPoints, head: u64, interval_events: u64, waits: bool) -> YearPointWriter {
        let (sender, jobs) = mpsc::sync_channel::<PointToSave>(POINTS_IN_FLIGHT_MAX);
        let saver = points.clone();
        let thread = std::thread::Builder::new()
            .name("ledger-year-points".into())
            .spawn(move || {
                let mut mirror = YearMirror::default();
                for mut point in jobs {
                    mirror.take(&mut point.years);
                    if let Err(error) = saver.save(&point, &mirror) {
                        // A missing point costs a longer replay of an `as_of` report, nothing
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
            touched: BTreeMap::new(),
            mirrored: BTreeSet::new(),
            #[cfg(debug_assertions)]
            mirror_check: YearMirror::default(),
            registered_companies: BTreeSet::new(),
            registrations_moved: BTreeSet::new(),
            modules_moved: false,
            all_moved: true,
            holders: PointIndex::default(),
            sender,
            thread,
            waits,
        }
    }

    /// Notes the parts a durable event moved; `reversed` is the redemption a reversal takes
    /// back.
    pub fn note(&mut self, event: &Event, reversed: Option<&HoursRedeemed>) {
        if let Some(year) = summary_year(event, reversed.map(Trainee::of).as_ref()) {
            self.moved.insert(year);
            // Without the thread no point is handed over again: what the events named would
            // only pile up.
            if self.sender.is_some() {
                self.touched.entry(year).or_default().note(event, reversed);
            }
        }
        match event {
            Event::CompanyRegistered(e) => {
                self.registrations_moved.insert(e.year);
                if !self.registered_companies.contains(&e.enterprise_number) {
                    self.registered_companies
                        .insert(e.enterprise_number.clone());
                }
            }
            Event::ModuleApproved(_) => self.modules_moved = true,
            _ => {}
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
        let (moved, registration_years): (BTreeSet<i32>, BTreeSet<i32>) = if self.all_moved {
            (
                projections.years.keys().copied().collect(),
                projections.registration_years(),
            )
        } else {
            let mut moved = self.moved.clone();
            for company in &self.registered_companies {
                for year in projections.years_with_hours_of(company) {
                    // A registration moves the company's hours by sector in those years.
                    moved.insert(year);
                    self.touched
                        .entry(year)
                        .or_default()
                        .companies
                        .push(company.clone());
                }
            }
            (moved, self.registrations_moved.clone())
        };
        let mut holders = self.holders.clone();
        holders.budgets = projections.budgets.clone();
        let years: Vec<(i32, YearPart)> = moved
            .into_iter()
            .filter_map(|year| {
                let figures = projections.years.get(&year)?;
                holders.holders.insert(year, head.position);
                let part = if !self.all_moved && self.mirrored.contains(&year) {
                    let touched = self.touched.entry(year).or_default();
                    YearPart::Delta(YearDelta::of(figures, touched))
                } else {
                    YearPart::Whole(Box::new(figures.clone()))
                };
                Some((year, part))
            })
            .collect();
        let registrations: Vec<(i32, Vec<u8>)> = projections
            .registrations_bytes(registration_years)
            .into_iter()
            .collect();
        for (year, _) in &registrations {
            holders.registrations.insert(*year, head.position);
        }
        let modules = (self.all_moved || self.modules_moved).then(|| projections.modules_bytes());
        if modules.is_some() {
            holders.modules = Some(head.position);
        }
        let point_years: BTreeSet<i32> = years.iter().map(|(year, _)| *year).collect();
        #[cfg(debug_assertions)]
        let checked = self.check_deltas(projections, &years);
        let point = PointToSave {
            head: *head,
            years,
            registrations,
            modules,
            index: holders.clone(),
        };
        let sent = if self.waits {
            sender
                .send(point)
                .map_err(|mpsc::SendError(point)| mpsc::TrySendError::Disconnected(point))
        } else {
            sender.try_send(point)
        };
        match sent {
            Ok(()) => {
                #[cfg(debug_assertions)]
                {
                    self.mirror_check = checked;
                }
                self.mirrored = point_years;
                self.touched.clear();
                self.holders = holders;
                self.moved.clear();
                self.registered_companies.clear();
                self.registrations_moved.clear();
                self.modules_moved = false;
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

impl YearPointWriter {
    /// Debug builds: folds the point's years into a copy of the thread's, as the thread will,
    /// and checks that each is the year's figures in `projections`. The copy, to keep once
    /// the point is handed over.
    #[cfg(debug_assertions)]
    fn check_deltas(&self, projections: &Projections, years: &[(i32, YearPart)]) -> YearMirror {
        let mut parts: Vec<(i32, YearPart)> = years
            .iter()
            .map(|(year, part)| {
                let part = match part {
                    YearPart::Whole(figures) => YearPart::Whole(figures.clone()),
                    YearPart::Delta(delta) => YearPart::Delta(delta.clone()),
                };
                (*year, part)
            })
            .collect();
        let mut mirror = YearMirror {
            years: self.mirror_check.years.clone(),
        };
        mirror.take(&mut parts);
        for (year, figures) in &mirror.years {
            assert!(
                projections.years.get(year) == Some(figures),
                "year point of {year}: the figures the thread would write differ from the projections'"
            );
        }
        mirror
    }
}

/// The year points a rebuild leaves on its way (see [`crate::recovery::rebuild`]), so that a
/// log that had none (written by an earlier version) has them afterwards. With no writer to
/// say which parts moved, a part is written again when its bytes differ from the last ones
/// written.
#[derive(Debug)]
pub struct RebuiltYearPoints {
    points: YearPoints,
    /// For each year, the bytes of its figures last written and the point holding them.
    written: BTreeMap<i32, (Vec<u8>, u64)>,
    /// The same for each registration year's registrations.
    registrations_written: BTreeMap<i32, (Vec<u8>, u64)>,
    modules_written: Option<(Vec<u8>, u64)>,
}

impl RebuiltYearPoints {
    pub fn new(points: YearPoints) -> RebuiltYearPoints {
        RebuiltYearPoints {
            points,
            written: BTreeMap::new(),
            registrations_written: BTreeMap::new(),
            modules_written: None,
        }
    }

    /// Writes the point of `projections`, taken at `head`.
    pub fn save(&mut self, projections: &Projections, head: &Head) -> Result<(), StoreError> {
        let years = projections
            .years
            .iter()
            .map(|(year, figures)| (*year, figures.to_bytes()));
        save_changed(&mut self.written, years, head, |year| {
            self.points.year(year)
        })?;
        let registrations = projections.registrations_bytes(projections.registration_years());
        save_changed(
            &mut self.registrations_written,
            registrations,
            head,
            |year| self.points.registered(year),
        )?;
        let modules = projections.modules_bytes();
        if self
            .modules_written
            .as_ref()
            .is_none_or(|(written, _)| *written != modules)
        {
            self.points.modules().save(head, &versioned(&modules))?;
            self.modules_written = Some((modules, head.position));
        }
        let holders = |written: &BTreeMap<i32, (Vec<u8>, u64)>| {
            written
                .iter()
                .map(|(year, (_, holder))| (*year, *holder))
                .collect()
        };
        let index = PointIndex {
            budgets: projections.budgets.clone(),
            holders: holders(&self.written),
            registrations: holders(&self.registrations_written),
            modules: self.modules_written.as_ref().map(|(_, holder)| *holder),
        };
        self.points.index().save(head, &versioned(&encode(&index)))
    }
}

/// Writes each part of `parts` whose bytes differ from those last `written`, at `head`.
fn save_changed(
    written: &mut BTreeMap<i32, (Vec<u8>, u64)>,
    parts: impl IntoIterator<Item = (i32, Vec<u8>)>,
    head: &Head,
    folder: impl Fn(i32) -> RetainedSnapshots,
) -> Result<(), StoreError> {
    for (year, bytes) in parts {
        if written.get(&year).is_some_and(|(last, _)| *last == bytes) {
            continue;
        }
        folder(year).save(head, &versioned(&bytes))?;
        written.insert(year, (bytes, head.position));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn company(number: u8) -> EnterpriseNumber {
        // Belgian enterprise numbers: ten digits, the last two a check on the first eight.
        let body = 10_000_000 + u64::from(number);
        let check = 97 - (body % 97);
        EnterpriseNumber::parse(&format!("{body:08}{check:02}")).expect("a valid number")
    }

    fn worker(number: u8) -> WorkerPseudonym {
        WorkerPseudonym::from_bytes([number; 32])
    }

    /// Figures with the entries of companies and workers drawn from 0..8.
    fn figures() -> impl Strategy<Value = YearFigures> {
        let counts = || proptest::collection::btree_map(0u8..8, 1u32..4, 0..8);
        (
            proptest::collection::btree_set(0u8..8, 0..8),
            proptest::collection::btree_set(0u8..8, 0..8),
            counts(),
            counts(),
            counts(),
            0u64..100,
        )
            .prop_map(
                |(registered, holding, benefiting, workers, hours, vouchers_issued)| {
                    let mut figures = YearFigures {
                        registered: registered.into_iter().map(company).collect(),
                        holding: holding.into_iter().map(company).collect(),
                        benefiting: benefiting
                            .into_iter()
                            .map(|(number, count)| (company(number), count))
                            .collect(),
                        workers: workers
                            .into_iter()
                            .map(|(number, count)| (worker(number), count))
                            .collect(),
                        vouchers_issued,
                        hours_by_company: hours
                            .into_iter()
                            .map(|(number, hours)| (company(number), u64::from(hours)))
                            .collect(),
                        ..YearFigures::default()
                    };
                    figures.hours.total = vouchers_issued * 3;
                    figures
                },
            )
    }

    proptest! {
        /// A point's delta over the companies and workers that differ (named once or more, in
        /// any order, with others that did not change) brings the figures of the point before
        /// to those of the point.
        #[test]
        fn a_delta_over_what_moved_gives_the_figures_at_the_point(
            before in figures(),
            after in figures(),
            also_named in proptest::collection::vec(0u8..8, 0..6),
        ) {
            let mut touched = Touched::default();
            for number in (0u8..8).rev().chain(also_named.iter().copied()) {
                let (named_company, named_worker) = (company(number), worker(number));
                let company_moved = before.registered.contains(&named_company)
                    != after.registered.contains(&named_company)
                    || before.holding.contains(&named_company) != after.holding.contains(&named_company)
                    || before.benefiting.get(&named_company) != after.benefiting.get(&named_company)
                    || before.hours_by_company.get(&named_company)
                        != after.hours_by_company.get(&named_company);
                if company_moved || also_named.contains(&number) {
                    touched.companies.push(named_company);
                }
                if before.workers.get(&named_worker) != after.workers.get(&named_worker)
                    || also_named.contains(&number)
                {
                    touched.workers.push(named_worker);
                }
            }
            let mut folded = before.clone();
            YearDelta::of(&after, &mut touched).fold_into(&mut folded);
            prop_assert_eq!(folded, after);
        }
    }

    #[test]
    fn the_mirror_keeps_only_the_years_of_the_last_point() {
        let mut mirror = YearMirror::default();
        let mut first = YearFigures::default();
        first.registered.insert(company(1));
        let mut parts = vec![
            (2025, YearPart::Whole(Box::new(first.clone()))),
            (2026, YearPart::Whole(Box::default())),
        ];
        mirror.take(&mut parts);
        assert_eq!(
            mirror.years.keys().copied().collect::<Vec<_>>(),
            [2025, 2026]
        );

        let mut touched = Touched {
            companies: vec![company(2)],
            workers: Vec::new(),
        };
        let mut second = first.clone();
        second.holding.insert(company(2));
        let mut parts = vec![(2025, YearPart::Delta(YearDelta::of(&second, &mut touched)))];
        mirror.take(&mut parts);
        assert_eq!(mirror.years.keys().copied().collect::<Vec<_>>(), [2025]);
        assert_eq!(mirror.years.get(&2025), Some(&second));
    }
}
