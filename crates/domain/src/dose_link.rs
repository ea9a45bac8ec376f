//! Which case a dose report belongs to.
//!
//! Order (issue 5): the accession number, else the study instance UID, else the patient ID with
//! the report's time inside the case's room time. Anything else (no candidate, or more than one)
//! goes to the unmatched queue with the reason, for a physicist to resolve by hand: a report is
//! never attached to a case by guesswork.

use crate::ids::CaseId;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// How far before the room time starts, or after it ends, a report's study time may fall.
/// Technical, not clinical: modality clocks drift and the study often opens before the time-out
/// is recorded. Half an hour keeps back-to-back cases in one room apart.
pub const ROOM_TIME_TOLERANCE_MINUTES: i64 = 30;

/// What a dose report offers to find its case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportKeys {
    pub accession_number: Option<String>,
    pub study_instance_uid: String,
    pub patient_id: Option<String>,
    /// DICOM DA (YYYYMMDD) and TM (HHMMSS.FFFFFF, any prefix), as the report gave them.
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    /// Its accession number or study is one Seldinger gave at a booking (the worklist's) or
    /// heard in a performed step: then it is linked by them or not at all — never by patient
    /// and room time, which could put it on another of the patient's cases.
    pub booked_study: bool,
}

impl ReportKeys {
    /// The study's start, read as UTC (reports rarely carry a time-zone offset; the department's
    /// time zone is a known gap, docs/dose-plan.md).
    pub fn study_started(&self) -> Option<DateTime<Utc>> {
        let date = NaiveDate::parse_from_str(self.study_date.as_deref()?.trim(), "%Y%m%d").ok()?;
        let time = self.study_time.as_deref().and_then(parse_dicom_time)?;
        Some(NaiveDateTime::new(date, time).and_utc())
    }

    pub fn study_day(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(self.study_date.as_deref()?.trim(), "%Y%m%d").ok()
    }
}

/// DICOM TM: HH, HHMM, HHMMSS or HHMMSS.FFFFFF.
fn parse_dicom_time(value: &str) -> Option<NaiveTime> {
    let value = value.trim();
    let (whole, _fraction) = value.split_once('.').unwrap_or((value, ""));
    let padded = format!("{whole:0<6}");
    if padded.len() != 6 || !padded.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveTime::parse_from_str(&padded, "%H%M%S").ok()
}

/// A case a report could belong to, with what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseCandidate {
    pub case_id: CaseId,
    pub mrn: String,
    pub accession_number: Option<String>,
    /// Studies already linked to this case: a later report of the same study follows them.
    pub study_instance_uids: Vec<String>,
    /// When the patient was in the room: the recorded start and end, else the booking.
    pub room_time: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LinkBasis {
    AccessionNumber,
    StudyInstanceUid,
    PatientAndRoomTime,
    /// Resolved by hand from the unmatched queue.
    Manual,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked { case_id: CaseId, basis: LinkBasis },
    Unmatched { reason: String },
}

/// Finds the one case `keys` belongs to among `candidates` (the cases of the report's patient and
/// any case with its accession number or study).
pub fn match_report(keys: &ReportKeys, candidates: &[CaseCandidate]) -> LinkOutcome {
    if let Some(accession) = keys.accession_number.as_deref().filter(|a| !a.is_empty()) {
        let by_accession: Vec<_> = candidates
            .iter()
            .filter(|c| c.accession_number.as_deref() == Some(accession))
            .collect();
        if let Some(outcome) = single(
            &by_accession,
            LinkBasis::AccessionNumber,
            "accession number",
        ) {
            return outcome;
        }
    }
    let by_study: Vec<_> = candidates
        .iter()
        .filter(|c| c.study_instance_uids.contains(&keys.study_instance_uid))
        .collect();
    if let Some(outcome) = single(&by_study, LinkBasis::StudyInstanceUid, "study") {
        return outcome;
    }
    if keys.booked_study {
        return LinkOutcome::Unmatched {
            reason: "its accession number or study was booked in Seldinger, for a case that is no longer open (cancelled or declined): link it by hand".into(),
        };
    }
    let Some(patient_id) = keys.patient_id.as_deref().filter(|p| !p.is_empty()) else {
        return LinkOutcome::Unmatched {
            reason: "no case has its accession number or study, and it names no patient".into(),
        };
    };
    let Some(started) = keys.study_started() else {
        return LinkOutcome::Unmatched {
            reason: "no case has its accession number or study, and it gives no study date and time to match the room time".into(),
        };
    };
    let tolerance = Duration::minutes(ROOM_TIME_TOLERANCE_MINUTES);
    let in_room: Vec<_> = candidates
        .iter()
        .filter(|c| c.mrn == patient_id)
        .filter(|c| {
            c.room_time.is_some_and(|(from, until)| {
                from - tolerance <= started && started <= until + tolerance
            })
        })
        .collect();
    single(&in_room, LinkBasis::PatientAndRoomTime, "patient and room time").unwrap_or_else(|| {
        LinkOutcome::Unmatched {
            reason: format!(
                "no case of patient {patient_id} was in the room at {} (±{ROOM_TIME_TOLERANCE_MINUTES} min)",
                started.format("%Y-%m-%d %H:%M")
            ),
        }
    })
}

/// One candidate links; several are refused rather than guessed between; none defers.
fn single(found: &[&CaseCandidate], basis: LinkBasis, by: &str) -> Option<LinkOutcome> {
    match found {
        [] => None,
        [one] => Some(LinkOutcome::Linked {
            case_id: one.case_id,
            basis,
        }),
        many => Some(LinkOutcome::Unmatched {
            reason: format!("{} cases match by {by}; choose one by hand", many.len()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, h, m, 0)
            .single()
            .expect("valid")
    }

    fn case(mrn: &str, room: Option<(DateTime<Utc>, DateTime<Utc>)>) -> CaseCandidate {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        CaseCandidate {
            case_id: CaseId(uuid::Uuid::from_u128(u128::from(n))),
            mrn: mrn.into(),
            accession_number: None,
            study_instance_uids: vec![],
            room_time: room,
        }
    }

    #[test]
    fn a_booked_study_without_its_open_case_is_never_linked_by_room_time() {
        let mut booked = keys("091500");
        booked.booked_study = true;
        let in_room = case("MRN1", Some((at(9, 0), at(10, 0))));
        assert!(matches!(
            match_report(&booked, std::slice::from_ref(&in_room)),
            LinkOutcome::Unmatched { reason } if reason.contains("booked in Seldinger")
        ));
        assert!(matches!(
            match_report(&keys("091500"), &[in_room]),
            LinkOutcome::Linked {
                basis: LinkBasis::PatientAndRoomTime,
                ..
            }
        ));
    }

    fn keys(time: &str) -> ReportKeys {
        ReportKeys {
            accession_number: None,
            study_instance_uid: "2.25.1".into(),
            patient_id: Some("MRN1".into()),
            study_date: Some("20261124".into()),
            study_time: Some(time.into()),
            booked_study: false,
        }
    }

    #[test]
    fn accession_number_wins_over_room_time() {
        let mut by_accession = case("MRN1", None);
        by_accession.accession_number = Some("ACC1".into());
        let in_room = case("MRN1", Some((at(9, 0), at(10, 0))));
        let mut k = keys("093000");
        k.accession_number = Some("ACC1".into());
        assert_eq!(
            match_report(&k, &[in_room, by_accession.clone()]),
            LinkOutcome::Linked {
                case_id: by_accession.case_id,
                basis: LinkBasis::AccessionNumber
            }
        );
    }

    #[test]
    fn a_second_report_of_a_linked_study_follows_it() {
        let mut linked = case("MRN1", Some((at(9, 0), at(10, 0))));
        linked.study_instance_uids = vec!["2.25.1".into()];
        let outcome = match_report(&keys("230000"), std::slice::from_ref(&linked));
        assert_eq!(
            outcome,
            LinkOutcome::Linked {
                case_id: linked.case_id,
                basis: LinkBasis::StudyInstanceUid
            }
        );
    }

    #[test]
    fn room_time_with_tolerance_on_both_sides() {
        let c = case("MRN1", Some((at(9, 0), at(10, 0))));
        for time in ["083000", "0900", "100000", "103000"] {
            assert!(
                matches!(
                    match_report(&keys(time), std::slice::from_ref(&c)),
                    LinkOutcome::Linked {
                        basis: LinkBasis::PatientAndRoomTime,
                        ..
                    }
                ),
                "{time}"
            );
        }
        for time in ["082959", "103001"] {
            assert!(
                matches!(
                    match_report(&keys(time), std::slice::from_ref(&c)),
                    LinkOutcome::Unmatched { .. }
                ),
                "{time}"
            );
        }
    }

    #[test]
    fn another_patient_or_two_overlapping_cases_stay_unmatched() {
        let other = case("MRN2", Some((at(9, 0), at(10, 0))));
        assert!(matches!(
            match_report(&keys("093000"), &[other]),
            LinkOutcome::Unmatched { .. }
        ));
        let a = case("MRN1", Some((at(9, 0), at(10, 0))));
        let b = case("MRN1", Some((at(9, 45), at(11, 0))));
        match match_report(&keys("095000"), &[a, b]) {
            LinkOutcome::Unmatched { reason } => assert!(reason.contains("2 cases"), "{reason}"),
            linked => panic!("guessed: {linked:?}"),
        }
    }

    #[test]
    fn without_a_time_nothing_is_guessed() {
        let c = case("MRN1", Some((at(9, 0), at(10, 0))));
        let mut k = keys("093000");
        k.study_time = None;
        assert!(matches!(
            match_report(&k, &[c]),
            LinkOutcome::Unmatched { .. }
        ));
    }

    #[test]
    fn dicom_times() {
        assert_eq!(parse_dicom_time("0930"), NaiveTime::from_hms_opt(9, 30, 0));
        assert_eq!(
            parse_dicom_time("093015.123"),
            NaiveTime::from_hms_opt(9, 30, 15)
        );
        assert_eq!(parse_dicom_time("09"), NaiveTime::from_hms_opt(9, 0, 0));
        assert_eq!(parse_dicom_time("9x"), None);
        assert_eq!(parse_dicom_time("250000"), None);
    }
}
