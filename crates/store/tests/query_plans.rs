//! Every list a page or the API shows is served by an index on both engines: no statement of a
//! list (its page and its count) reads a whole table. The plans are printed
//! (`cargo test -p seldinger-store --test query_plans -- --nocapture`); `docs/performance.md`
//! shows them on the ten-year department.
//!
//! One test in its own binary: the statement recorder is process-wide.

use chrono::{Duration, TimeZone, Utc};
use seldinger_domain::access::RowScope;
use seldinger_domain::followup::{FollowUpKind, TaskStatus};
use seldinger_domain::lifecycle::CaseState;
use seldinger_domain::{CaseId, PatientId};
use seldinger_store::testing::{
    engines, query_plan, record_statements, recorded_statements, RecordedStatement,
};
use seldinger_store::{
    AdverseEventFilter, AuditFilter, CaseFilter, Cursor, DeviceFilter, DoseReportFilter, Engine,
    FollowUpFilter, InboxFilter, OutboxFilter, PatientFilter, ReferralFilter, Standing, Store,
};

/// The lists, as the pages and the API call them: each page statement, and with a cursor so
/// that the count of the whole filter runs too.
async fn run_every_list(store: &Store) {
    let now = Utc
        .with_ymd_and_hms(2026, 12, 3, 9, 0, 0)
        .single()
        .expect("now");
    let today = (now - Duration::hours(9), now + Duration::hours(15));
    let referrer = RowScope::ReferredBy("dr.anand".into());
    let patient = PatientId(uuid::Uuid::from_u128(1));
    let case = CaseId(uuid::Uuid::from_u128(2));
    let cursor = Cursor::new("2026-01-01T00:00:00.000000Z", "00000000");
    for after in [None, Some(&cursor)] {
        for scope in [&RowScope::Department, &referrer] {
            for filter in [
                CaseFilter::default(),
                CaseFilter {
                    booked_between: Some(today),
                    ..Default::default()
                },
                CaseFilter {
                    booked_between: Some(today),
                    room: Some("angio-1".into()),
                    ..Default::default()
                },
                CaseFilter {
                    states: vec![CaseState::InRecovery],
                    ..Default::default()
                },
                CaseFilter {
                    patient_id: Some(patient),
                    ..Default::default()
                },
            ] {
                store
                    .cases_page(scope, &filter, after)
                    .await
                    .expect("cases");
            }
            store
                .referrals_page(scope, true, after, 50)
                .await
                .expect("vetting queue");
            for filter in [
                ReferralFilter::default(),
                ReferralFilter {
                    case_states: Some(vec![
                        CaseState::Referred,
                        CaseState::MoreInformationRequested,
                    ]),
                    ..Default::default()
                },
                ReferralFilter {
                    patient_id: Some(patient),
                    ..Default::default()
                },
            ] {
                store
                    .find_referrals_page(scope, &filter, after, 50)
                    .await
                    .expect("referrals");
            }
            for filter in [
                PatientFilter {
                    mrn: Some("MRN1".into()),
                    ..Default::default()
                },
                PatientFilter {
                    name: Some("ng".into()),
                    ..Default::default()
                },
                PatientFilter {
                    name: Some("sam ng".into()),
                    ..Default::default()
                },
            ] {
                store
                    .search_patients_page(scope, &filter, after, 20)
                    .await
                    .expect("patients");
            }
            for filter in [
                FollowUpFilter {
                    standing: Some(Standing {
                        statuses: vec![TaskStatus::Due, TaskStatus::Overdue],
                        now,
                    }),
                    ..Default::default()
                },
                FollowUpFilter {
                    standing: Some(Standing {
                        statuses: vec![TaskStatus::NotYetDue],
                        now,
                    }),
                    ..Default::default()
                },
                FollowUpFilter {
                    open: true,
                    case_id: Some(case),
                    ..Default::default()
                },
                FollowUpFilter {
                    open: true,
                    kind: Some(FollowUpKind::DoseSkinCheck),
                    ..Default::default()
                },
            ] {
                store
                    .follow_up_tasks_page(scope, &filter, after, 50)
                    .await
                    .expect("follow-up queue");
            }
            for filter in [
                DoseReportFilter::default(),
                DoseReportFilter {
                    unmatched: true,
                    ..Default::default()
                },
                DoseReportFilter {
                    from: Some(now - Duration::days(365)),
                    until: Some(now),
                    ..Default::default()
                },
                DoseReportFilter {
                    patient_id: Some(patient),
                    ..Default::default()
                },
            ] {
                store
                    .dose_reports_page(scope, &filter, after)
                    .await
                    .expect("dose reports");
            }
            store
                .devices(
                    scope,
                    &DeviceFilter {
                        life: vec!["in_place"],
                        ..Default::default()
                    },
                    2000,
                )
                .await
                .expect("devices in place");
            store
                .adverse_events(
                    scope,
                    &AdverseEventFilter {
                        onset_from: Some(now - Duration::days(90)),
                        onset_before: Some(now),
                        ..Default::default()
                    },
                    1000,
                )
                .await
                .expect("adverse events");
        }
        let audit_cursor = Cursor::new("1", "1");
        let audit_after = after.map(|_| &audit_cursor);
        for filter in [
            AuditFilter::default(),
            AuditFilter {
                username: Some("nurse.lindqvist".into()),
                ..Default::default()
            },
            AuditFilter {
                patient_id: Some(patient.to_string()),
                ..Default::default()
            },
            AuditFilter {
                from: Some(now - Duration::days(30)),
                to: Some(now),
                ..Default::default()
            },
        ] {
            store
                .audit_page(&filter, audit_after, 100)
                .await
                .expect("audit");
        }
        store
            .inbound_messages_page(
                &InboxFilter {
                    limit: 50,
                    ..Default::default()
                },
                after,
            )
            .await
            .expect("inbox");
        store
            .outbound_messages_page(
                &OutboxFilter {
                    limit: 50,
                    ..Default::default()
                },
                after,
            )
            .await
            .expect("outbox");
    }
}

/// The plan steps that read a whole table, on this engine.
fn whole_table_reads(engine: Engine, sql: &str, plan: &[String]) -> Vec<String> {
    // A page with no condition, walked in the table's own key order with nothing to sort,
    // stops at its limit: SQLite calls that walk a bare "SCAN t" too.
    let walks_in_key_order = !sql.contains(" WHERE ")
        && sql.contains(" LIMIT ")
        && !plan.iter().any(|step| step.contains("TEMP B-TREE"));
    plan.iter()
        .filter(|step| match engine {
            // "SCAN t USING [COVERING] INDEX i" walks an index in the list's order (and stops
            // at the page); a bare "SCAN t" reads every row.
            Engine::Sqlite => {
                let step = step.trim_start_matches(['|', '`', '-', ' ']);
                step.starts_with("SCAN ") && !step.contains(" USING ") && !walks_in_key_order
            }
            Engine::Postgres => step.contains("Seq Scan on"),
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn every_list_statement_is_served_by_an_index() {
    for db in engines().await {
        let engine = db.engine();
        record_statements();
        run_every_list(&db.store).await;
        let statements: Vec<RecordedStatement> = recorded_statements();
        assert!(
            statements.len() > 60,
            "{engine:?}: the lists ran {} statements",
            statements.len()
        );
        let mut failures = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for statement in &statements {
            if !seen.insert(statement.sql.clone()) {
                continue;
            }
            let plan = query_plan(&db.store, statement).await;
            println!(
                "{engine:?}: {}\n    {}\n",
                statement.sql.trim(),
                plan.join("\n    ")
            );
            let reads = whole_table_reads(engine, &statement.sql, &plan);
            if reads.is_empty() {
                continue;
            }
            failures.push(format!(
                "{engine:?}: {}\n    reads a whole table: {}",
                statement.sql.trim(),
                reads.join("; ")
            ));
        }
        assert!(
            failures.is_empty(),
            "{} list statements are not served by an index:\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}
