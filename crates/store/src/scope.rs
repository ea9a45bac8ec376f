//! Row scope in the query: the one place a caller's [`RowScope`] becomes SQL. Every list and every
//! single read of patient data adds this condition to its WHERE clause, so a row outside the
//! caller's scope is never loaded — no page or endpoint filters rows after reading them.

use crate::{Store, StoreError};
use seldinger_domain::access::RowScope;
use sqlx::Row;

/// What kind of row a query reads, and how to reach the columns scope is decided by.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// The `cases` table under this name (the table's own name, or an alias).
    Cases(&'a str),
    /// Rows that belong to a case through this column, e.g. `follow_up_tasks.case_id`.
    OfCase(&'a str),
    /// The `referrals` table under this name.
    Referrals(&'a str),
    /// A patient's identity (name, MRN, birth date) on the `patients` table under this name: seen
    /// with any case the caller may see, or for a patient the caller registered.
    PatientIdentity(&'a str),
    /// A patient's whole record (labs, drugs, history of every change, dose across cases): only a
    /// patient the caller registered. A referral opens its own case, not the rest of the record.
    PatientRecord(&'a str),
}

/// The WHERE condition that keeps `rows` to `scope`, binding its values after those already in
/// `params`; `None` when the caller sees every row.
pub fn condition(scope: &RowScope, rows: Rows<'_>, params: &mut Vec<String>) -> Option<String> {
    let user = match scope {
        RowScope::Department => return None,
        RowScope::Nothing => return Some("1 = 0".into()),
        RowScope::ReferredBy(user) => user,
    };
    params.push(user.clone());
    let p = format!("${}", params.len());
    Some(match rows {
        Rows::Cases(table) => format!("{table}.referred_by = {p}"),
        Rows::OfCase(column) => format!(
            "EXISTS (SELECT 1 FROM cases scope_case WHERE scope_case.id = {column} AND scope_case.referred_by = {p})"
        ),
        Rows::Referrals(table) => format!("{table}.referred_by = {p}"),
        Rows::PatientIdentity(table) => format!(
            "({table}.registered_by = {p} OR EXISTS (SELECT 1 FROM cases scope_case \
             WHERE scope_case.patient_id = {table}.id AND scope_case.referred_by = {p}))"
        ),
        Rows::PatientRecord(table) => format!("{table}.registered_by = {p}"),
    })
}

/// One record whose visibility a single read checks.
#[derive(Debug, Clone, Copy)]
pub enum Record {
    Case,
    Referral,
    PatientIdentity,
    PatientRecord,
    FollowUpTask,
    DoseReport,
    Device,
    AdverseEvent,
}

impl Store {
    /// Whether the record with this id lies within `scope` (a missing record is not).
    pub async fn in_scope(
        &self,
        scope: &RowScope,
        record: Record,
        id: &str,
    ) -> Result<bool, StoreError> {
        let (table, key, rows) = match record {
            Record::Case => ("cases", "id", Rows::Cases("t")),
            Record::Referral => ("referrals", "id", Rows::Referrals("t")),
            Record::PatientIdentity => ("patients", "id", Rows::PatientIdentity("t")),
            Record::PatientRecord => ("patients", "id", Rows::PatientRecord("t")),
            Record::FollowUpTask => ("follow_up_tasks", "id", Rows::OfCase("t.case_id")),
            Record::Device => ("devices", "id", Rows::OfCase("t.case_id")),
            Record::AdverseEvent => ("adverse_events", "id", Rows::OfCase("t.case_id")),
            Record::DoseReport => (
                "dose_reports",
                "sop_instance_uid",
                Rows::OfCase("t.case_id"),
            ),
        };
        let mut params = vec![id.to_string()];
        let scoped = condition(scope, rows, &mut params)
            .map(|c| format!(" AND {c}"))
            .unwrap_or_default();
        let sql = format!("SELECT COUNT(*) AS n FROM {table} t WHERE t.{key} = $1{scoped}");
        let mut conn = self.conn().await?;
        let rows = crate::fetch_with_text_params(&mut conn, &sql, &params).await?;
        Ok(match rows.first() {
            Some(row) => row.try_get::<i64, _>("n")? > 0,
            None => false,
        })
    }
}
