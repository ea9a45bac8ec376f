//! The de-identified registry export: procedures, devices, dose summaries and outcomes of a
//! period, with no name, MRN, address, birth date or free text. Each patient and record is a
//! keyed pseudonym (HMAC-SHA256 with the department's secret: the same patient links across
//! exports, and nobody can reverse or recompute it without the secret); dates are exact, or
//! shifted per patient by whole weeks (intervals and weekdays kept). Pure: the caller gives the
//! records, the secret and the department's clock.

use crate::adverse_event::{AdverseEvent, AttributionBasis};
use crate::device_registry::{LifeState, TrackedDevice};
use crate::dose::DoseTotals;
use crate::lifecycle::Case;
use crate::patient::Patient;
use crate::{CaseId, DepartmentTime, PatientId};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How dates leave the department.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DateMode {
    /// The department's calendar dates as they were.
    Exact,
    /// Each patient's dates moved back by the same whole number of weeks (1-52), chosen from
    /// the keyed pseudonym: intervals between a patient's dates and their weekdays hold.
    Shifted,
}

impl DateMode {
    pub fn parse(text: &str) -> Option<DateMode> {
        match text {
            "exact" => Some(DateMode::Exact),
            "shifted" => Some(DateMode::Shifted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DateMode::Exact => "exact",
            DateMode::Shifted => "shifted",
        }
    }
}

/// Makes pseudonyms and export dates with the department's secret.
pub struct Pseudonymiser<'a> {
    key: &'a [u8],
    dates: DateMode,
    time: &'a DepartmentTime,
}

impl<'a> Pseudonymiser<'a> {
    pub fn new(key: &'a [u8], dates: DateMode, time: &'a DepartmentTime) -> Self {
        Pseudonymiser { key, dates, time }
    }

    fn mac(&self, label: &str, id: &str) -> [u8; 32] {
        // HMAC takes a key of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(label.as_bytes());
        mac.update(b":");
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// `<prefix>-` and 24 hex digits (96 bits) of the keyed digest of the id under `label`.
    fn pseudonym(&self, prefix: &str, label: &str, id: &str) -> String {
        let digest = self.mac(label, id);
        let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        format!("{prefix}-{hex}")
    }

    pub fn patient(&self, id: PatientId) -> String {
        self.pseudonym("P", "patient", &id.to_string())
    }

    pub fn case(&self, id: CaseId) -> String {
        self.pseudonym("C", "case", &id.to_string())
    }

    pub fn device(&self, stream_id: &str) -> String {
        self.pseudonym("D", "device", stream_id)
    }

    pub fn adverse_event(&self, id: &str) -> String {
        self.pseudonym("E", "adverse_event", id)
    }

    /// The patient's shift: 1 to 52 weeks back.
    pub fn shift(&self, patient: PatientId) -> Duration {
        match self.dates {
            DateMode::Exact => Duration::zero(),
            DateMode::Shifted => {
                let digest = self.mac("date_shift", &patient.to_string());
                let weeks = 1 + i64::from(u16::from_be_bytes([digest[0], digest[1]]) % 52);
                Duration::weeks(weeks)
            }
        }
    }

    /// The department's date of `at`, as exported for `patient`.
    pub fn date(&self, patient: PatientId, at: DateTime<Utc>) -> NaiveDate {
        self.time.date_of(at) - self.shift(patient)
    }
}

/// Age in whole years at `on`; 90 and over are one group (a rare age identifies).
fn age_band(birth: NaiveDate, on: NaiveDate) -> String {
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    if years >= 90 {
        "90+".to_string()
    } else {
        years.max(0).to_string()
    }
}

/// A serde enum's snake_case name.
fn code<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn num(value: Option<f64>, decimals: usize) -> String {
    value.map_or(String::new(), |v| format!("{v:.decimals$}"))
}

/// One row per case whose procedure began in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcedureRow {
    pub record: String,
    pub patient: String,
    pub procedure_code: String,
    pub procedure_name: String,
    pub urgency: String,
    pub age_years: String,
    pub sex: String,
    pub procedure_date: NaiveDate,
    pub duration_minutes: Option<i64>,
    pub sedation: String,
    pub technical_success: Option<bool>,
    pub consent_documented: bool,
    pub time_out_completed: bool,
    pub safety_override: bool,
    pub contrast_ml: Option<f64>,
    pub fluoroscopy_s: Option<f64>,
    pub kap_gy_cm2: Option<f64>,
    pub reference_air_kerma_mgy: Option<f64>,
    pub peak_skin_dose_mgy: Option<f64>,
    pub ct_dlp_mgy_cm: Option<f64>,
    pub adverse_events_attributed: u32,
    pub worst_sir_severity: Option<String>,
    pub worst_cirse_grade: Option<u8>,
    pub devices_left: u32,
    pub discharged: bool,
}

/// One row per device a case of the period left.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceRow {
    pub device: String,
    pub record: String,
    pub patient: String,
    pub kind: String,
    /// GS1 GTIN or HIBC product code: the model, not the patient.
    pub device_identifier: Option<String>,
    pub lot: Option<String>,
    pub placed_date: NaiveDate,
    pub state: String,
    pub ended_date: Option<NaiveDate>,
    pub days_in_place: Option<i64>,
}

/// One row per adverse event (withdrawn ones left out) of a case of the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventRow {
    pub event: String,
    pub record: String,
    pub patient: String,
    pub onset_date: NaiveDate,
    pub days_after_procedure: Option<i64>,
    pub detected: String,
    pub category: Option<String>,
    pub sir_severity: String,
    pub cirse_grade: Option<u8>,
    pub outcome: String,
    pub attributed: bool,
    pub attribution_basis: String,
}

/// The export of a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistryExport {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub dates: DateMode,
    pub procedures: Vec<ProcedureRow>,
    pub devices: Vec<DeviceRow>,
    pub adverse_events: Vec<EventRow>,
}

/// What one case brings to the export.
pub struct CaseRecord<'a> {
    pub case: &'a Case,
    pub patient: &'a Patient,
    pub procedure_name: String,
    pub events: Vec<&'a AdverseEvent>,
    pub devices: Vec<&'a TrackedDevice>,
    pub dose: Option<DoseTotals>,
}

fn severity_rank(code: &str) -> u8 {
    match code {
        "mild" => 1,
        "moderate" => 2,
        "severe" => 3,
        "life_threatening" => 4,
        "death" => 5,
        _ => 0,
    }
}

/// Builds the export of [from, until) from `records`, attributing events by `window` (§6).
pub fn export(
    records: &[CaseRecord<'_>],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    names: &Pseudonymiser<'_>,
    window: Duration,
) -> RegistryExport {
    let mut out = RegistryExport {
        from,
        until,
        dates: names.dates,
        procedures: Vec::new(),
        devices: Vec::new(),
        adverse_events: Vec::new(),
    };
    for r in records {
        let case = r.case;
        let Some(started) = case.procedure_started_at else {
            continue;
        };
        let patient = names.patient(case.patient_id);
        let record = names.case(case.id);
        let counted: Vec<&AdverseEvent> = r.events.iter().copied().filter(|e| e.counts()).collect();
        let attributed: Vec<&AdverseEvent> = counted
            .iter()
            .copied()
            .filter(|e| e.attributed(Some(started), window).0)
            .collect();
        let worst = attributed
            .iter()
            .max_by_key(|e| severity_rank(&code(&e.details.severity)));
        let procedure = case.procedure.as_ref();
        let dose = r.dose.as_ref();
        out.procedures.push(ProcedureRow {
            record: record.clone(),
            patient: patient.clone(),
            procedure_code: case
                .planned_procedure()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            procedure_name: r.procedure_name.clone(),
            urgency: code(&case.urgency),
            age_years: age_band(r.patient.details.birth_date, names.time.date_of(started)),
            sex: code(&r.patient.details.sex),
            procedure_date: names.date(case.patient_id, started),
            duration_minutes: case
                .procedure_completed_at
                .map(|end| (end - started).num_minutes()),
            sedation: case
                .vetting
                .as_ref()
                .map(|v| code(&v.sedation))
                .unwrap_or_default(),
            technical_success: procedure.and_then(|p| p.technical_success),
            consent_documented: case.consent.is_some(),
            time_out_completed: case.time_out.is_some(),
            safety_override: !case.safety_overrides.is_empty(),
            contrast_ml: procedure.and_then(|p| p.contrast_volume_ml),
            fluoroscopy_s: dose.and_then(|d| d.fluoroscopy_time).map(|s| s.0),
            kap_gy_cm2: dose
                .and_then(|d| d.kerma_area_product)
                .map(|k| k.gray_square_centimetres()),
            reference_air_kerma_mgy: dose
                .and_then(|d| d.reference_air_kerma)
                .map(|g| g.0 * 1000.0),
            peak_skin_dose_mgy: dose.and_then(|d| d.peak_skin_dose).map(|g| g.0 * 1000.0),
            ct_dlp_mgy_cm: dose
                .and_then(|d| d.ct_dose_length_product)
                .map(|d| d.0 * 100_000.0),
            adverse_events_attributed: attributed.len() as u32,
            worst_sir_severity: worst.map(|e| code(&e.details.severity)),
            worst_cirse_grade: attributed
                .iter()
                .filter_map(|e| e.details.cirse_grade)
                .max(),
            devices_left: r.devices.len() as u32,
            discharged: case.discharged_at.is_some(),
        });
        for d in &r.devices {
            let ended = match &d.state {
                LifeState::Removed { at } | LifeState::Exchanged { at } => Some(*at),
                _ => None,
            };
            out.devices.push(DeviceRow {
                device: names.device(&d.device.stream_id()),
                record: record.clone(),
                patient: patient.clone(),
                kind: d.placed.kind.as_str().to_string(),
                device_identifier: d.placed.udi.as_ref().map(|u| u.device_identifier.clone()),
                lot: d.placed.udi.as_ref().and_then(|u| u.lot.clone()),
                placed_date: names.date(case.patient_id, d.placed_at),
                state: d.state.as_str().to_string(),
                ended_date: ended.map(|at| names.date(case.patient_id, at)),
                days_in_place: ended.map(|at| (at - d.placed_at).num_days()),
            });
        }
        for e in &counted {
            let (is_attributed, basis) = e.attributed(Some(started), window);
            out.adverse_events.push(EventRow {
                event: names.adverse_event(&e.id),
                record: record.clone(),
                patient: patient.clone(),
                onset_date: names.date(case.patient_id, e.details.onset),
                days_after_procedure: Some((e.details.onset - started).num_days()),
                detected: e.details.detected.as_str().to_string(),
                category: e.details.category.map(|c| c.as_str().to_string()),
                sir_severity: code(&e.details.severity),
                cirse_grade: e.details.cirse_grade,
                outcome: e.details.outcome.as_str().to_string(),
                attributed: is_attributed,
                attribution_basis: match basis {
                    AttributionBasis::Window => "window",
                    AttributionBasis::Physician => "physician",
                }
                .to_string(),
            });
        }
    }
    out
}

/// One column of the data dictionary.
pub struct Column {
    pub table: &'static str,
    pub name: &'static str,
    pub kind: &'static str,
    /// UCUM unit or code system, where one applies.
    pub unit: &'static str,
    pub description: &'static str,
}

/// The data dictionary: every column of every table, in order.
pub const DICTIONARY: &[Column] = &[
    Column { table: "procedures", name: "record", kind: "string", unit: "", description: "Keyed pseudonym of the case (C-, HMAC-SHA256 with the department's secret)" },
    Column { table: "procedures", name: "patient", kind: "string", unit: "", description: "Keyed pseudonym of the patient (P-): the same patient has the same pseudonym in every export" },
    Column { table: "procedures", name: "procedure_code", kind: "code", unit: "Seldinger procedure catalogue id", description: "Procedure done (the vetted plan)" },
    Column { table: "procedures", name: "procedure_name", kind: "string", unit: "", description: "The catalogue's name of the procedure" },
    Column { table: "procedures", name: "urgency", kind: "code", unit: "routine|urgent|emergency", description: "Urgency of the referral" },
    Column { table: "procedures", name: "age_years", kind: "string", unit: "a", description: "Age in whole years on the procedure date; 90 and over as 90+" },
    Column { table: "procedures", name: "sex", kind: "code", unit: "female|male|other|unknown", description: "Administrative sex" },
    Column { table: "procedures", name: "procedure_date", kind: "date", unit: "YYYY-MM-DD", description: "Date the procedure began (department calendar; shifted per patient when the export says so)" },
    Column { table: "procedures", name: "duration_minutes", kind: "integer", unit: "min", description: "From the procedure's start to its completion" },
    Column { table: "procedures", name: "sedation", kind: "code", unit: "", description: "Planned sedation or anaesthesia" },
    Column { table: "procedures", name: "technical_success", kind: "boolean", unit: "", description: "Recorded technical success; empty when not recorded" },
    Column { table: "procedures", name: "consent_documented", kind: "boolean", unit: "", description: "Consent recorded before the procedure" },
    Column { table: "procedures", name: "time_out_completed", kind: "boolean", unit: "", description: "Time-out completed (safety checklist)" },
    Column { table: "procedures", name: "safety_override", kind: "boolean", unit: "", description: "Went ahead past a blocking checklist item on a physician's override" },
    Column { table: "procedures", name: "contrast_ml", kind: "decimal", unit: "mL", description: "Iodinated contrast given" },
    Column { table: "procedures", name: "fluoroscopy_s", kind: "decimal", unit: "s", description: "Fluoroscopy time (RDSR, DCM 113730)" },
    Column { table: "procedures", name: "kap_gy_cm2", kind: "decimal", unit: "Gy.cm2", description: "Kerma-area product, all planes (RDSR, DCM 113722)" },
    Column { table: "procedures", name: "reference_air_kerma_mgy", kind: "decimal", unit: "mGy", description: "Reference point air kerma, all planes (RDSR, DCM 113725)" },
    Column { table: "procedures", name: "peak_skin_dose_mgy", kind: "decimal", unit: "mGy", description: "Peak skin dose where the system reports one" },
    Column { table: "procedures", name: "ct_dlp_mgy_cm", kind: "decimal", unit: "mGy.cm", description: "CT dose-length product total (TID 10011)" },
    Column { table: "procedures", name: "adverse_events_attributed", kind: "integer", unit: "", description: "Adverse events attributed to the procedure (§6: within 30 days unless a physician recorded otherwise)" },
    Column { table: "procedures", name: "worst_sir_severity", kind: "code", unit: "SIR 2017: mild|moderate|severe|life_threatening|death", description: "Worst attributed adverse event" },
    Column { table: "procedures", name: "worst_cirse_grade", kind: "integer", unit: "CIRSE 2017: 1-6", description: "Highest CIRSE grade among attributed events" },
    Column { table: "procedures", name: "devices_left", kind: "integer", unit: "", description: "Devices the procedure left in the patient" },
    Column { table: "procedures", name: "discharged", kind: "boolean", unit: "", description: "Discharged from the department" },
    Column { table: "devices", name: "device", kind: "string", unit: "", description: "Keyed pseudonym of the device record (D-)" },
    Column { table: "devices", name: "record", kind: "string", unit: "", description: "The case that placed it (procedures.record)" },
    Column { table: "devices", name: "patient", kind: "string", unit: "", description: "The patient's pseudonym (procedures.patient)" },
    Column { table: "devices", name: "kind", kind: "code", unit: "", description: "Device type (ivc_filter, nephrostomy, biliary_drain, gastrostomy, port, tunnelled_line, drain, stent, …)" },
    Column { table: "devices", name: "device_identifier", kind: "string", unit: "GS1 GTIN or HIBC", description: "UDI device identifier (the model, from the scanned label); serial numbers are not exported" },
    Column { table: "devices", name: "lot", kind: "string", unit: "", description: "Lot or batch from the label" },
    Column { table: "devices", name: "placed_date", kind: "date", unit: "YYYY-MM-DD", description: "Date placed (shifted like the procedure's)" },
    Column { table: "devices", name: "state", kind: "code", unit: "in_place|removed|exchanged|permanent", description: "Where its life stands at export (§7)" },
    Column { table: "devices", name: "ended_date", kind: "date", unit: "YYYY-MM-DD", description: "Date removed or exchanged" },
    Column { table: "devices", name: "days_in_place", kind: "integer", unit: "d", description: "Days from placement to removal or exchange" },
    Column { table: "adverse_events", name: "event", kind: "string", unit: "", description: "Keyed pseudonym of the adverse event (E-)" },
    Column { table: "adverse_events", name: "record", kind: "string", unit: "", description: "The case (procedures.record)" },
    Column { table: "adverse_events", name: "patient", kind: "string", unit: "", description: "The patient's pseudonym" },
    Column { table: "adverse_events", name: "onset_date", kind: "date", unit: "YYYY-MM-DD", description: "Date it began (shifted like the procedure's)" },
    Column { table: "adverse_events", name: "days_after_procedure", kind: "integer", unit: "d", description: "Days from the procedure's start to onset" },
    Column { table: "adverse_events", name: "detected", kind: "code", unit: "in_room|in_recovery|after_discharge", description: "Where it came to light" },
    Column { table: "adverse_events", name: "category", kind: "code", unit: "", description: "Kind (bleeding, infection, dislodgement, occlusion, thromboembolism, organ_injury, contrast_reaction, sedation, pain, other); empty when not coded" },
    Column { table: "adverse_events", name: "sir_severity", kind: "code", unit: "SIR 2017", description: "SIR adverse event severity (§6)" },
    Column { table: "adverse_events", name: "cirse_grade", kind: "integer", unit: "CIRSE 2017: 1-6", description: "CIRSE grade (§6)" },
    Column { table: "adverse_events", name: "outcome", kind: "code", unit: "FHIR adverse-event-outcome", description: "How the patient came out of it" },
    Column { table: "adverse_events", name: "attributed", kind: "boolean", unit: "", description: "Attributed to the procedure (§6)" },
    Column { table: "adverse_events", name: "attribution_basis", kind: "code", unit: "window|physician", description: "By the 30-day window, or a physician's recorded decision" },
];

/// The tables of a CSV export.
pub const TABLES: [&str; 4] = ["procedures", "devices", "adverse_events", "dictionary"];

/// One CSV field, quoted when it needs to be (RFC 4180).
/// Quoted and formula-guarded as every CSV download is (a free-text or coded value beginning
/// with = must not run in the analyst's spreadsheet).
fn field(value: &str) -> String {
    crate::csv::field(value)
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map_or(String::new(), ToString::to_string)
}

fn rows_csv(table: &str, rows: Vec<Vec<String>>) -> String {
    let mut out: String = DICTIONARY
        .iter()
        .filter(|c| c.table == table)
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for row in rows {
        out.push_str(&row.iter().map(|v| field(v)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

impl RegistryExport {
    /// One table as CSV (RFC 4180, CRLF), its columns as the dictionary lists them; None for a
    /// table that is not one of [`TABLES`].
    pub fn csv(&self, table: &str) -> Option<String> {
        let rows: Vec<Vec<String>> = match table {
            "procedures" => self
                .procedures
                .iter()
                .map(|p| {
                    vec![
                        p.record.clone(),
                        p.patient.clone(),
                        p.procedure_code.clone(),
                        p.procedure_name.clone(),
                        p.urgency.clone(),
                        p.age_years.clone(),
                        p.sex.clone(),
                        p.procedure_date.to_string(),
                        opt(&p.duration_minutes),
                        p.sedation.clone(),
                        opt(&p.technical_success),
                        p.consent_documented.to_string(),
                        p.time_out_completed.to_string(),
                        p.safety_override.to_string(),
                        num(p.contrast_ml, 0),
                        num(p.fluoroscopy_s, 1),
                        num(p.kap_gy_cm2, 2),
                        num(p.reference_air_kerma_mgy, 1),
                        num(p.peak_skin_dose_mgy, 1),
                        num(p.ct_dlp_mgy_cm, 1),
                        p.adverse_events_attributed.to_string(),
                        opt(&p.worst_sir_severity),
                        opt(&p.worst_cirse_grade),
                        p.devices_left.to_string(),
                        p.discharged.to_string(),
                    ]
                })
                .collect(),
            "devices" => self
                .devices
                .iter()
                .map(|d| {
                    vec![
                        d.device.clone(),
                        d.record.clone(),
                        d.patient.clone(),
                        d.kind.clone(),
                        opt(&d.device_identifier),
                        opt(&d.lot),
                        d.placed_date.to_string(),
                        d.state.clone(),
                        opt(&d.ended_date),
                        opt(&d.days_in_place),
                    ]
                })
                .collect(),
            "adverse_events" => self
                .adverse_events
                .iter()
                .map(|e| {
                    vec![
                        e.event.clone(),
                        e.record.clone(),
                        e.patient.clone(),
                        e.onset_date.to_string(),
                        opt(&e.days_after_procedure),
                        e.detected.clone(),
                        opt(&e.category),
                        e.sir_severity.clone(),
                        opt(&e.cirse_grade),
                        e.outcome.clone(),
                        e.attributed.to_string(),
                        e.attribution_basis.clone(),
                    ]
                })
                .collect(),
            "dictionary" => {
                let mut out = String::from("table,column,type,unit_or_codes,description\r\n");
                for c in DICTIONARY {
                    out.push_str(
                        &[c.table, c.name, c.kind, c.unit, c.description]
                            .iter()
                            .map(|v| field(v))
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                    out.push_str("\r\n");
                }
                return Some(out);
            }
            _ => return None,
        };
        Some(rows_csv(table, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    #[test]
    fn pseudonyms_are_keyed_stable_and_dates_shift_by_whole_weeks_per_patient() {
        let time = DepartmentTime::default();
        let patient = PatientId(Uuid::from_u128(7));
        let a = Pseudonymiser::new(b"department secret", DateMode::Shifted, &time);
        let b = Pseudonymiser::new(b"another secret", DateMode::Shifted, &time);
        assert_eq!(
            a.patient(patient),
            a.patient(patient),
            "links across exports"
        );
        assert_ne!(a.patient(patient), b.patient(patient), "keyed");
        assert!(!a.patient(patient).contains(&patient.to_string()));
        assert_eq!(a.patient(patient).len(), 2 + 24);
        let at = Utc
            .with_ymd_and_hms(2026, 3, 4, 10, 0, 0)
            .single()
            .expect("time");
        let shifted = a.date(patient, at);
        let exact = time.date_of(at);
        let days = (exact - shifted).num_days();
        assert!(days % 7 == 0 && (7..=364).contains(&days), "{days}");
        assert_eq!(shifted.weekday(), exact.weekday());
        let later = a.date(patient, at + Duration::days(10));
        assert_eq!((later - shifted).num_days(), 10, "intervals hold");
        let plain = Pseudonymiser::new(b"department secret", DateMode::Exact, &time);
        assert_eq!(plain.date(patient, at), exact);
    }

    #[test]
    fn ages_band_at_ninety_and_csv_quotes_what_needs_it() {
        let birth = NaiveDate::from_ymd_opt(1930, 6, 1).expect("date");
        assert_eq!(
            age_band(birth, NaiveDate::from_ymd_opt(2019, 5, 31).expect("d")),
            "88"
        );
        assert_eq!(
            age_band(birth, NaiveDate::from_ymd_opt(2020, 6, 1).expect("d")),
            "90+"
        );
        assert_eq!(field("a, \"b\""), "\"a, \"\"b\"\"\"");
        assert_eq!(
            field("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\"",
            "the formula guard"
        );
        let every = DICTIONARY
            .iter()
            .filter(|c| c.table == "procedures")
            .count();
        let export = RegistryExport {
            from: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .expect("t"),
            until: Utc
                .with_ymd_and_hms(2026, 2, 1, 0, 0, 0)
                .single()
                .expect("t"),
            dates: DateMode::Exact,
            procedures: Vec::new(),
            devices: Vec::new(),
            adverse_events: Vec::new(),
        };
        let csv = export.csv("procedures").expect("a table");
        assert_eq!(
            csv.lines().next().map(|h| h.split(',').count()),
            Some(every)
        );
        assert!(export.csv("patients").is_none());
    }
}
