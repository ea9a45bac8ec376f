//! The Modality Performed Procedure Step service (PS3.4 Annex F): N-CREATE and N-SET from the
//! rooms' imaging systems read into the domain's [`StepReport`], handed to the application
//! (`App::report_step_started`, `App::report_step_changed`), and answered with the status the
//! standard gives each outcome — only after the step is committed.

use crate::dimse::{error_comment, tag_list, Command, N_CREATE_RQ};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use dicom_core::{DataElement, Tag};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use seldinger_app::{App, AppError, Principal, StepError};
use seldinger_domain::performed_step::{ReportedDose, StepRefusal, StepReport, StepStatus};
use seldinger_domain::DepartmentTime;

// Statuses (PS3.7 Annex C).
pub const SUCCESS: u16 = 0x0000;
pub const INVALID_ATTRIBUTE_VALUE: u16 = 0x0106;
pub const PROCESSING_FAILURE: u16 = 0x0110;
pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
pub const NO_SUCH_OBJECT_INSTANCE: u16 = 0x0112;
pub const MISSING_ATTRIBUTE: u16 = 0x0120;
pub const MISSING_ATTRIBUTE_VALUE: u16 = 0x0121;

/// Total Time of Fluoroscopy (s) and Total Number of Exposures: retired from the standard's
/// MPPS dose module in favour of the dose report, still sent by installed systems.
const TOTAL_TIME_OF_FLUOROSCOPY: Tag = Tag(0x0040, 0x0300);
const TOTAL_NUMBER_OF_EXPOSURES: Tag = Tag(0x0040, 0x0301);

/// A response's status and what goes with it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The step's SOP Instance UID (assigned here when an N-CREATE names none).
    pub instance: String,
    pub extra: Vec<DataElement<InMemDicomObject>>,
}

/// What the N-CREATE must carry (PS3.4 Table F.7.2-1, required at creation): absent ones are
/// answered 0x0120, naming them.
const REQUIRED_AT_CREATION: &[(Tag, &str)] = &[
    (
        tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
        "ScheduledStepAttributesSequence",
    ),
    (tags::PERFORMED_STATION_AE_TITLE, "PerformedStationAETitle"),
    (
        tags::PERFORMED_PROCEDURE_STEP_START_DATE,
        "PerformedProcedureStepStartDate",
    ),
    (
        tags::PERFORMED_PROCEDURE_STEP_START_TIME,
        "PerformedProcedureStepStartTime",
    ),
    (
        tags::PERFORMED_PROCEDURE_STEP_ID,
        "PerformedProcedureStepID",
    ),
    (
        tags::PERFORMED_PROCEDURE_STEP_STATUS,
        "PerformedProcedureStepStatus",
    ),
    (tags::MODALITY, "Modality"),
];

/// The tags of the domain's attribute names, for the response's Attribute Identifier List.
fn tags_named(names: &[&str]) -> Vec<Tag> {
    names
        .iter()
        .flat_map(|name| match *name {
            "PerformedProcedureStepStartDate/Time" => vec![
                tags::PERFORMED_PROCEDURE_STEP_START_DATE,
                tags::PERFORMED_PROCEDURE_STEP_START_TIME,
            ],
            "PerformedProcedureStepEndDate/Time" => vec![
                tags::PERFORMED_PROCEDURE_STEP_END_DATE,
                tags::PERFORMED_PROCEDURE_STEP_END_TIME,
            ],
            "PerformedStationAETitle" => vec![tags::PERFORMED_STATION_AE_TITLE],
            "PerformedProcedureStepID" => vec![tags::PERFORMED_PROCEDURE_STEP_ID],
            "PerformedProcedureStepStatus" => vec![tags::PERFORMED_PROCEDURE_STEP_STATUS],
            "Modality" => vec![tags::MODALITY],
            _ => vec![],
        })
        .collect()
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches([' ', '\0']).to_string())
        .filter(|s| !s.is_empty())
}

fn number(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    text(obj, tag).and_then(|s| s.split('\\').next()?.trim().parse::<f64>().ok())
}

fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.get(tag).and_then(|e| e.items()).and_then(|i| i.first())
}

/// A DICOM date and time (the modality's wall clock, the department's zone) as an instant.
fn instant(
    date: Option<String>,
    time: Option<String>,
    zone: &DepartmentTime,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let date = NaiveDate::parse_from_str(date?.trim(), "%Y%m%d").ok()?;
    let time = time?;
    let whole = time.split('.').next().unwrap_or_default();
    let time = NaiveTime::parse_from_str(&format!("{whole:0<6}"), "%H%M%S").ok()?;
    zone.instant(NaiveDateTime::new(date, time)).ok()
}

/// Reads an N-CREATE or N-SET data set; times are the department's.
pub fn read_step(obj: &InMemDicomObject, zone: &DepartmentTime) -> StepReport {
    let status_text = text(obj, tags::PERFORMED_PROCEDURE_STEP_STATUS);
    let status = status_text.as_deref().and_then(StepStatus::from_dicom);
    let scheduled = first_item(obj, tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE);
    let of_scheduled = |tag| scheduled.and_then(|s| text(s, tag));
    let dap_dgy_cm2 = number(obj, tags::IMAGE_AND_FLUOROSCOPY_AREA_DOSE_PRODUCT);
    StepReport {
        status,
        unknown_status: status_text.filter(|_| status.is_none()),
        station_ae_title: text(obj, tags::PERFORMED_STATION_AE_TITLE),
        modality: text(obj, tags::MODALITY),
        step_id: text(obj, tags::PERFORMED_PROCEDURE_STEP_ID),
        patient_id: text(obj, tags::PATIENT_ID),
        patient_name: text(obj, tags::PATIENT_NAME),
        study_instance_uid: of_scheduled(tags::STUDY_INSTANCE_UID),
        accession_number: of_scheduled(tags::ACCESSION_NUMBER),
        scheduled_step_id: of_scheduled(tags::SCHEDULED_PROCEDURE_STEP_ID),
        started_at: instant(
            text(obj, tags::PERFORMED_PROCEDURE_STEP_START_DATE),
            text(obj, tags::PERFORMED_PROCEDURE_STEP_START_TIME),
            zone,
        ),
        ended_at: instant(
            text(obj, tags::PERFORMED_PROCEDURE_STEP_END_DATE),
            text(obj, tags::PERFORMED_PROCEDURE_STEP_END_TIME),
            zone,
        ),
        discontinuation_reason: first_item(
            obj,
            tags::PERFORMED_PROCEDURE_STEP_DISCONTINUATION_REASON_CODE_SEQUENCE,
        )
        .and_then(|code| text(code, tags::CODE_MEANING).or_else(|| text(code, tags::CODE_VALUE))),
        dose: ReportedDose {
            fluoroscopy_time_s: number(obj, TOTAL_TIME_OF_FLUOROSCOPY),
            exposures: number(obj, TOTAL_NUMBER_OF_EXPOSURES).map(|n| n as u32),
            // dGy·cm² (PS3.3 C.4.16): 1 dGy·cm² = 10⁻⁵ Gy·m².
            dose_area_product_gy_m2: dap_dgy_cm2.map(|v| v * 1e-5),
            // mGy; the older Entrance Dose (0040,0302) is in dGy.
            entrance_dose_mgy: number(obj, tags::ENTRANCE_DOSE_INM_GY)
                .or_else(|| number(obj, tags::ENTRANCE_DOSE).map(|dgy| dgy * 100.0)),
        },
    }
}

/// Handles an N-CREATE or N-SET whose data set is `data_set`, as the calling modality `who`.
pub async fn handle(
    app: &App,
    who: &Principal,
    command: &Command,
    data_set: &InMemDicomObject,
) -> Answer {
    let creating = command.field == N_CREATE_RQ;
    let instance = if command.sop_instance_uid.is_empty() && creating {
        // The SCU may leave the instance to the SCP, which then names it in the response.
        format!("2.25.{}", uuid::Uuid::new_v4().as_u128())
    } else {
        command.sop_instance_uid.clone()
    };
    let answer = |status, extra| Answer {
        status,
        instance: instance.clone(),
        extra,
    };
    if creating {
        let absent: Vec<(Tag, &str)> = REQUIRED_AT_CREATION
            .iter()
            .copied()
            .filter(|(tag, _)| data_set.get(*tag).is_none())
            .collect();
        if !absent.is_empty() {
            let names: Vec<&str> = absent.iter().map(|(_, name)| *name).collect();
            let tags: Vec<Tag> = absent.iter().map(|(tag, _)| *tag).collect();
            tracing::warn!(missing = ?names, "performed procedure step created without required attributes");
            // An error comment holds 64 characters: the tags, which the list names again.
            let listed: Vec<String> = tags
                .iter()
                .map(|t| format!("({:04X},{:04X})", t.group(), t.element()))
                .collect();
            return answer(
                MISSING_ATTRIBUTE,
                vec![
                    tag_list(tags::ATTRIBUTE_IDENTIFIER_LIST, &tags),
                    error_comment(&format!("missing {}", listed.join(" "))),
                ],
            );
        }
    }
    let report = read_step(data_set, &app.time);
    let outcome = if creating {
        app.report_step_started(who, &instance, report).await
    } else {
        app.report_step_changed(who, &instance, report).await
    };
    match outcome {
        Ok(step) => {
            tracing::info!(%instance, status = step.status.dicom(), case = ?step.case_id, review = ?step.review, "performed procedure step recorded");
            answer(SUCCESS, vec![])
        }
        Err(StepError::Duplicate) => answer(
            DUPLICATE_SOP_INSTANCE,
            vec![error_comment("this step was created already")],
        ),
        Err(StepError::NoSuchStep) => answer(
            NO_SUCH_OBJECT_INSTANCE,
            vec![error_comment("no step was created with this instance UID")],
        ),
        Err(StepError::Refused(refusal)) => {
            let comment = error_comment(&refusal.to_string());
            match refusal {
                StepRefusal::Missing(names) => answer(
                    MISSING_ATTRIBUTE,
                    vec![
                        tag_list(tags::ATTRIBUTE_IDENTIFIER_LIST, &tags_named(&names)),
                        comment,
                    ],
                ),
                StepRefusal::MissingValue(names) => answer(
                    MISSING_ATTRIBUTE_VALUE,
                    vec![
                        tag_list(tags::ATTRIBUTE_IDENTIFIER_LIST, &tags_named(&names)),
                        comment,
                    ],
                ),
                StepRefusal::InvalidValue(name, _) => answer(
                    INVALID_ATTRIBUTE_VALUE,
                    vec![
                        tag_list(tags::ATTRIBUTE_IDENTIFIER_LIST, &tags_named(&[name])),
                        comment,
                    ],
                ),
                StepRefusal::AlreadyFinal(_) => answer(PROCESSING_FAILURE, vec![comment]),
            }
        }
        Err(StepError::App(error)) => {
            if let AppError::Store(_) = &error {
                tracing::error!(%instance, %error, "performed procedure step not stored");
            }
            answer(
                PROCESSING_FAILURE,
                vec![error_comment(&format!("not recorded: {error}"))],
            )
        }
    }
}
