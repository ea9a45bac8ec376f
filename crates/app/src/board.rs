//! The day's board as a use case: what every card needs, read in a fixed number of queries
//! whatever the number of cards (cases, then their patients, drugs, labs and performed steps
//! one query per table), each checklist computed once, and the cards shown audited in one write.
//! Its stamp lets a polling screen learn "unchanged" from one indexed read.

use crate::{App, AppError, Audit, Principal};
use chrono::NaiveDate;
use seldinger_domain::access::Permission;
use seldinger_domain::department::Room;
use seldinger_domain::lifecycle::{Case, CaseState};
use seldinger_domain::patient::Patient;
use seldinger_domain::performed_step::PerformedStep;
use seldinger_domain::safety::Checklist;
use seldinger_store::CaseFilter;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Cases booked on one day the board shows before it says how many more there are.
pub const BOARD_BOOKED_AT_MOST: u32 = 1000;
/// Vetted, unbooked cases the add-on lane shows before it says how many more wait.
pub const BOARD_ADD_ON_AT_MOST: u32 = 100;

/// One card's facts.
pub struct BoardCase {
    pub case: Case,
    pub patient: Option<Patient>,
    /// Before the room and once vetted: the safety checklist as of now.
    pub checklist: Option<Checklist>,
    /// What the room's imaging systems reported of the case.
    pub steps: Vec<PerformedStep>,
}

/// The day's board: the rooms, the cases booked in them and the add-on lane.
pub struct BoardDay {
    pub rooms: Vec<Room>,
    /// In booking order.
    pub booked: Vec<BoardCase>,
    /// Booked cases not read (more than a page): said, never dropped.
    pub booked_more: u64,
    /// Most urgent first, then oldest.
    pub add_on: Vec<BoardCase>,
    pub add_on_more: u64,
}

/// Boards lately built, by what each was built from (see [`App::board`]): a department's
/// screens show a day or two, in a few scopes.
pub type BoardCache = crate::kept::Kept<BoardDay, 16>;

/// A board view's entity tag and what its board is built from, from one read of the
/// department's change sequence (see [`App::board_stamp`]).
pub struct BoardStamp {
    /// Quoted, as an HTTP entity tag: it names the viewer, a kept board need not.
    pub etag: String,
    /// The change sequence, minute, day, safety reference and the viewer's role and row scope.
    key: String,
}

impl App {
    /// The board of `on` as `who` may see it, its cards audited (`read_board`, one row per case
    /// shown, one write) on every view. Built once for what it is built from — the stamp's key:
    /// the department's change sequence, the minute, the day, the safety reference and the
    /// viewer's role and row scope — and kept: the screens polling an unchanged department cost
    /// one indexed read and the audit write each, not the cards' reads and checklists again.
    /// The stamp is read before the build: a change during it is in the board or in the next
    /// stamp, never lost.
    pub async fn board(
        &self,
        who: &Principal,
        on: NaiveDate,
        stamp: &BoardStamp,
    ) -> Result<Arc<BoardDay>, AppError> {
        who.require(Permission::ReadCases)?;
        // A break-glass view is built afresh.
        let key = who.break_glass_reason.is_none().then_some(&stamp.key);
        let day = match key {
            Some(key) => {
                self.board_cache
                    .get_or_build(key.clone(), || self.build_board(who, on))
                    .await?
            }
            None => Arc::new(self.build_board(who, on).await?),
        };
        let audits = day
            .booked
            .iter()
            .chain(&day.add_on)
            .map(|c| Audit::of("read_board", "case", c.case.id, c.case.patient_id))
            .collect();
        self.audit_reads(who, audits).await?;
        Ok(day)
    }

    async fn build_board(&self, who: &Principal, on: NaiveDate) -> Result<BoardDay, AppError> {
        let rooms = self.store.rooms().await?;
        let booked = self
            .cases_page(
                who,
                &CaseFilter {
                    booked_between: Some(self.time.day(on)),
                    limit: BOARD_BOOKED_AT_MOST,
                    ..Default::default()
                },
                None,
            )
            .await?;
        let add_on = self
            .cases_page(
                who,
                &CaseFilter {
                    states: vec![CaseState::Vetted],
                    limit: BOARD_ADD_ON_AT_MOST,
                    ..Default::default()
                },
                None,
            )
            .await?;
        let booked_more = booked.total.saturating_sub(booked.items.len() as u64);
        let add_on_more = add_on.total.saturating_sub(add_on.items.len() as u64);
        let mut add_on = add_on.items;
        add_on.sort_by_key(|c| (c.vetting.as_ref().map(|v| v.priority), c.opened_at));
        let booked = self
            .board_cases(booked.items, true, shows_checklist)
            .await?;
        let add_on = self.board_cases(add_on, false, shows_checklist).await?;
        Ok(BoardDay {
            rooms,
            booked,
            booked_more,
            add_on,
            add_on_more,
        })
    }

    /// The checklist of every case booked on `on` and not yet in the room, in booking order,
    /// each audited (`read_checklist`, one write): a day's readiness.
    pub async fn day_readiness(
        &self,
        who: &Principal,
        on: NaiveDate,
    ) -> Result<Vec<BoardCase>, AppError> {
        let filter = CaseFilter {
            booked_between: Some(self.time.day(on)),
            states: vec![CaseState::Scheduled, CaseState::CheckedIn],
            limit: BOARD_BOOKED_AT_MOST,
            ..Default::default()
        };
        let cases = self.cases(who, &filter).await?;
        let checked = self.board_cases(cases, false, |_| true).await?;
        let audits = checked
            .iter()
            .map(|c| Audit::of("read_checklist", "case", c.case.id, c.case.patient_id))
            .collect();
        self.audit_reads(who, audits).await?;
        Ok(checked)
    }

    /// The facts of these cases' cards: one read per table for all of them; the checklist of
    /// those `with_checklist` chooses.
    async fn board_cases(
        &self,
        cases: Vec<Case>,
        with_steps: bool,
        with_checklist: fn(&Case) -> bool,
    ) -> Result<Vec<BoardCase>, AppError> {
        let patient_ids: Vec<_> = cases.iter().map(|c| c.patient_id).collect();
        let patients = crate::keyed(self.store.patients_by_id(&patient_ids).await?, |p| p.id);
        // Drugs and labs only of the patients whose checklist is shown.
        let checked: Vec<_> = cases
            .iter()
            .filter(|c| with_checklist(c))
            .map(|c| c.patient_id)
            .collect();
        let (medications, labs) = if checked.is_empty() {
            Default::default()
        } else {
            (
                self.store.medications_of(&checked).await?,
                self.store.lab_results_of(&checked).await?,
            )
        };
        let mut steps = if with_steps {
            let ids: Vec<_> = cases.iter().map(|c| c.id).collect();
            self.store.performed_steps_of_cases(&ids).await?
        } else {
            Default::default()
        };
        Ok(cases
            .into_iter()
            .map(|case| {
                let patient = patients.get(&case.patient_id).cloned();
                let checklist = match &patient {
                    Some(patient) if with_checklist(&case) => {
                        let facts = crate::facts_from(patient, &medications, &labs);
                        Some(self.checklist_with(&case, &facts))
                    }
                    _ => None,
                };
                let steps = steps.remove(&case.id).unwrap_or_default();
                BoardCase {
                    case,
                    patient,
                    checklist,
                    steps,
                }
            })
            .collect())
    }

    /// What a polling board compares to learn it is unchanged, from one indexed read: the
    /// department's change sequence, the safety reference's version, the minute (rules that
    /// depend on time, such as a lab's age, move with it), the day shown and who looks (their
    /// scope); with the key its board is kept under.
    pub async fn board_stamp(
        &self,
        who: &Principal,
        on: NaiveDate,
    ) -> Result<BoardStamp, AppError> {
        who.require(Permission::ReadCases)?;
        let sequence = self.store.change_sequence().await?;
        let minute = self.clock.now().timestamp().div_euclid(60);
        let seed = format!(
            "{sequence}|{}|{minute}|{on}|{}|{}|{}",
            self.safety.version,
            who.username,
            who.role.as_str(),
            env!("CARGO_PKG_VERSION"),
        );
        let digest = Sha256::digest(seed.as_bytes());
        let etag = format!(
            "\"b{sequence}-{}\"",
            digest
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let key = format!(
            "{sequence}|{minute}|{on}|{}|{}|{:?}",
            self.safety.version,
            who.role.as_str(),
            who.scope(Permission::ReadCases),
        );
        Ok(BoardStamp { etag, key })
    }
}

/// A card shows readiness before the room, once vetted.
fn shows_checklist(case: &Case) -> bool {
    case.state.is_pre_procedure() && case.vetting.is_some()
}
