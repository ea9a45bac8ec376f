//! Messages sent: a case's notice ([`CaseNotice`]: the record as it was when the change
//! committed) rendered in the destination's style — SIU^S12/S13/S15 for a scheduling system,
//! ORR^O02 for the order's placer, OMI^O23 (v2.5.1) or ORM^O01 with ZDS (v2.3.1) for an image
//! manager as IHE Radiology RAD-4/RAD-13 describe, and ORU^R01 for the procedure report.
//!
//! Identifiers every style carries the same way: the filler order number is the case id
//! (`SELDINGER` namespace), the accession number and Study Instance UID are the ones given at the
//! first booking, the placer order number is the one the order came with.

use crate::config::{Destination, InterfaceConfig, Style};
use hl7kit::builder::{Builder, Value};
use seldinger_app::{CaseNotice, Notice};
use seldinger_domain::catalogue::GuidanceModality;
use seldinger_domain::patient::Sex;
use seldinger_domain::referral::Urgency;
use seldinger_domain::DepartmentTime;

/// The namespace of Seldinger's own identifiers (filler order number, accession number).
pub const NAMESPACE: &str = "SELDINGER";

/// LOINC 28570-0 "Procedure note": the report's text observations.
const PROCEDURE_NOTE: [&str; 3] = ["28570-0", "Procedure note", "LN"];

/// What a notice becomes for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// MSH-9 (e.g. `SIU^S12^SIU_S12`) and the text, segments ending in CR.
    Message { message_type: String, text: String },
    /// Nothing this destination is sent for it, and why.
    Skip(String),
}

/// What a rendering needs besides the notice.
pub struct Context<'a> {
    pub config: &'a InterfaceConfig,
    pub destination: &'a Destination,
    pub control_id: &'a str,
    /// MSH-7.
    pub now: chrono::DateTime<chrono::Utc>,
    pub time: &'a DepartmentTime,
}

impl Context<'_> {
    fn ts(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        self.time.format(at, "%Y%m%d%H%M%S%z")
    }

    fn version(&self) -> &'static str {
        match self.destination.style {
            Style::Orm => "2.3.1",
            _ => "2.5.1",
        }
    }

    fn header(&self, b: &mut Builder, code: &str, trigger: &str, structure: &str) {
        let version = self.version();
        let msh = b.segment("MSH");
        msh.set(3, self.config.receiving_application.as_str())
            .set(4, self.config.receiving_facility.as_str())
            .set(5, self.destination.application.as_str())
            .set(6, self.destination.facility.as_str())
            .set(7, self.ts(self.now))
            .set(9, Value::components([code, trigger, structure]))
            .set(10, self.control_id)
            .set(11, "P")
            .set(12, version);
        // v2.3.1 has no UTF-8 in table 0211; its receivers read 8859/1 by default.
        if version != "2.3.1" {
            msh.set(18, "UNICODE UTF-8");
        }
    }
}

/// Renders `notice` for the context's destination.
pub fn render(notice: &CaseNotice, cx: &Context<'_>) -> Rendered {
    use Notice as N;
    use Style as S;
    let never_booked = || {
        Rendered::Skip(format!(
            "the case was never booked: {} has no appointment to cancel",
            cx.destination.name
        ))
    };
    match (cx.destination.style, notice.notice) {
        (_, N::Report | N::ReportCorrected | N::ReportSigned | N::ReportAddendum) => {
            report(notice, cx)
        }
        (S::Siu, N::Booked) => siu(notice, cx, "S12"),
        (S::Siu, N::Rescheduled) => siu(notice, cx, "S13"),
        (S::Siu | S::Omi | S::Orm, N::Cancelled) if notice.case.booking.is_none() => never_booked(),
        (S::Siu, N::Cancelled) => siu(notice, cx, "S15"),
        (S::Siu | S::Omi | S::Orm, N::Declined) => Rendered::Skip(format!(
            "a declined order is the placer's news; {} ({}) is sent appointments and studies",
            cx.destination.name,
            cx.destination.style.as_str()
        )),
        (S::OrderStatus, _) => order_status(notice, cx),
        (S::Omi | S::Orm, _) => procedure_scheduled(notice, cx),
    }
}

/// PID (and PV1 when the hospital reported a visit).
fn patient(b: &mut Builder, notice: &CaseNotice, cx: &Context<'_>) {
    let details = &notice.patient.details;
    let authority = cx
        .config
        .authority_of(&details.site)
        .unwrap_or(details.site.as_str());
    let pid = b.segment("PID");
    pid.set(1, "1")
        .set(
            3,
            Value::components([details.mrn.as_str(), "", "", authority, "MR"]),
        )
        .set(5, Value::components(xpn(&details.name)))
        .set(7, details.birth_date.format("%Y%m%d").to_string())
        .set(
            8,
            match details.sex {
                Sex::Female => "F",
                Sex::Male => "M",
                Sex::Other => "O",
                Sex::Unknown => "U",
            },
        );
    if let Some(visit) = &details.visit {
        use seldinger_domain::assessment::Setting;
        let class = match visit.setting {
            Setting::Inpatient => "I",
            Setting::Outpatient => "O",
            Setting::Emergency => "E",
        };
        let pv1 = b.segment("PV1");
        pv1.set(1, "1").set(2, class);
        if let Some(number) = &visit.visit_number {
            pv1.set(19, number.as_str());
        }
    }
}

/// XPN: family, given, further given names — no trailing empty component.
fn xpn(name: &seldinger_domain::patient::PersonName) -> Vec<&str> {
    let mut parts = vec![
        name.family.as_str(),
        name.given.as_str(),
        name.middle.as_str(),
    ];
    while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

fn placer(notice: &CaseNotice) -> Value {
    match &notice.referral.details.placer_order {
        Some(order) => Value::components([order.number.as_str(), order.authority.as_str()]),
        None => Value::text(""),
    }
}

fn filler(notice: &CaseNotice) -> Value {
    Value::components([notice.case.id.to_string(), NAMESPACE.to_string()])
}

/// OBR-4 / AIS-3: the order-entry code the interface file maps to the procedure when there is
/// one, else the catalogue id.
fn service(notice: &CaseNotice, cx: &Context<'_>) -> Value {
    match &notice.procedure {
        Some((id, name)) => match cx.config.order_code_of(id) {
            Some(code) => Value::components([code, name.as_str(), "L"]),
            None => Value::components([id.as_str(), name.as_str(), NAMESPACE]),
        },
        None => Value::components([
            "",
            notice
                .referral
                .details
                .requested_procedure_text
                .as_deref()
                .unwrap_or_default(),
        ]),
    }
}

/// DICOM modality (0008,0060) of the guidance planned at vetting.
fn modality(notice: &CaseNotice) -> &'static str {
    match notice.case.vetting.as_ref().map(|v| v.modality) {
        Some(GuidanceModality::Fluoroscopy) => "XA",
        Some(GuidanceModality::Ct | GuidanceModality::ConeBeamCt) => "CT",
        Some(GuidanceModality::Ultrasound) => "US",
        Some(GuidanceModality::Mri) => "MR",
        Some(GuidanceModality::None) | None => "",
    }
}

/// Table 0027 priority.
fn priority(notice: &CaseNotice) -> &'static str {
    let urgency = notice
        .case
        .vetting
        .as_ref()
        .map(|v| v.priority)
        .unwrap_or(notice.case.urgency);
    match urgency {
        Urgency::Emergent => "S",
        Urgency::Urgent => "A",
        Urgency::Routine => "R",
    }
}

fn accession(notice: &CaseNotice) -> &str {
    notice.case.accession_number.as_deref().unwrap_or_default()
}

fn study_uid(notice: &CaseNotice) -> &str {
    notice
        .case
        .study_instance_uid
        .as_deref()
        .unwrap_or_default()
}

/// Start and end of the booking, as HL7 timestamps (empty when unbooked).
fn slot(notice: &CaseNotice, cx: &Context<'_>) -> (String, String, String) {
    match &notice.case.booking {
        Some(b) => (
            cx.ts(b.start),
            cx.ts(b.end),
            (b.end - b.start).num_minutes().to_string(),
        ),
        None => Default::default(),
    }
}

/// SIU^S12 (booked), S13 (rescheduled), S15 (cancelled), v2.5.1.
fn siu(notice: &CaseNotice, cx: &Context<'_>, trigger: &str) -> Rendered {
    let mut b = Builder::new();
    cx.header(&mut b, "SIU", trigger, "SIU_S12");
    let (start, end, minutes) = slot(notice, cx);
    let status = if notice.notice == Notice::Cancelled {
        "Cancelled"
    } else {
        "Booked"
    };
    let sch = b.segment("SCH");
    sch.set(2, Value::components([accession(notice), NAMESPACE]))
        .set(7, service(notice, cx))
        .set(9, minutes.as_str())
        .set(10, "min")
        .set(
            11,
            Value::components(["", "", minutes.as_str(), start.as_str(), end.as_str()]),
        )
        .set(20, Value::components(["", notice.by.as_str()]))
        .set(25, status)
        .set(26, placer(notice))
        .set(27, filler(notice));
    if let Some(reason) = &notice.reason {
        sch.set(6, Value::components(["", reason.as_str()]));
    }
    let tq1 = b.segment("TQ1");
    tq1.set(1, "1")
        .set(7, start.as_str())
        .set(8, end.as_str())
        .set(9, priority(notice));
    patient(&mut b, notice, cx);
    b.segment("RGS").set(1, "1");
    b.segment("AIS")
        .set(1, "1")
        .set(3, service(notice, cx))
        .set(4, start.as_str())
        .set(7, minutes.as_str())
        .set(8, "min")
        .set(10, status);
    if let Some(room) = &notice.room {
        b.segment("AIL")
            .set(1, "1")
            .set(
                3,
                Value::components([
                    "IR",
                    room.id.as_str(),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    room.name.as_str(),
                ]),
            )
            .set(6, start.as_str())
            .set(9, minutes.as_str())
            .set(10, "min")
            .set(12, status);
    }
    zds(&mut b, notice);
    message(b, format!("SIU^{trigger}^SIU_S12"))
}

/// IHE's ZDS: the Study Instance UID (ZDS-1, as RAD-4 in v2.3.1 writes it).
fn zds(b: &mut Builder, notice: &CaseNotice) {
    if !study_uid(notice).is_empty() {
        b.segment("ZDS").set(
            1,
            Value::components([study_uid(notice), NAMESPACE, "Application", "DICOM"]),
        );
    }
}

/// ORC (with the order control, the order's status and why) and OBR for order messages.
fn order(b: &mut Builder, notice: &CaseNotice, cx: &Context<'_>, control: &str, status: &str) {
    let (start, end, _) = slot(notice, cx);
    let timing = Value::components(["", "", "", start.as_str(), end.as_str(), priority(notice)]);
    let orc = b.segment("ORC");
    orc.set(1, control)
        .set(2, placer(notice))
        .set(3, filler(notice))
        .set(5, status)
        .set(9, cx.ts(notice.at))
        .set(10, Value::components(["", notice.by.as_str()]))
        .set(
            12,
            Value::components(["", notice.referral.details.requesting_clinician.as_str()]),
        );
    if cx.version() == "2.3.1" {
        orc.set(7, timing.clone());
    }
    if let Some(reason) = &notice.reason {
        orc.set(16, Value::components(["", reason.as_str()]));
    }
    let obr = b.segment("OBR");
    obr.set(1, "1")
        .set(2, placer(notice))
        .set(3, filler(notice))
        .set(4, service(notice, cx))
        .set(13, notice.referral.details.indication.as_str())
        .set(
            16,
            Value::components(["", notice.referral.details.requesting_clinician.as_str()]),
        )
        .set(18, accession(notice))
        .set(19, accession(notice))
        .set(20, accession(notice))
        .set(24, modality(notice));
    if !start.is_empty() {
        obr.set(7, start.as_str());
    }
    if cx.version() == "2.3.1" {
        obr.set(27, timing);
    } else if !start.is_empty() {
        b.segment("TQ1")
            .set(1, "1")
            .set(7, start.as_str())
            .set(8, end.as_str())
            .set(9, priority(notice));
    }
}

/// ORR^O02 to the order's placer: the filler order number and where the order stands.
fn order_status(notice: &CaseNotice, cx: &Context<'_>) -> Rendered {
    // Table 0119 order control and table 0038 order status.
    let (control, status) = match notice.notice {
        Notice::Booked | Notice::Rescheduled => ("SC", "SC"),
        Notice::Cancelled => ("OC", "CA"),
        Notice::Declined => ("UA", "CA"),
        Notice::Report
        | Notice::ReportCorrected
        | Notice::ReportSigned
        | Notice::ReportAddendum => return report(notice, cx),
    };
    let mut b = Builder::new();
    cx.header(&mut b, "ORR", "O02", "ORR_O02");
    // An unsolicited status: MSA-2 names the order (no message of the placer's is answered).
    let placer_number = notice
        .referral
        .details
        .placer_order
        .as_ref()
        .map(|o| o.number.as_str())
        .unwrap_or_default();
    b.segment("MSA").set(1, "AA").set(2, placer_number);
    patient(&mut b, notice, cx);
    order(&mut b, notice, cx, control, status);
    message(b, "ORR^O02^ORR_O02".into())
}

/// RAD-4 (Procedure Scheduled) and RAD-13 (Procedure Updated): OMI^O23 with IPC in v2.5.1,
/// ORM^O01 with ZDS in v2.3.1. NW when booked, XO when moved, CA when cancelled.
fn procedure_scheduled(notice: &CaseNotice, cx: &Context<'_>) -> Rendered {
    let control = match notice.notice {
        Notice::Booked => "NW",
        Notice::Rescheduled => "XO",
        _ => "CA",
    };
    let status = if control == "CA" { "CA" } else { "SC" };
    let mut b = Builder::new();
    if cx.destination.style == Style::Orm {
        cx.header(&mut b, "ORM", "O01", "ORM_O01");
        patient(&mut b, notice, cx);
        order(&mut b, notice, cx, control, status);
        zds(&mut b, notice);
        return message(b, "ORM^O01^ORM_O01".into());
    }
    cx.header(&mut b, "OMI", "O23", "OMI_O23");
    patient(&mut b, notice, cx);
    order(&mut b, notice, cx, control, status);
    b.segment("IPC")
        .set(1, Value::components([accession(notice), NAMESPACE]))
        .set(2, Value::components([accession(notice), NAMESPACE]))
        .set(
            3,
            Value::components([study_uid(notice), NAMESPACE, "Application", "DICOM"]),
        )
        .set(4, Value::components([accession(notice), NAMESPACE]))
        .set(5, Value::components([modality(notice), "", "DCM"]));
    message(b, "OMI^O23^OMI_O23".into())
}

/// ORU^R01: the procedure report, one TX observation per line (LOINC 28570-0). Result status
/// (HL7 table 0123): the record at completion is preliminary (P) until the IR physician signs
/// it; the signed report is final (F); an addendum, or a record changed after it went out, is a
/// correction (C).
fn report(notice: &CaseNotice, cx: &Context<'_>) -> Rendered {
    if notice.report.is_empty() {
        return Rendered::Skip("the procedure has no record to report".into());
    }
    let result_status = match notice.notice {
        Notice::ReportSigned => "F",
        Notice::ReportCorrected | Notice::ReportAddendum => "C",
        _ => "P",
    };
    let mut b = Builder::new();
    cx.header(&mut b, "ORU", "R01", "ORU_R01");
    patient(&mut b, notice, cx);
    b.segment("ORC")
        .set(1, "RE")
        .set(2, placer(notice))
        .set(3, filler(notice))
        .set(5, "CM");
    let started = notice.case.procedure_started_at.map(|t| cx.ts(t));
    let ended = notice.case.procedure_completed_at.map(|t| cx.ts(t));
    let primary = notice
        .case
        .procedure
        .as_ref()
        .and_then(|p| {
            p.operators
                .iter()
                .find(|o| o.role == seldinger_domain::procedure_record::OperatorRole::Primary)
        })
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let obr = b.segment("OBR");
    obr.set(1, "1")
        .set(2, placer(notice))
        .set(3, filler(notice))
        .set(4, service(notice, cx))
        .set(7, started.clone().unwrap_or_default())
        .set(8, ended.unwrap_or_default())
        .set(18, accession(notice))
        .set(22, cx.ts(notice.at))
        .set(24, modality(notice))
        .set(25, result_status);
    obr.set_subcomponent(32, 1, 2, primary.as_str());
    for (i, line) in notice.report.iter().enumerate() {
        b.segment("OBX")
            .set(1, (i + 1).to_string())
            .set(2, "TX")
            .set(3, Value::components(PROCEDURE_NOTE))
            .set(4, "1")
            .set(5, line.as_str())
            .set(11, result_status)
            .set(14, started.clone().unwrap_or_default());
    }
    message(b, "ORU^R01^ORU_R01".into())
}

fn message(b: Builder, message_type: String) -> Rendered {
    Rendered::Message {
        message_type,
        text: b.build(),
    }
}
