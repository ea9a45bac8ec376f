use super::*;
use crate::event::Actor;
use chrono::TimeZone;
use proptest::prelude::*;
use uuid::Uuid;

fn catalogue() -> &'static ProcedureCatalogue {
    static CATALOGUE: std::sync::OnceLock<ProcedureCatalogue> = std::sync::OnceLock::new();
    CATALOGUE.get_or_init(|| {
        ProcedureCatalogue::parse(
            include_str!("../../../../catalog/procedures.toml"),
            "catalog/procedures.toml",
        )
        .expect("shipped catalogue loads")
    })
}

fn meta(minute: i64, reason: Option<&str>) -> EventMeta {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 24, 8, 0, 0)
        .single()
        .expect("valid")
        + Duration::minutes(minute);
    EventMeta {
        actor: Actor::parse("dr.test").expect("actor"),
        at,
        reason: reason.map(str::to_string),
    }
}

fn new_case() -> Case {
    Case::open(
        CaseId(Uuid::from_u128(1)),
        PatientId(Uuid::from_u128(2)),
        ReferralId(Uuid::from_u128(3)),
        Urgency::Routine,
        None,
        &meta(0, None),
    )
    .0
}

fn accept() -> CaseEvent {
    CaseEvent::Accept {
        procedure_id: ProcedureId::parse("biopsy-liver").expect("id"),
        modality: GuidanceModality::Ultrasound,
        sedation: Sedation::Local,
        priority: Urgency::Routine,
        iodinated_contrast: false,
        access_route: None,
        sheath_french: None,
    }
}

fn schedule() -> CaseEvent {
    CaseEvent::Schedule {
        room: RoomId::parse("us-1").expect("room"),
        start: Utc
            .with_ymd_and_hms(2026, 11, 26, 8, 0, 0)
            .single()
            .expect("valid"),
        duration_minutes: None,
        study: None,
        performing_physician: None,
    }
}

fn time_out(complete: bool) -> CaseEvent {
    CaseEvent::StartProcedure {
        time_out: TimeOut {
            completed_at: meta(0, None).at,
            team_introduced: true,
            patient_identity_confirmed: true,
            procedure_and_site_confirmed: true,
            consent_confirmed: complete,
            imaging_available: true,
            equipment_available: true,
        },
    }
}

fn step(
    case: &mut Case,
    event: CaseEvent,
    minute: i64,
    reason: Option<&str>,
) -> Result<(), TransitionError> {
    let m = meta(minute, reason);
    let decided = case.decide(event, &m, catalogue())?;
    case.apply(&decided, &m)
}

#[test]
fn happy_path_from_referral_to_closure() {
    let mut case = new_case();
    let path = [
        accept(),
        schedule(),
        CaseEvent::CheckIn,
        time_out(true),
        CaseEvent::CompleteProcedure,
        CaseEvent::AdmitToRecovery,
        CaseEvent::Discharge,
        CaseEvent::StartFollowUp,
        CaseEvent::Close,
    ];
    for (i, event) in path.into_iter().enumerate() {
        step(&mut case, event, i as i64 + 1, None).expect("allowed");
    }
    assert_eq!(case.state, CaseState::Closed);
    assert_eq!(case.version, 10);
    let booking = case.booking.expect("booked");
    assert_eq!(
        (booking.end - booking.start).num_minutes(),
        45,
        "liver biopsy room time from the catalogue"
    );
}

#[test]
fn illegal_transition_names_state_and_allowed_events() {
    let mut case = new_case();
    let err = step(&mut case, CaseEvent::CheckIn, 1, None).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "cannot check_in a case that is referred; allowed from referred: accept, decline, request_information, cancel, record_assessment, record_fasting, record_consent"
    );
    assert_eq!(case.version, 1, "nothing applied");
}

#[test]
fn decline_cancel_and_rebooking_need_a_reason() {
    let mut case = new_case();
    assert_eq!(
        step(&mut case, CaseEvent::Decline, 1, Some("  ")),
        Err(TransitionError::ReasonRequired { event: "decline" })
    );
    step(&mut case, accept(), 1, None).expect("accept");
    step(&mut case, schedule(), 2, None).expect("book");
    assert_eq!(
        step(&mut case, schedule(), 3, None),
        Err(TransitionError::ReasonRequired {
            event: "rescheduling"
        })
    );
    step(&mut case, schedule(), 3, Some("room closed")).expect("rebook with reason");
    assert_eq!(
        step(&mut case, CaseEvent::Cancel, 4, None),
        Err(TransitionError::ReasonRequired { event: "cancel" })
    );
    step(
        &mut case,
        CaseEvent::Cancel,
        4,
        Some("patient withdrew consent"),
    )
    .expect("cancel");
    assert_eq!(case.state, CaseState::Cancelled);
    assert_eq!(
        case.ended_reason.as_deref(),
        Some("patient withdrew consent")
    );
    let err = step(&mut case, accept(), 5, None).expect_err("terminal");
    assert!(
        err.to_string()
            .ends_with("allowed from cancelled: nothing (the case has ended)"),
        "{err}"
    );
}

#[test]
fn cannot_enter_the_room_without_a_complete_time_out() {
    let mut case = new_case();
    for (i, e) in [accept(), schedule(), CaseEvent::CheckIn]
        .into_iter()
        .enumerate()
    {
        step(&mut case, e, i as i64 + 1, None).expect("allowed");
    }
    let err = step(&mut case, time_out(false), 9, None).expect_err("incomplete");
    assert!(
        err.to_string().contains("not confirmed: consent_confirmed"),
        "{err}"
    );
    assert_eq!(case.state, CaseState::CheckedIn);
}

#[test]
fn cancellation_only_before_the_procedure() {
    for state in CaseState::ALL {
        let allowed = state.allowed_events().contains(&"cancel");
        assert_eq!(allowed, state.is_pre_procedure(), "{state}");
    }
}

#[test]
fn replay_rebuilds_the_same_case() {
    let mut case = new_case();
    let first = meta(0, None);
    let mut history = vec![(
        CaseEvent::Referred {
            patient_id: case.patient_id,
            referral_id: case.referral_id,
            urgency: Urgency::Routine,
            requested_procedure: None,
        },
        first,
    )];
    for (i, e) in [accept(), schedule(), CaseEvent::CheckIn]
        .into_iter()
        .enumerate()
    {
        let m = meta(i as i64 + 1, None);
        let decided = case.decide(e, &m, catalogue()).expect("allowed");
        case.apply(&decided, &m).expect("applies");
        history.push((decided, m));
    }
    let replayed = Case::replay(case.id, history.iter().map(|(e, m)| (e, m))).expect("replays");
    assert_eq!(replayed, case);
}

#[test]
fn event_json_is_stable() {
    let json = serde_json::to_string(&schedule()).expect("json");
    assert_eq!(
        json,
        r#"{"type":"schedule","room":"us-1","start":"2026-11-26T08:00:00Z"}"#
    );
    let bad: Result<CaseEvent, _> = serde_json::from_str(
        r#"{"type":"schedule","room":"Angio 1","start":"2026-11-26T08:00:00Z"}"#,
    );
    assert!(bad
        .expect_err("bad room")
        .to_string()
        .contains("is not a room code"));
}

fn any_event() -> impl Strategy<Value = (CaseEvent, bool)> {
    let events = vec![
        accept(),
        CaseEvent::Decline,
        CaseEvent::RequestInformation {
            question: "which side?".into(),
        },
        CaseEvent::ProvideInformation {
            answer: "left".into(),
        },
        schedule(),
        CaseEvent::CheckIn,
        time_out(true),
        time_out(false),
        CaseEvent::CompleteProcedure,
        CaseEvent::AdmitToRecovery,
        CaseEvent::Discharge,
        CaseEvent::StartFollowUp,
        CaseEvent::Close,
        CaseEvent::Cancel,
    ];
    (proptest::sample::select(events), any::<bool>())
}

proptest! {
    /// No sequence of events, allowed or not, reaches an illegal state or a record that
    /// contradicts its state.
    #[test]
    fn no_event_sequence_reaches_an_illegal_state(events in proptest::collection::vec(any_event(), 0..40)) {
        let mut case = new_case();
        for (i, (event, with_reason)) in events.into_iter().enumerate() {
            let before = case.clone();
            let reason = with_reason.then_some("reason given");
            match step(&mut case, event.clone(), i as i64 + 1, reason) {
                Ok(()) => {
                    prop_assert_eq!(case.version, before.version + 1);
                    prop_assert_eq!(before.state.transition(&event).ok(), Some(case.state));
                }
                Err(_) => prop_assert_eq!(&case, &before, "a refused event changes nothing"),
            }
            if case.state >= CaseState::Scheduled && !matches!(case.state, CaseState::Cancelled) {
                prop_assert!(case.vetting.is_some() && case.booking.is_some(), "booked without vetting: {:?}", case.state);
            }
            if case.state >= CaseState::InRoom && !case.state.is_terminal() || case.state == CaseState::Closed {
                prop_assert!(case.time_out.is_some(), "in or past the room without a time-out");
            }
            if case.state == CaseState::Declined {
                prop_assert!(case.vetting.is_none());
            }
        }
    }
}

#[test]
fn an_accession_number_is_a_dicom_short_string_given_after_vetting() {
    let mut case = new_case();
    let assign = |value: &str| CaseEvent::AssignAccession {
        accession_number: value.into(),
    };
    assert!(case
        .decide(assign("ACC1"), &meta(1, None), catalogue())
        .is_err());
    step(&mut case, accept(), 1, None).expect("accept");
    for (bad, says) in [
        ("", "must not be empty"),
        ("ACC0123456789ABCD", "at most 16"),
        ("ACC\\1", "backslash"),
    ] {
        match case.decide(assign(bad), &meta(2, None), catalogue()) {
            Err(TransitionError::Invalid(errors)) => {
                let text = format!("{errors:?}");
                assert!(
                    text.contains("event.accession_number") && text.contains(says),
                    "{text}"
                );
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    step(&mut case, assign(" ACC1 "), 2, None).expect("assign");
    assert_eq!(case.accession_number.as_deref(), Some("ACC1"));
    assert_eq!(case.state, CaseState::Vetted);
}

fn safety_reference() -> crate::safety::SafetyReference {
    crate::safety::SafetyReference::parse(
        include_str!("../../../../catalog/safety-thresholds.toml"),
        "safety-thresholds.toml",
    )
    .expect("shipped table loads")
}

fn aldrete(minute: i64, each: [u8; 5]) -> CaseEvent {
    CaseEvent::RecordRecoveryScore {
        score: crate::procedure_record::AldreteScore {
            at: meta(minute, None).at,
            activity: each[0],
            respiration: each[1],
            circulation: each[2],
            consciousness: each[3],
            oxygen_saturation: each[4],
        },
    }
}

/// A case in recovery after the given sedation.
fn in_recovery(sedation: Sedation) -> Case {
    let mut case = new_case();
    let accept = match accept() {
        CaseEvent::Accept {
            procedure_id,
            modality,
            priority,
            iodinated_contrast,
            ..
        } => CaseEvent::Accept {
            procedure_id,
            modality,
            sedation,
            priority,
            iodinated_contrast,
            access_route: None,
            sheath_french: None,
        },
        other => other,
    };
    let path = [
        accept,
        schedule(),
        CaseEvent::CheckIn,
        time_out(true),
        CaseEvent::CompleteProcedure,
        CaseEvent::AdmitToRecovery,
    ];
    for (i, event) in path.into_iter().enumerate() {
        step(&mut case, event, i as i64 + 1, None).expect("allowed");
    }
    case
}

#[test]
fn a_sedated_patient_leaves_recovery_on_the_criteria_or_with_a_reason() {
    let reference = safety_reference();
    let mut case = in_recovery(Sedation::Moderate);
    let refused = case
        .check_discharge(&reference, None)
        .expect_err("no score yet");
    assert!(
        refused.to_string().contains("no recovery score"),
        "{refused}"
    );
    assert!(case
        .check_discharge(&reference, Some("transferred to ward 4 for monitoring"))
        .is_ok());
    assert!(
        case.check_discharge(&reference, Some("  ")).is_err(),
        "a blank reason is no reason"
    );

    // A later score that meets the criteria lets the patient go; the latest by time counts.
    step(&mut case, aldrete(20, [2, 2, 1, 2, 1]), 20, None).expect("score");
    let unmet = case.discharge_criteria_unmet(&reference);
    assert!(unmet.iter().any(|r| r.contains("below")), "{unmet:?}");
    step(&mut case, aldrete(40, [2, 2, 2, 2, 1]), 40, None).expect("score");
    assert_eq!(
        case.discharge_criteria_unmet(&reference),
        Vec::<String>::new()
    );
    step(&mut case, aldrete(30, [2, 2, 2, 2, 0]), 41, None).expect("back-timed score");
    assert!(
        case.discharge_criteria_unmet(&reference).is_empty(),
        "an earlier score recorded late does not override the latest"
    );
    step(&mut case, aldrete(50, [2, 2, 2, 2, 0]), 50, None).expect("score");
    let refused = case
        .check_discharge(&reference, None)
        .expect_err("an item at zero");
    assert!(
        refused.to_string().contains("oxygen saturation scores 0")
            && refused.to_string().contains("§4"),
        "{refused}"
    );

    // Local anaesthesia only: the Aldrete criteria do not apply.
    let local = in_recovery(Sedation::Local);
    assert!(local.check_discharge(&reference, None).is_ok());
}

#[test]
fn history_lines_say_what_changed_on_the_departments_clock() {
    let london = crate::DepartmentTime::parse("Europe/London").expect("zone");
    let booking = CaseEvent::Schedule {
        room: RoomId::parse("us-1").expect("room"),
        start: Utc
            .with_ymd_and_hms(2026, 7, 1, 8, 0, 0)
            .single()
            .expect("valid"),
        duration_minutes: Some(45),
        study: None,
        performing_physician: None,
    };
    assert_eq!(
        booking.summary(&london),
        "booked in us-1 at 2026-07-01 09:00 for 45 min"
    );
    let utc = crate::DepartmentTime::default();
    assert_eq!(
        accept().summary(&utc),
        "accepted: biopsy-liver, ultrasound guidance, local sedation, routine"
    );
    let overridden = CaseEvent::OverrideSafetyBlocks {
        rules: vec!["coagulation.inr".into()],
    };
    assert_eq!(
        overridden.summary(&utc),
        "overridden at the start gate (blocked or missing data): coagulation.inr"
    );
    assert_eq!(CaseEvent::CheckIn.summary(&utc), "checked in");
}

#[test]
fn missing_data_stops_the_start_like_a_block_until_entered_or_overridden() {
    use crate::safety::{Checklist, ChecklistItem, ItemStatus};
    let item = |rule: &str, status: ItemStatus| ChecklistItem {
        rule: rule.into(),
        title: rule.into(),
        status,
        reason: String::new(),
        actions: Vec::new(),
        citation: "clinical-rules.md §8".into(),
        unverified: false,
    };
    let case = new_case();
    let checklist = |statuses: &[(&str, ItemStatus)]| {
        Checklist::new(
            statuses.iter().map(|(r, s)| item(r, *s)).collect(),
            "test".into(),
        )
    };
    // clinical-rules.md §8 (v2): "missing data" stops the time-out and start like "block".
    let missing = checklist(&[
        ("consent", ItemStatus::MissingData),
        ("fasting", ItemStatus::ActionNeeded),
        ("coagulation.inr", ItemStatus::Pass),
    ]);
    match case.check_safety_for_start(&missing) {
        Err(TransitionError::SafetyBlocked { rules }) => assert_eq!(rules, ["consent"]),
        other => panic!("missing data must stop the start: {other:?}"),
    }
    // "Action needed" alone does not stop it.
    let advice = checklist(&[("fasting", ItemStatus::ActionNeeded)]);
    assert!(case.check_safety_for_start(&advice).is_ok());
    // An IR physician's override with a reason lets it through, as for a block.
    let mut overridden = case.clone();
    overridden.safety_overrides.push(SafetyOverride {
        rules: vec!["consent".into()],
        by: "dr.test".into(),
        at: meta(5, None).at,
        reason: "consent recorded on paper in the room".into(),
    });
    assert!(overridden.check_safety_for_start(&missing).is_ok());
}

fn applied(case: &Case, event: CaseEvent, reason: Option<&str>) -> Result<Case, TransitionError> {
    let m = meta(1, reason);
    let decided = case.decide(event, &m, catalogue())?;
    let mut after = case.clone();
    after.apply(&decided, &m)?;
    Ok(after)
}

fn booking_with(study: StudyIdentity) -> CaseEvent {
    match schedule() {
        CaseEvent::Schedule {
            room,
            start,
            duration_minutes,
            ..
        } => CaseEvent::Schedule {
            room,
            start,
            duration_minutes,
            study: Some(study),
            performing_physician: None,
        },
        other => other,
    }
}

#[test]
fn the_study_identity_is_given_at_the_first_booking_and_kept_through_rebookings() {
    let identity = StudyIdentity::new(
        chrono::NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
        Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef),
    );
    assert_eq!(identity.accession_number, "2612026789ABCDEF");
    assert!(identity.study_instance_uid.starts_with("2.25."));
    check_uid(&identity.study_instance_uid).expect("a valid UID");

    let vetted = applied(&new_case(), accept(), None).expect("vetted");
    let booked = applied(&vetted, booking_with(identity.clone()), None).expect("booked");
    assert_eq!(
        booked.accession_number.as_deref(),
        Some(identity.accession_number.as_str())
    );
    assert_eq!(
        booked.study_instance_uid.as_deref(),
        Some(identity.study_instance_uid.as_str())
    );
    // Rebooked without one, or with the same: the identity stands.
    let moved = applied(&booked, schedule(), Some("list moved")).expect("moved");
    assert_eq!(moved.study_instance_uid, booked.study_instance_uid);
    applied(&moved, booking_with(identity.clone()), Some("again")).expect("the same study");
    // Another study at a rebooking is refused, naming the field.
    let other = StudyIdentity {
        study_instance_uid: "2.25.1".into(),
        ..identity.clone()
    };
    let refused = applied(&moved, booking_with(other), Some("again")).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("event.study.study_instance_uid"),
        "{refused}"
    );
    // A malformed UID or accession number at the first booking is refused.
    for (bad, field) in [
        (
            StudyIdentity {
                study_instance_uid: "1.02.3".into(),
                ..identity.clone()
            },
            "study_instance_uid",
        ),
        (
            StudyIdentity {
                study_instance_uid: "1..3".into(),
                ..identity.clone()
            },
            "study_instance_uid",
        ),
        (
            StudyIdentity {
                accession_number: "X".repeat(17),
                ..identity.clone()
            },
            "accession_number",
        ),
    ] {
        let refused = applied(&vetted, booking_with(bad), None).unwrap_err();
        assert!(refused.to_string().contains(field), "{refused}");
    }
}

#[test]
fn a_recorded_procedure_reads_as_report_lines() {
    use crate::procedure_record::{Operator, OperatorRole, ProcedureDetails};
    let mut case = new_case();
    assert!(case
        .report_lines("Liver biopsy", &crate::DepartmentTime::default())
        .is_empty());
    case.procedure = Some(ProcedureDetails {
        operators: vec![Operator {
            name: "Dr Test".into(),
            role: OperatorRole::Primary,
        }],
        guidance: GuidanceModality::Ultrasound,
        access_site: "right intercostal".into(),
        contrast_agent: None,
        contrast_volume_ml: None,
        findings: "Two cores | taken".into(),
        technical_success: Some(true),
    });
    let lines = case.report_lines("Liver biopsy", &crate::DepartmentTime::default());
    assert_eq!(lines[0], "Procedure: Liver biopsy");
    assert!(
        lines.contains(&"Operators: Dr Test (primary)".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"Findings: Two cores | taken".to_string()));
    assert!(lines.contains(&"Technical success: yes".to_string()));
    assert!(lines.contains(&"Complications: none recorded".to_string()));
}

#[test]
fn a_booking_names_who_is_to_do_it_and_a_rebooking_keeps_them_unless_it_names_another() {
    let mut case = new_case();
    step(&mut case, accept(), 1, None).expect("vetted");
    let by = |name: Option<&str>| match schedule() {
        CaseEvent::Schedule {
            room,
            start,
            duration_minutes,
            study,
            ..
        } => CaseEvent::Schedule {
            room,
            start,
            duration_minutes,
            study,
            performing_physician: name.map(str::to_string),
        },
        other => other,
    };
    let decided = case
        .decide(by(Some("  Dr A. Okafor ")), &meta(2, None), catalogue())
        .expect("booked");
    assert!(decided
        .summary(&crate::DepartmentTime::default())
        .ends_with(", by Dr A. Okafor"));
    case.apply(&decided, &meta(2, None)).expect("applies");
    let physician = |c: &Case| {
        c.booking
            .as_ref()
            .and_then(|b| b.performing_physician.clone())
    };
    assert_eq!(physician(&case).as_deref(), Some("Dr A. Okafor"));
    step(&mut case, by(None), 3, Some("list overran")).expect("rebooked");
    assert_eq!(physician(&case).as_deref(), Some("Dr A. Okafor"), "kept");
    step(&mut case, by(Some("Dr B. Ruiz")), 4, Some("leave")).expect("rebooked");
    assert_eq!(physician(&case).as_deref(), Some("Dr B. Ruiz"));
    let long = "x".repeat(crate::validation::SHORT_TEXT + 1);
    let refused = step(&mut case, by(Some(&long)), 5, Some("again")).expect_err("too long");
    assert!(
        refused.to_string().contains("performing_physician"),
        "{refused}"
    );
}
