//! Repository operations for rooms, patients, referrals and cases, each change with its event.

use crate::page::{Cursor, Order, Page, PagedQuery};
use crate::scope::{condition, Rows};
use crate::AuditEntry;
use crate::{fetch_with_text_params, parse_ts, text, ts, Store, StoreError};
use chrono::{DateTime, Utc};
use seldinger_domain::access::RowScope;
use seldinger_domain::clinical::{LabResult, Medication};
use seldinger_domain::lifecycle::{Case, CaseEvent, CaseState};
use seldinger_domain::patient::{name_words, Mrn, Patient, PatientDetails, PatientEvent, SiteCode};
use seldinger_domain::{CaseId, EventMeta, PatientId, Referral, ReferralId, Room};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

/// Every projection row carries the record as JSON in `data`.
fn decode_all<T: serde::de::DeserializeOwned>(rows: &[AnyRow]) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|r| Ok(serde_json::from_str(&text(r, "data")?)?))
        .collect()
}

/// Ids bound in one `IN (…)`: well under both engines' limits on bound parameters.
const IDS_PER_QUERY: usize = 500;

fn without_entries<T>(entries: Vec<(u64, T)>) -> Vec<T> {
    entries.into_iter().map(|(_, item)| item).collect()
}

pub(crate) fn version_of(row: &sqlx::any::AnyRow) -> Result<u64, StoreError> {
    Ok(row.try_get::<i64, _>("version")?.max(0) as u64)
}

#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Patient,
    Referral,
    Case,
    DoseReport,
    FollowUpTask,
    Device,
    AdverseEvent,
    ProcedureReport,
    MmReview,
}

impl Stream {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Patient => "patient",
            Stream::Referral => "referral",
            Stream::Case => "case",
            Stream::DoseReport => "dose_report",
            Stream::FollowUpTask => "follow_up_task",
            Stream::Device => "device",
            Stream::AdverseEvent => "adverse_event",
            Stream::ProcedureReport => "procedure_report",
            Stream::MmReview => "mm_review",
        }
    }
}

/// One record kept as its event stream and a versioned row (`id`, `patient_id`, `version`,
/// `data`, and `status` where the table has one), as the procedure report and the M&M record are.
pub(crate) struct VersionedRow<'a> {
    pub stream: Stream,
    pub table: &'static str,
    pub id: &'a str,
    pub patient_id: String,
    /// The version the change makes (the row was at the one before; 1: no row yet).
    pub version: u64,
    pub data: String,
    pub status: Option<String>,
}

/// Appends the change's event and writes the row at its new version, on the caller's
/// transaction: false when another writer got there first (the caller rolls back and says so).
pub(crate) async fn write_versioned(
    conn: &mut AnyConnection,
    row: &VersionedRow<'_>,
    kind: &str,
    meta: &EventMeta,
    payload: &impl Serialize,
) -> Result<bool, StoreError> {
    match append_event(conn, row.stream, row.id, row.version, kind, meta, payload).await {
        Err(StoreError::Conflict { .. }) => return Ok(false),
        other => other?,
    }
    let (status_column, status_value) = match &row.status {
        Some(_) => (", status", ", $5"),
        None => ("", ""),
    };
    let sql = if row.version == 1 {
        format!(
            "INSERT INTO {} (id, patient_id, version, data{status_column}) \
             VALUES ($1, $2, $3, $4{status_value}) ON CONFLICT (id) DO NOTHING",
            row.table
        )
    } else {
        let set_status = if row.status.is_some() {
            ", status = $5"
        } else {
            ""
        };
        format!(
            "UPDATE {} SET patient_id = $2, version = $3, data = $4{set_status} \
             WHERE id = $1 AND version = $3 - 1",
            row.table
        )
    };
    let mut query = sqlx::query(&sql)
        .bind(row.id.to_string())
        .bind(row.patient_id.clone())
        .bind(row.version as i64)
        .bind(row.data.clone());
    if let Some(status) = &row.status {
        query = query.bind(status.clone());
    }
    Ok(query.execute(&mut *conn).await?.rows_affected() == 1)
}

/// Appends one event as version `version` of its stream. A taken version means another writer
/// got there first: that is a conflict, not an error to retry silently.
pub(crate) async fn append_event(
    conn: &mut AnyConnection,
    stream: Stream,
    id: &str,
    version: u64,
    kind: &str,
    meta: &EventMeta,
    payload: &impl Serialize,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "INSERT INTO events (stream_type, stream_id, stream_version, kind, actor, occurred_at, reason, payload) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(stream.name())
    .bind(id.to_string())
    .bind(version as i64)
    .bind(kind.to_string())
    .bind(meta.actor.as_str().to_string())
    .bind(ts(meta.at))
    .bind(meta.reason.clone())
    .bind(serde_json::to_string(payload)?)
    .execute(&mut *conn)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::Conflict {
            what: format!("{} {id}", stream.name()),
            expected: version.saturating_sub(1),
            current: version,
        }),
        Err(e) => Err(e.into()),
    }
}

/// One entry of a record's history, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "test-support", derive(serde::Deserialize))]
pub struct RecordedEvent {
    /// Position in the whole log.
    pub seq: i64,
    /// Version of the record this event produced.
    pub version: u64,
    pub kind: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The event as recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: serde_json::Value,
}

/// Which patients to list: every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct PatientFilter {
    /// Exact MRN (any site unless `site` is given).
    pub mrn: Option<String>,
    pub site: Option<String>,
    /// Words, each the start of a word of the family or given names (FHIR string search's
    /// default), case-insensitive.
    pub name: Option<String>,
    /// Only these patients (an empty list matches none).
    pub ids: Option<Vec<PatientId>>,
    /// Born on or after this day...
    pub born_from: Option<chrono::NaiveDate>,
    /// ...and before this one.
    pub born_before: Option<chrono::NaiveDate>,
    /// Last changed at or after this instant...
    pub changed_from: Option<DateTime<Utc>>,
    /// ...and before this one.
    pub changed_before: Option<DateTime<Utc>>,
}

/// `column IN (…)` over `values`, bound as parameters; no values match nothing.
pub(crate) fn one_of(column: &str, values: &[impl ToString], params: &mut Vec<String>) -> String {
    if values.is_empty() {
        return "1 = 0".into();
    }
    let first = params.len() + 1;
    params.extend(values.iter().map(ToString::to_string));
    let list: Vec<String> = (first..=params.len()).map(|n| format!("${n}")).collect();
    format!("{column} IN ({})", list.join(", "))
}

/// Conditions that a record's latest event falls in [from, before): a record changed at or after
/// `from` has an event then; one last changed before `before` has none at or after it. Both read
/// the event log's (stream, time) index.
pub(crate) fn changed_conditions(
    stream: Stream,
    id_column: &str,
    from: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    params: &mut Vec<String>,
) -> Vec<String> {
    let mut conditions = Vec::new();
    let changed_since = |at: DateTime<Utc>, params: &mut Vec<String>| {
        params.push(stream.name().to_string());
        params.push(ts(at));
        format!(
            "{id_column} IN (SELECT stream_id FROM events WHERE stream_type = ${} AND occurred_at >= ${})",
            params.len() - 1,
            params.len()
        )
    };
    if let Some(from) = from {
        conditions.push(changed_since(from, params));
    }
    if let Some(before) = before {
        conditions.push(format!("NOT {}", changed_since(before, params)));
    }
    conditions
}

/// Which referrals to list: every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct ReferralFilter {
    pub patient_id: Option<PatientId>,
    /// Only these referrals (an empty list matches none).
    pub ids: Option<Vec<ReferralId>>,
    /// Only those whose case is in one of these states (an empty list matches none).
    pub case_states: Option<Vec<CaseState>>,
    /// Filed by this user.
    pub referred_by: Option<String>,
    /// Received at or after this instant, and before the next.
    pub received_from: Option<DateTime<Utc>>,
    pub received_before: Option<DateTime<Utc>>,
    /// Last changed at or after this instant, and before the next.
    pub changed_from: Option<DateTime<Utc>>,
    pub changed_before: Option<DateTime<Utc>>,
}

/// A referral with who filed it (a user here, when one did) and where its case stands.
#[derive(Debug, Clone)]
pub struct FiledReferral {
    pub referral: Referral,
    pub referred_by: Option<String>,
    pub case_state: CaseState,
}

/// Which cases to list.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Cases booked to start in this span (from, up to): a department day, in its time zone.
    pub booked_between: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Any of these states; empty means all.
    pub states: Vec<CaseState>,
    pub patient_id: Option<PatientId>,
    /// Booked into this room.
    pub room: Option<String>,
    /// Only cases that were booked (a start time given).
    pub booked_only: bool,
    pub limit: u32,
}

impl Store {
    /// One projection row by id, decoded.
    async fn by_id<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let row = sqlx::query(&format!("SELECT data FROM {table} WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(decode_all(row.as_slice())?.pop())
    }

    /// The projection rows with these ids (unknown ones left out), in a few queries rather than
    /// one each: a list's facts cost the same for four rows as for four hundred.
    async fn by_ids<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        ids: &[impl ToString],
    ) -> Result<Vec<T>, StoreError> {
        self.rows_with(table, "id", ids).await
    }

    /// The projection rows of `table` whose `column` is one of `values`, decoded, in a few
    /// queries rather than one each (a page's or a period's facts).
    pub(crate) async fn rows_with<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        column: &'static str,
        values: &[impl ToString],
    ) -> Result<Vec<T>, StoreError> {
        let mut found = Vec::with_capacity(values.len());
        self.each_row_for_ids(
            values,
            &[],
            |list| format!("SELECT data FROM {table} WHERE {column} IN ({list})"),
            |row| {
                found.push(serde_json::from_str(&text(row, "data")?)?);
                Ok(())
            },
        )
        .await?;
        Ok(found)
    }

    /// Runs the statement `sql` builds for a list of placeholders (numbered after `fixed`'s
    /// parameters) once per few hundred of `ids` (each once, in order) on one connection, and
    /// hands each row to `each`: a list's facts in a few queries, not one per row. No ids: no
    /// statement, and no wait for a connection either.
    pub(crate) async fn each_row_for_ids(
        &self,
        ids: &[impl ToString],
        fixed: &[String],
        sql: impl Fn(&str) -> String,
        mut each: impl FnMut(&AnyRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        for chunk in ids.chunks(IDS_PER_QUERY - fixed.len()) {
            let list = (fixed.len() + 1..=fixed.len() + chunk.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let params: Vec<String> = fixed.iter().chain(chunk).cloned().collect();
            for row in &fetch_with_text_params(&mut conn, &sql(&list), &params).await? {
                each(row)?;
            }
        }
        Ok(())
    }

    // ----- rooms -----

    /// Adds or replaces a room (department configuration, not a clinical record).
    pub async fn put_room(&self, room: &Room, sort_order: i64) -> Result<(), StoreError> {
        let data = serde_json::to_string(room)?;
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(room.id.as_str().to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO rooms (id, sort_order, data) VALUES ($1, $2, $3)")
            .bind(room.id.as_str().to_string())
            .bind(sort_order)
            .bind(data)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        let rows = sqlx::query("SELECT data FROM rooms ORDER BY sort_order, id")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        decode_all(&rows)
    }

    // ----- patients -----

    /// Registers a new patient. An MRN already registered at the site is refused.
    pub async fn register_patient(
        &self,
        id: PatientId,
        details: PatientDetails,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<Patient, StoreError> {
        let event = PatientEvent::Registered { details };
        let patient = Patient::replay(id, [&event])
            .ok_or_else(|| StoreError::Corrupt("registration".into()))?;
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let inserted = sqlx::query(
            "INSERT INTO patients (id, site, mrn, name_search, birth_date, version, data, registered_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.to_string())
        .bind(patient.details.site.as_str().to_string())
        .bind(patient.details.mrn.as_str().to_string())
        .bind(name_search(&patient.details))
        .bind(patient.details.birth_date.to_string())
        .bind(patient.version as i64)
        .bind(serde_json::to_string(&patient)?)
        .bind(meta.actor.as_str().to_string())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if StoreError::is_unique_violation(&e) => {
                return Err(duplicate_mrn(&patient.details))
            }
            other => other?,
        };
        keep_name_words(&mut tx, id, &patient.details).await?;
        append_event(
            &mut tx,
            Stream::Patient,
            &id.to_string(),
            1,
            event.kind(),
            meta,
            &event,
        )
        .await?;
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(patient)
    }

    /// Replaces a patient's details, if nobody changed them since `expected_version`.
    pub async fn update_patient(
        &self,
        id: PatientId,
        expected_version: u64,
        details: PatientDetails,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<Patient, StoreError> {
        let current = self
            .patient(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("patient {id}")))?;
        self.update_loaded_patient(&current, expected_version, details, meta, audit)
            .await
    }

    /// [`Self::update_patient`] of a record the caller has just read (`current`): not read again;
    /// a change made since is still refused by the version check.
    pub async fn update_loaded_patient(
        &self,
        current: &Patient,
        expected_version: u64,
        details: PatientDetails,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<Patient, StoreError> {
        let id = current.id;
        let event = PatientEvent::DetailsUpdated {
            details: details.clone(),
        };
        let updated = Patient {
            id,
            details,
            version: expected_version + 1,
            merged_into: current.merged_into,
        };
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        append_patient_event(&mut tx, current, expected_version, &event, meta).await?;
        let result = sqlx::query(
            "UPDATE patients SET site = $1, mrn = $2, name_search = $3, birth_date = $4, version = $5, data = $6 \
             WHERE id = $7 AND version = $8",
        )
        .bind(updated.details.site.as_str().to_string())
        .bind(updated.details.mrn.as_str().to_string())
        .bind(name_search(&updated.details))
        .bind(updated.details.birth_date.to_string())
        .bind(updated.version as i64)
        .bind(serde_json::to_string(&updated)?)
        .bind(id.to_string())
        .bind(expected_version as i64)
        .execute(&mut *tx)
        .await;
        match result {
            Err(e) if StoreError::is_unique_violation(&e) => {
                return Err(duplicate_mrn(&updated.details))
            }
            Err(e) => return Err(e.into()),
            Ok(r) if r.rows_affected() == 0 => {
                return Err(conflict("patient", id, expected_version, current.version))
            }
            Ok(_) => {}
        }
        keep_name_words(&mut tx, id, &updated.details).await?;
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Replaces what an order asks for (HL7 XO) on its referral and on the case it opened (the
    /// requested procedure and urgency), each with an `order_changed` event, in one commit; a
    /// referral or case changed since they were read is refused.
    pub async fn change_order(
        &self,
        referral: &Referral,
        case: &Case,
        details: &seldinger_domain::referral::ReferralDetails,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<(Referral, Case), StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let mut changed = referral.clone();
        changed.details = details.clone();
        changed.version = referral.version + 1;
        append_event(
            &mut tx,
            Stream::Referral,
            &referral.id.to_string(),
            changed.version,
            "order_changed",
            meta,
            details,
        )
        .await?;
        let result = sqlx::query(
            "UPDATE referrals SET version = $1, data = $2 WHERE id = $3 AND version = $4",
        )
        .bind(changed.version as i64)
        .bind(serde_json::to_string(&changed)?)
        .bind(referral.id.to_string())
        .bind(referral.version as i64)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(conflict(
                "referral",
                referral.id,
                referral.version,
                referral.version + 1,
            ));
        }
        let mut after = case.clone();
        after.requested_procedure = details.requested_procedure.clone();
        after.urgency = details.urgency;
        after.version = case.version + 1;
        after.updated_at = meta.at;
        let payload = serde_json::json!({
            "requested_procedure": details.requested_procedure,
            "urgency": details.urgency,
        });
        append_event(
            &mut tx,
            Stream::Case,
            &case.id.to_string(),
            after.version,
            "order_changed",
            meta,
            &payload,
        )
        .await?;
        let result = sqlx::query("UPDATE cases SET version = $1, data = $2, updated_at = $3 WHERE id = $4 AND version = $5")
            .bind(after.version as i64)
            .bind(serde_json::to_string(&after)?)
            .bind(ts(meta.at))
            .bind(case.id.to_string())
            .bind(case.version as i64)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(conflict("case", case.id, case.version, case.version + 1));
        }
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok((changed, after))
    }

    /// Merges `merged` into `survivor` (HL7 A40), all or nothing: the merged record's referrals,
    /// cases and follow-up tasks move (each with a `patient_merged` event in its own stream and
    /// its version moved on, so an edit based on the old record is refused), its labs and drugs
    /// move, and both records say so in their histories. The merged record is kept.
    pub async fn merge_patients(
        &self,
        survivor: &Patient,
        merged: &Patient,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<Patient, StoreError> {
        let (to, from) = (survivor.id.to_string(), merged.id.to_string());
        let payload = serde_json::json!({"from": from, "to": to});
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let (from, to) = (from.as_str(), to.as_str());
        let moved = seldinger_domain::patient::MergeSummary {
            referrals: move_stream_rows(
                &mut tx,
                Stream::Referral,
                "referrals",
                from,
                to,
                meta,
                &payload,
            )
            .await?,
            cases: move_stream_rows(&mut tx, Stream::Case, "cases", from, to, meta, &payload)
                .await?,
            follow_up_tasks: move_stream_rows(
                &mut tx,
                Stream::FollowUpTask,
                "follow_up_tasks",
                from,
                to,
                meta,
                &payload,
            )
            .await?,
            devices: move_stream_rows(&mut tx, Stream::Device, "devices", from, to, meta, &payload)
                .await?,
            adverse_events: move_stream_rows(
                &mut tx,
                Stream::AdverseEvent,
                "adverse_events",
                from,
                to,
                meta,
                &payload,
            )
            .await?,
            procedure_reports: move_stream_rows(
                &mut tx,
                Stream::ProcedureReport,
                "procedure_reports",
                from,
                to,
                meta,
                &payload,
            )
            .await?,
            lab_results: move_facts(&mut tx, "lab_results", from, to).await?,
            medications: move_facts(&mut tx, "medications", from, to).await?,
        };

        let into = PatientEvent::MergedInto {
            survivor: survivor.id,
            survivor_mrn: survivor.details.mrn.as_str().to_string(),
        };
        let from_event = PatientEvent::MergedFrom {
            merged: merged.id,
            merged_mrn: merged.details.mrn.as_str().to_string(),
            moved,
        };
        let mut merged_after = merged.clone();
        merged_after.merged_into = Some(survivor.id);
        merged_after.version += 1;
        let mut survivor_after = survivor.clone();
        survivor_after.version += 1;
        for (before, after, event) in [
            (merged, &merged_after, &into),
            (survivor, &survivor_after, &from_event),
        ] {
            append_patient_event(&mut tx, before, before.version, event, meta).await?;
            let result = sqlx::query(
                "UPDATE patients SET version = $1, data = $2 WHERE id = $3 AND version = $4",
            )
            .bind(after.version as i64)
            .bind(serde_json::to_string(after)?)
            .bind(after.id.to_string())
            .bind(before.version as i64)
            .execute(&mut *tx)
            .await?;
            if result.rows_affected() == 0 {
                return Err(conflict(
                    "patient",
                    before.id,
                    before.version,
                    before.version + 1,
                ));
            }
        }
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(survivor_after)
    }

    /// Adds a medication to the patient's list.
    pub async fn record_medication(
        &self,
        patient_id: PatientId,
        expected_version: u64,
        medication: Medication,
        meta: &EventMeta,
    ) -> Result<Patient, StoreError> {
        let event = PatientEvent::MedicationRecorded { medication };
        self.record_patient_fact(patient_id, expected_version, &event, meta, &[])
            .await
    }

    /// Adds a laboratory result.
    pub async fn record_lab_result(
        &self,
        patient_id: PatientId,
        expected_version: u64,
        result: LabResult,
        meta: &EventMeta,
    ) -> Result<Patient, StoreError> {
        let event = PatientEvent::LabResultRecorded { result };
        self.record_patient_fact(patient_id, expected_version, &event, meta, &[])
            .await
    }

    /// Appends a patient event that adds a fact (drug, lab), stores the fact in its table for
    /// querying, and bumps the patient's version — all or nothing.
    pub async fn record_patient_fact(
        &self,
        patient_id: PatientId,
        expected_version: u64,
        event: &PatientEvent,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<Patient, StoreError> {
        self.record_patient_facts(
            patient_id,
            expected_version,
            std::slice::from_ref(event),
            meta,
            audit,
        )
        .await
    }

    /// Several fact events in one commit (a laboratory report's results arrive together): each is
    /// the next version of the patient's stream; any one refused undoes them all.
    pub async fn record_patient_facts(
        &self,
        patient_id: PatientId,
        expected_version: u64,
        events: &[PatientEvent],
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<Patient, StoreError> {
        let current = self
            .patient(patient_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("patient {patient_id}")))?;
        let mut updated = current.clone();
        updated.version = expected_version + events.len() as u64;
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let mut at_version = current.clone();
        for event in events {
            append_patient_event(&mut tx, &at_version, at_version.version, event, meta).await?;
            write_fact(&mut tx, patient_id, event, meta).await?;
            at_version.version += 1;
        }
        let result = sqlx::query(
            "UPDATE patients SET version = $1, data = $2 WHERE id = $3 AND version = $4",
        )
        .bind(updated.version as i64)
        .bind(serde_json::to_string(&updated)?)
        .bind(patient_id.to_string())
        .bind(expected_version as i64)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(conflict(
                "patient",
                patient_id,
                expected_version,
                current.version,
            ));
        }
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(updated)
    }

    pub async fn patient(&self, id: PatientId) -> Result<Option<Patient>, StoreError> {
        self.by_id("patients", &id.to_string()).await
    }

    /// The patients with these ids (unknown ones left out), in a few queries.
    pub async fn patients_by_id(&self, ids: &[PatientId]) -> Result<Vec<Patient>, StoreError> {
        self.by_ids("patients", ids).await
    }

    /// Finds patients by exact MRN (any site) and/or by part of the name, case-insensitive: the
    /// first page (see [`Store::search_patients_page`]).
    pub async fn search_patients(
        &self,
        scope: &RowScope,
        mrn: Option<&str>,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Patient>, StoreError> {
        Ok(self
            .search_patients_page(
                scope,
                &PatientFilter {
                    mrn: mrn.map(str::to_string),
                    name: name.map(str::to_string),
                    ..PatientFilter::default()
                },
                None,
                limit,
            )
            .await?
            .items)
    }

    /// A page of the patients `scope` may see matching the MRN and/or name, by name then MRN.
    pub async fn search_patients_page(
        &self,
        scope: &RowScope,
        filter: &PatientFilter,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Patient>, StoreError> {
        let mut params = Vec::new();
        let mut conditions: Vec<String> =
            condition(scope, Rows::PatientIdentity("patients"), &mut params)
                .into_iter()
                .collect();
        if let Some(mrn) = &filter.mrn {
            params.push(mrn.trim().to_ascii_uppercase());
            conditions.push(format!("mrn = ${}", params.len()));
        }
        if let Some(site) = &filter.site {
            params.push(site.trim().to_ascii_uppercase());
            conditions.push(format!("site = ${}", params.len()));
        }
        if let Some(name) = &filter.name {
            // Each word typed starts a word of the name: a range of the words' index (binary
            // order on both engines, so every word with this start lies in it).
            let lowered = name.to_lowercase();
            let words = name_words(&lowered);
            if words.is_empty() {
                // No word to look for finds no one (the application refuses it first).
                conditions.push("1 = 0".to_string());
            }
            for word in words {
                params.push(word.to_string());
                params.push(format!("{word}{}", char::MAX));
                conditions.push(format!(
                    "id IN (SELECT patient_id FROM patient_name_words WHERE word >= ${} AND word < ${})",
                    params.len() - 1,
                    params.len()
                ));
            }
        }
        if let Some(ids) = &filter.ids {
            conditions.push(one_of("id", ids, &mut params));
        }
        // ISO dates compare as text.
        if let Some(from) = filter.born_from {
            params.push(from.to_string());
            conditions.push(format!("birth_date >= ${}", params.len()));
        }
        if let Some(until) = filter.born_before {
            params.push(until.to_string());
            conditions.push(format!("birth_date < ${}", params.len()));
        }
        conditions.extend(changed_conditions(
            Stream::Patient,
            "patients.id",
            filter.changed_from,
            filter.changed_before,
            &mut params,
        ));
        let order = Order {
            key: "name_search || ' ' || mrn",
            id: "id",
            descending: false,
            numeric: false,
        };
        self.page(
            PagedQuery {
                from: "patients",
                columns: "data",
                order,
                conditions,
                params,
            },
            after,
            limit.clamp(1, 500) as usize,
            decode_all,
        )
        .await
    }

    /// When each record of `stream` named was last changed (its latest event), by id: a page's
    /// records in one query per chunk. Ids with no event are absent.
    pub async fn last_changed(
        &self,
        stream: &str,
        ids: &[impl ToString],
    ) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        self.latest_event_at(stream, None, ids).await
    }

    /// When each record of `stream` named last had an event of `kind` (the latest, by id), as
    /// [`Store::last_changed`]: a list's arrival times in one query per chunk, not a history each.
    pub async fn last_event_of_kind(
        &self,
        stream: &str,
        kind: &str,
        ids: &[impl ToString],
    ) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        self.latest_event_at(stream, Some(kind), ids).await
    }

    async fn latest_event_at(
        &self,
        stream: &str,
        kind: Option<&str>,
        ids: &[impl ToString],
    ) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let mut changed = HashMap::with_capacity(ids.len());
        let fixed: Vec<String> = std::iter::once(stream.to_string())
            .chain(kind.map(str::to_string))
            .collect();
        self.each_row_for_ids(
            ids,
            &fixed,
            |list| {
                format!(
                    "SELECT stream_id, MAX(occurred_at) AS at FROM events \
                     WHERE stream_type = $1 {} AND stream_id IN ({list}) GROUP BY stream_id",
                    if kind.is_some() { "AND kind = $2" } else { "" },
                )
            },
            |row| {
                let id: String = row.try_get("stream_id")?;
                let at: String = row.try_get("at")?;
                changed.insert(id, parse_ts(&at)?);
                Ok(())
            },
        )
        .await?;
        Ok(changed)
    }

    /// The lab result a sender's identifier names (its patient and entry), withdrawn or not.
    pub async fn lab_result_by_identifier(
        &self,
        identifier: &str,
    ) -> Result<Option<(PatientId, u64)>, StoreError> {
        let row = sqlx::query("SELECT patient_id, seq FROM lab_results WHERE identifier = $1")
            .bind(identifier.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| {
            let patient = text(&r, "patient_id")?
                .parse()
                .map_err(|e: String| StoreError::Corrupt(e))?;
            Ok((patient, r.try_get::<i64, _>("seq")?.max(0) as u64))
        })
        .transpose()
    }

    /// A patient's entries of a fact table not withdrawn as entered in error, with their numbers.
    async fn current_entries<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        patient_id: PatientId,
        order: &'static str,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT seq, data FROM {table} \
             WHERE patient_id = $1 AND entered_in_error_at IS NULL ORDER BY {order}"
        ))
        .bind(patient_id.to_string())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let seq = r.try_get::<i64, _>("seq")?.max(0) as u64;
                Ok((seq, serde_json::from_str(&text(r, "data")?)?))
            })
            .collect()
    }

    /// [`Store::current_entries`] for many patients in a few queries, each patient's in the
    /// same order; a patient with none has an empty list.
    async fn current_entries_of<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        patient_ids: &[PatientId],
        order: &'static str,
    ) -> Result<HashMap<PatientId, Vec<T>>, StoreError> {
        let mut found: HashMap<PatientId, Vec<T>> =
            patient_ids.iter().map(|id| (*id, Vec::new())).collect();
        self.each_row_for_ids(
            patient_ids,
            &[],
            |list| {
                format!(
                    "SELECT patient_id, data FROM {table} \
                     WHERE patient_id IN ({list}) AND entered_in_error_at IS NULL ORDER BY {order}"
                )
            },
            |row| {
                let patient = PatientId(crate::access::uuid_of(row, "patient_id")?);
                found
                    .entry(patient)
                    .or_default()
                    .push(serde_json::from_str(&text(row, "data")?)?);
                Ok(())
            },
        )
        .await?;
        Ok(found)
    }

    /// The current drugs of each of these patients, as [`Store::medications`] gives one's.
    pub async fn medications_of(
        &self,
        patient_ids: &[PatientId],
    ) -> Result<HashMap<PatientId, Vec<Medication>>, StoreError> {
        self.current_entries_of("medications", patient_ids, "seq")
            .await
    }

    /// The current results of each of these patients, newest first, as [`Store::lab_results`].
    pub async fn lab_results_of(
        &self,
        patient_ids: &[PatientId],
    ) -> Result<HashMap<PatientId, Vec<LabResult>>, StoreError> {
        self.current_entries_of("lab_results", patient_ids, "drawn_at DESC, seq DESC")
            .await
    }

    /// The patient's current drugs (not those withdrawn as entered in error), in the order recorded.
    pub async fn medications(&self, patient_id: PatientId) -> Result<Vec<Medication>, StoreError> {
        Ok(without_entries(self.medication_entries(patient_id).await?))
    }

    /// The current drugs with the entry number a correction names.
    pub async fn medication_entries(
        &self,
        patient_id: PatientId,
    ) -> Result<Vec<(u64, Medication)>, StoreError> {
        self.current_entries("medications", patient_id, "seq").await
    }

    /// The patient registered at `site` under `mrn`, if any (an interface names patients so).
    pub async fn patient_by_mrn(
        &self,
        site: &SiteCode,
        mrn: &Mrn,
    ) -> Result<Option<Patient>, StoreError> {
        let row = sqlx::query("SELECT data FROM patients WHERE site = $1 AND mrn = $2")
            .bind(site.as_str().to_string())
            .bind(mrn.as_str().to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        match row {
            Some(row) => Ok(Some(serde_json::from_str(&text(&row, "data")?)?)),
            None => Ok(None),
        }
    }

    /// Current results newest first.
    pub async fn lab_results(&self, patient_id: PatientId) -> Result<Vec<LabResult>, StoreError> {
        Ok(without_entries(self.lab_result_entries(patient_id).await?))
    }

    /// Current results newest first, with the entry number a correction names.
    pub async fn lab_result_entries(
        &self,
        patient_id: PatientId,
    ) -> Result<Vec<(u64, LabResult)>, StoreError> {
        self.current_entries("lab_results", patient_id, "drawn_at DESC, seq DESC")
            .await
    }

    // ----- referrals and cases -----

    /// Records a referral and opens its case, atomically.
    pub async fn create_referral(
        &self,
        referral: &Referral,
        case: &Case,
        opening: &CaseEvent,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        self.create_referral_for(referral, case, opening, meta, meta.actor.as_str(), audit)
            .await
    }

    /// Records a referral made on behalf of `referred_by` (an order an interface files for the
    /// clinician who placed it: their scope then holds it). An order number already filed is
    /// refused.
    pub async fn create_referral_for(
        &self,
        referral: &Referral,
        case: &Case,
        opening: &CaseEvent,
        meta: &EventMeta,
        referred_by: &str,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let placer = referral.details.placer_order.as_ref().map(|p| p.key());
        let inserted = sqlx::query(
            "INSERT INTO referrals (id, patient_id, case_id, received_at, version, data, referred_by, placer_order) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(referral.id.to_string())
        .bind(referral.patient_id.to_string())
        .bind(referral.case_id.to_string())
        .bind(ts(referral.received_at))
        .bind(referral.version as i64)
        .bind(serde_json::to_string(referral)?)
        .bind(referred_by.to_string())
        .bind(placer.clone())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if StoreError::is_unique_violation(&e) && placer.is_some() => {
                return Err(StoreError::Duplicate(format!(
                    "order {} was filed already",
                    placer.unwrap_or_default()
                )))
            }
            other => other?,
        };
        append_event(
            &mut tx,
            Stream::Referral,
            &referral.id.to_string(),
            1,
            "received",
            meta,
            &referral.details,
        )
        .await?;
        insert_case(&mut tx, case, referred_by).await?;
        append_event(
            &mut tx,
            Stream::Case,
            &case.id.to_string(),
            1,
            opening.kind().as_str(),
            meta,
            opening,
        )
        .await?;
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The referral filed for an order (`PlacerOrder::key`), if any.
    pub async fn referral_by_placer_order(
        &self,
        key: &str,
    ) -> Result<Option<Referral>, StoreError> {
        let row = sqlx::query("SELECT data FROM referrals WHERE placer_order = $1")
            .bind(key.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        match row {
            Some(row) => Ok(Some(serde_json::from_str(&text(&row, "data")?)?)),
            None => Ok(None),
        }
    }

    pub async fn referral(&self, id: ReferralId) -> Result<Option<Referral>, StoreError> {
        self.by_id("referrals", &id.to_string()).await
    }

    /// The referrals with these ids (unknown ones left out), in a few queries.
    pub async fn referrals_by_id(&self, ids: &[ReferralId]) -> Result<Vec<Referral>, StoreError> {
        self.by_ids("referrals", ids).await
    }

    /// The first page of referrals (see [`Store::referrals_page`]).
    pub async fn referrals(
        &self,
        scope: &RowScope,
        awaiting_vetting: bool,
        limit: u32,
    ) -> Result<Vec<Referral>, StoreError> {
        Ok(self
            .referrals_page(scope, awaiting_vetting, None, limit)
            .await?
            .items)
    }

    /// A page of referrals, newest first; with `awaiting_vetting`, only those whose case waits
    /// for a decision.
    pub async fn referrals_page(
        &self,
        scope: &RowScope,
        awaiting_vetting: bool,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Referral>, StoreError> {
        let mut params = Vec::new();
        let mut conditions: Vec<String> = condition(scope, Rows::Referrals("r"), &mut params)
            .into_iter()
            .collect();
        if awaiting_vetting {
            conditions.push("c.state IN ('referred', 'more_information_requested')".to_string());
        }
        let order = Order {
            key: "r.received_at",
            id: "r.id",
            descending: true,
            numeric: false,
        };
        self.page(
            PagedQuery {
                from: "referrals r JOIN cases c ON c.id = r.case_id",
                columns: "r.data AS data",
                order,
                conditions,
                params,
            },
            after,
            limit.clamp(1, 500) as usize,
            decode_all,
        )
        .await
    }

    /// A page of the referrals within `scope` that match `filter`, newest first, each with who
    /// filed it and where its case stands.
    pub async fn find_referrals_page(
        &self,
        scope: &RowScope,
        filter: &ReferralFilter,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<FiledReferral>, StoreError> {
        let mut params = Vec::new();
        let mut conditions: Vec<String> = condition(scope, Rows::Referrals("r"), &mut params)
            .into_iter()
            .collect();
        if let Some(patient) = filter.patient_id {
            params.push(patient.to_string());
            conditions.push(format!("r.patient_id = ${}", params.len()));
        }
        if let Some(ids) = &filter.ids {
            conditions.push(one_of("r.id", ids, &mut params));
        }
        if let Some(states) = &filter.case_states {
            let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
            conditions.push(one_of("c.state", &states, &mut params));
        }
        if let Some(by) = &filter.referred_by {
            params.push(by.clone());
            conditions.push(format!("r.referred_by = ${}", params.len()));
        }
        if let Some(from) = filter.received_from {
            params.push(ts(from));
            conditions.push(format!("r.received_at >= ${}", params.len()));
        }
        if let Some(before) = filter.received_before {
            params.push(ts(before));
            conditions.push(format!("r.received_at < ${}", params.len()));
        }
        conditions.extend(changed_conditions(
            Stream::Referral,
            "r.id",
            filter.changed_from,
            filter.changed_before,
            &mut params,
        ));
        let order = Order {
            key: "r.received_at",
            id: "r.id",
            descending: true,
            numeric: false,
        };
        self.page(
            PagedQuery {
                from: "referrals r JOIN cases c ON c.id = r.case_id",
                columns: "r.data AS data, r.referred_by AS referred_by, c.state AS state",
                order,
                conditions,
                params,
            },
            after,
            limit.clamp(1, 500) as usize,
            |rows| {
                rows.iter()
                    .map(|row| {
                        let state = text(row, "state")?;
                        Ok(FiledReferral {
                            referral: serde_json::from_str(&text(row, "data")?)?,
                            referred_by: row.try_get::<Option<String>, _>("referred_by")?,
                            case_state: CaseState::parse(&state).map_err(StoreError::Corrupt)?,
                        })
                    })
                    .collect()
            },
        )
        .await
    }

    pub async fn case(&self, id: CaseId) -> Result<Option<Case>, StoreError> {
        self.by_id("cases", &id.to_string()).await
    }

    /// The cases with these ids (unknown ids are left out), read in a few queries rather than one
    /// each: statistics over a year of reports name thousands.
    pub async fn cases_by_id(&self, ids: &[CaseId]) -> Result<Vec<Case>, StoreError> {
        self.by_ids("cases", ids).await
    }
    /// The first page of cases matching the filter (see [`Store::cases_page`]).
    pub async fn cases(
        &self,
        scope: &RowScope,
        filter: &CaseFilter,
    ) -> Result<Vec<Case>, StoreError> {
        Ok(self.cases_page(scope, filter, None).await?.items)
    }

    /// A page of the cases `scope` may see that match the filter: booked ones by start time, then
    /// the rest by last change, each tie broken by id; with the total.
    pub async fn cases_page(
        &self,
        scope: &RowScope,
        filter: &CaseFilter,
        after: Option<&Cursor>,
    ) -> Result<Page<Case>, StoreError> {
        let mut params = Vec::new();
        let mut conditions: Vec<String> = condition(scope, Rows::Cases("cases"), &mut params)
            .into_iter()
            .collect();
        if let Some((from, until)) = filter.booked_between {
            // Stored instants share one fixed UTC text format, so text order is time order.
            params.push(ts(from));
            conditions.push(format!("scheduled_start >= ${}", params.len()));
            params.push(ts(until));
            conditions.push(format!("scheduled_start < ${}", params.len()));
        }
        if !filter.states.is_empty() {
            let mut placeholders = Vec::new();
            for state in &filter.states {
                params.push(state.as_str().to_string());
                placeholders.push(format!("${}", params.len()));
            }
            conditions.push(format!("state IN ({})", placeholders.join(", ")));
        }
        if let Some(patient) = filter.patient_id {
            params.push(patient.to_string());
            conditions.push(format!("patient_id = ${}", params.len()));
        }
        if let Some(room) = &filter.room {
            params.push(room.clone());
            conditions.push(format!("room = ${}", params.len()));
        }
        if filter.booked_only {
            conditions.push("scheduled_start IS NOT NULL".into());
        }
        let order = Order {
            key: "CASE WHEN scheduled_start IS NULL THEN '1' || updated_at ELSE '0' || scheduled_start END",
            id: "id",
            descending: false,
            numeric: false,
        };
        let limit = if filter.limit == 0 {
            200
        } else {
            filter.limit.min(1000)
        } as usize;
        self.page(
            PagedQuery {
                from: "cases",
                columns: "data",
                order,
                conditions,
                params,
            },
            after,
            limit,
            decode_all,
        )
        .await
    }

    /// Records one lifecycle event and the case it produced, if the case is still at
    /// `expected_version` (`after` is the case with `event` applied), together with the follow-up
    /// tasks the event brings (a discharge's device follow-up) and the messages it owes other
    /// systems: all or nothing, so a task or message is never lost to a failure after the event
    /// stood, and none goes out for an event that did not.
    pub async fn record_case_event(
        &self,
        after: &Case,
        expected_version: u64,
        event: &CaseEvent,
        meta: &EventMeta,
        with: WithCaseEvent<'_>,
    ) -> Result<(), StoreError> {
        let WithCaseEvent {
            follow_ups,
            owed,
            audit,
        } = with;
        let id = after.id.to_string();
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let append = append_event(
            &mut tx,
            Stream::Case,
            &id,
            expected_version + 1,
            event.kind().as_str(),
            meta,
            event,
        )
        .await;
        if let Err(StoreError::Conflict { .. }) = append {
            // PostgreSQL aborts the transaction on the violation: read the version outside it.
            tx.rollback().await?;
            drop(conn);
            let current = self.current_version("cases", &id).await?;
            return Err(conflict("case", after.id, expected_version, current));
        }
        append?;
        let booking = after.booking.as_ref();
        let result = sqlx::query(
            "UPDATE cases SET state = $1, room = $2, scheduled_start = $3, updated_at = $4, \
             version = $5, data = $6, accession_number = $9, study_instance_uid = $10, \
             procedure_started_at = $11 WHERE id = $7 AND version = $8",
        )
        .bind(after.state.as_str().to_string())
        .bind(booking.map(|b| b.room.as_str().to_string()))
        .bind(booking.map(|b| ts(b.start)))
        .bind(ts(after.updated_at))
        .bind(after.version as i64)
        .bind(serde_json::to_string(after)?)
        .bind(id.clone())
        .bind(expected_version as i64)
        .bind(after.accession_number.clone())
        .bind(after.study_instance_uid.clone())
        .bind(after.procedure_started_at.map(ts))
        .execute(&mut *tx)
        .await;
        let result = match result {
            Err(e) if StoreError::is_unique_violation(&e) => {
                tx.rollback().await?;
                return Err(StoreError::Duplicate(format!(
                    "accession number {} is already given to another case",
                    after.accession_number.as_deref().unwrap_or_default()
                )));
            }
            other => other?,
        };
        if result.rows_affected() == 0 {
            tx.rollback().await?;
            drop(conn);
            let current = self.current_version("cases", &id).await?;
            return Err(conflict("case", after.id, expected_version, current));
        }
        for task in follow_ups {
            crate::followup::insert_follow_up_task(&mut tx, task, meta).await?;
        }
        // The placement is the case's event; the registry tracks the device from this commit.
        if let (CaseEvent::RecordDeviceLeft { .. }, Some(placed)) =
            (event, after.devices_left.last())
        {
            let device = seldinger_domain::device_registry::TrackedDevice::placed(
                seldinger_domain::device_registry::DeviceRef {
                    case_id: after.id,
                    index: after.devices_left.len() - 1,
                },
                after.patient_id,
                placed.clone(),
                after.procedure_started_at.unwrap_or(meta.at),
            );
            crate::devices::insert_device(&mut tx, &device).await?;
        }
        // A complication in the record is an adverse event from this commit on (§6).
        if let (CaseEvent::RecordComplication { .. }, Some(complication)) =
            (event, after.complications.last())
        {
            use seldinger_domain::adverse_event::{detected_in_record, AdverseEvent};
            let recorded = AdverseEvent::from_record(
                after.id,
                after.patient_id,
                after.complications.len() - 1,
                complication,
                detected_in_record(complication.at, after.procedure_completed_at),
                meta.actor.as_str(),
                meta.at,
            );
            crate::adverse_events::insert_adverse_event(&mut tx, &recorded).await?;
        }
        crate::outbox::insert_owed(&mut tx, owed).await?;
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn current_version(
        &self,
        table: &'static str,
        id: &str,
    ) -> Result<u64, StoreError> {
        let row = sqlx::query(&format!("SELECT version FROM {table} WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| version_of(&r))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// A case's events, oldest first.
    pub async fn case_history(&self, id: CaseId) -> Result<Vec<RecordedEvent>, StoreError> {
        self.history_of(Stream::Case, &id.to_string()).await
    }

    pub async fn patient_history(&self, id: PatientId) -> Result<Vec<RecordedEvent>, StoreError> {
        self.history_of(Stream::Patient, &id.to_string()).await
    }

    pub async fn referral_history(&self, id: ReferralId) -> Result<Vec<RecordedEvent>, StoreError> {
        self.history_of(Stream::Referral, &id.to_string()).await
    }

    pub(crate) async fn history_of(
        &self,
        stream: Stream,
        id: &str,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, stream_version, kind, actor, occurred_at, reason, payload FROM events \
             WHERE stream_type = $1 AND stream_id = $2 ORDER BY stream_version",
        )
        .bind(stream.name())
        .bind(id.to_string())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecordedEvent {
                    seq: r.try_get("seq")?,
                    version: r.try_get::<i64, _>("stream_version")?.max(0) as u64,
                    kind: text(r, "kind")?,
                    actor: text(r, "actor")?,
                    at: parse_ts(&text(r, "occurred_at")?)?,
                    reason: r.try_get("reason")?,
                    payload: serde_json::from_str(&text(r, "payload")?)?,
                })
            })
            .collect()
    }
}

async fn insert_case(
    conn: &mut AnyConnection,
    case: &Case,
    referred_by: &str,
) -> Result<(), StoreError> {
    let booking = case.booking.as_ref();
    sqlx::query(
        "INSERT INTO cases (id, patient_id, referral_id, state, room, scheduled_start, updated_at, version, data, referred_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(case.id.to_string())
    .bind(case.patient_id.to_string())
    .bind(case.referral_id.to_string())
    .bind(case.state.as_str().to_string())
    .bind(booking.map(|b| b.room.as_str().to_string()))
    .bind(booking.map(|b| ts(b.start)))
    .bind(ts(case.updated_at))
    .bind(case.version as i64)
    .bind(serde_json::to_string(case)?)
    .bind(referred_by.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes one fact event's row (a drug or lab added, corrected or withdrawn) on the event's commit.
async fn write_fact(
    tx: &mut AnyConnection,
    patient_id: PatientId,
    event: &PatientEvent,
    meta: &EventMeta,
) -> Result<(), StoreError> {
    let fact = match event {
        PatientEvent::MedicationRecorded { medication } => sqlx::query(
            "INSERT INTO medications (patient_id, drug, recorded_at, data) VALUES ($1, $2, $3, $4)",
        )
        .bind(patient_id.to_string())
        .bind(medication.drug.clone())
        .bind(ts(meta.at))
        .bind(serde_json::to_string(medication)?),
        PatientEvent::LabResultRecorded { result } => {
            let inserted = sqlx::query(
                "INSERT INTO lab_results (patient_id, test, drawn_at, data, identifier) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(patient_id.to_string())
            .bind(result.test.as_str().to_string())
            .bind(ts(result.drawn_at))
            .bind(serde_json::to_string(result)?)
            .bind(result.identifier.clone())
            .execute(&mut *tx)
            .await;
            return match inserted {
                Ok(_) => Ok(()),
                Err(e) if StoreError::is_unique_violation(&e) => {
                    Err(StoreError::Duplicate(format!(
                        "lab result {} was recorded already",
                        result.identifier.as_deref().unwrap_or_default()
                    )))
                }
                Err(e) => Err(e.into()),
            };
        }
        PatientEvent::MedicationCorrected { entry, medication } => sqlx::query(
            "UPDATE medications SET drug = $1, data = $2 \
                 WHERE seq = $3 AND patient_id = $4 AND entered_in_error_at IS NULL",
        )
        .bind(medication.drug.clone())
        .bind(serde_json::to_string(medication)?)
        .bind(*entry as i64)
        .bind(patient_id.to_string()),
        PatientEvent::LabResultCorrected { entry, result } => sqlx::query(
            "UPDATE lab_results SET test = $1, drawn_at = $2, data = $3 \
                 WHERE seq = $4 AND patient_id = $5 AND entered_in_error_at IS NULL",
        )
        .bind(result.test.as_str().to_string())
        .bind(ts(result.drawn_at))
        .bind(serde_json::to_string(result)?)
        .bind(*entry as i64)
        .bind(patient_id.to_string()),
        PatientEvent::MedicationEnteredInError { entry }
        | PatientEvent::LabResultEnteredInError { entry } => {
            let sql = if matches!(event, PatientEvent::MedicationEnteredInError { .. }) {
                "UPDATE medications SET entered_in_error_at = $1 \
                     WHERE seq = $2 AND patient_id = $3 AND entered_in_error_at IS NULL"
            } else {
                "UPDATE lab_results SET entered_in_error_at = $1 \
                     WHERE seq = $2 AND patient_id = $3 AND entered_in_error_at IS NULL"
            };
            sqlx::query(sql)
                .bind(ts(meta.at))
                .bind(*entry as i64)
                .bind(patient_id.to_string())
        }
        other => {
            return Err(StoreError::Corrupt(format!(
                "{} is not a patient fact",
                other.kind()
            )))
        }
    };
    // A correction of an entry that is not current (withdrawn, another patient's, unknown)
    // changes nothing; the event must not stand alone, so the whole write is undone.
    if fact.execute(&mut *tx).await?.rows_affected() != 1 {
        return Err(StoreError::NotFound(format!(
            "current entry named by {} for patient {patient_id}",
            event.kind()
        )));
    }
    Ok(())
}

/// Moves a patient's labs or drugs (`table`) to another patient.
async fn move_facts(
    tx: &mut AnyConnection,
    table: &str,
    from: &str,
    to: &str,
) -> Result<u64, StoreError> {
    let result = sqlx::query(&format!(
        "UPDATE {table} SET patient_id = $1 WHERE patient_id = $2"
    ))
    .bind(to.to_string())
    .bind(from.to_string())
    .execute(&mut *tx)
    .await?;
    Ok(result.rows_affected())
}

/// Moves the rows of `table` (referrals, cases, tasks: each its own event stream with `id`,
/// `patient_id`, `version` and the record as JSON in `data`) from one patient to another: each
/// gets a `patient_merged` event and its next version, so an edit based on the old row is refused.
async fn move_stream_rows(
    tx: &mut AnyConnection,
    stream: Stream,
    table: &str,
    from: &str,
    to: &str,
    meta: &EventMeta,
    payload: &serde_json::Value,
) -> Result<u64, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT id, version, data FROM {table} WHERE patient_id = $1"
    ))
    .bind(from.to_string())
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let id = text(row, "id")?;
        let version = version_of(row)?;
        let mut data: serde_json::Value = serde_json::from_str(&text(row, "data")?)?;
        data["patient_id"] = serde_json::Value::from(to);
        data["version"] = serde_json::Value::from(version + 1);
        append_event(
            tx,
            stream,
            &id,
            version + 1,
            "patient_merged",
            meta,
            payload,
        )
        .await?;
        sqlx::query(&format!(
            "UPDATE {table} SET patient_id = $1, version = $2, data = $3 WHERE id = $4 AND version = $5"
        ))
        .bind(to.to_string())
        .bind((version + 1) as i64)
        .bind(data.to_string())
        .bind(id)
        .bind(version as i64)
        .execute(&mut *tx)
        .await?;
    }
    Ok(rows.len() as u64)
}

async fn append_patient_event(
    conn: &mut AnyConnection,
    current: &Patient,
    expected_version: u64,
    event: &PatientEvent,
    meta: &EventMeta,
) -> Result<(), StoreError> {
    if current.version != expected_version {
        return Err(conflict(
            "patient",
            current.id,
            expected_version,
            current.version,
        ));
    }
    match append_event(
        conn,
        Stream::Patient,
        &current.id.to_string(),
        expected_version + 1,
        event.kind(),
        meta,
        event,
    )
    .await
    {
        Err(StoreError::Conflict { .. }) => Err(conflict(
            "patient",
            current.id,
            expected_version,
            expected_version + 1,
        )),
        other => other,
    }
}

fn conflict(what: &str, id: impl std::fmt::Display, expected: u64, current: u64) -> StoreError {
    StoreError::Conflict {
        what: format!("{what} {id}"),
        expected,
        current,
    }
}

fn duplicate_mrn(details: &PatientDetails) -> StoreError {
    StoreError::Duplicate(format!(
        "MRN {} is already registered at site {}",
        details.mrn.as_str(),
        details.site.as_str()
    ))
}

fn name_search(details: &PatientDetails) -> String {
    format!("{} {}", details.name.family, details.name.given_names()).to_lowercase()
}

/// Keeps the index of a patient's name words in step with the name, in the caller's
/// transaction.
async fn keep_name_words(
    conn: &mut sqlx::AnyConnection,
    id: PatientId,
    details: &PatientDetails,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM patient_name_words WHERE patient_id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    let name = name_search(details);
    let words = name_words(&name);
    if words.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = (0..words.len())
        .map(|n| format!("(${}, ${})", 2 * n + 1, 2 * n + 2))
        .collect();
    let sql = format!(
        "INSERT INTO patient_name_words (word, patient_id) VALUES {}",
        values.join(", ")
    );
    let mut insert = sqlx::query(&sql);
    for word in words {
        insert = insert.bind(word.to_string()).bind(id.to_string());
    }
    insert.execute(&mut *conn).await?;
    Ok(())
}

impl Store {
    /// Whether any patient is registered (the demo refuses to seed a database in use).
    pub async fn has_patients(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM patients")
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

/// What is written in the commit of a case event besides the event and the case.
#[derive(Debug, Default, Clone, Copy)]
pub struct WithCaseEvent<'a> {
    /// Follow-up tasks the event brings (a discharge's device follow-up).
    pub follow_ups: &'a [seldinger_domain::followup::FollowUpTask],
    /// Messages it owes other systems (the HL7 outbox).
    pub owed: &'a [crate::NewOutboundMessage],
    pub audit: &'a [AuditEntry],
}
