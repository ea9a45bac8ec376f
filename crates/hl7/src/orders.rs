//! Placer orders as IHE Radiology's Placer Order Management (RAD-2) sends them: ORM^O01 (v2.3.1),
//! OMG^O19 (v2.5.1) and OMI^O23 — one ORC with its OBR. ORC-1 `NW` is a new order (a referral
//! awaiting vetting), `XO` changes it while IR has not vetted it, `CA`/`DC` cancels it with its
//! reason. The requested procedure (OBR-4) is
//! mapped to the catalogue through the interface file; an unmapped code is refused, not guessed.

use crate::config::InterfaceConfig;
use crate::fields::patient_identity;
use crate::message::{Received, Seg, Value};
use crate::problem::{ErrorCode, Problem};
use seldinger_domain::patient::{Mrn, SiteCode};
use seldinger_domain::referral::{PlacerOrder, ReferralDetails, RequestingService, Urgency};
use seldinger_domain::validation::{LONG_TEXT, MEDIUM_TEXT, SHORT_TEXT};
use seldinger_domain::ProcedureCatalogue;

/// The message types read here, with their trigger events.
pub const TYPES: &[(&str, &str)] = &[("ORM", "O01"), ("OMG", "O19"), ("OMI", "O23")];

/// What an order message asks.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderRequest {
    New {
        details: ReferralDetails,
        /// The ordering provider's id (XCN-1), to find them among the users.
        ordered_by: Option<String>,
    },
    /// XO: the same order, asking for something else.
    Change {
        details: ReferralDetails,
    },
    Cancel {
        placer: PlacerOrder,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderMessage {
    pub site: SiteCode,
    pub mrn: Mrn,
    pub request: OrderRequest,
}

/// Reads an order message.
pub fn read(
    received: &Received,
    config: &InterfaceConfig,
    catalogue: &ProcedureCatalogue,
) -> Result<OrderMessage, Problem> {
    let (site, mrn) = patient_identity(received, config)?;
    let orc = received.segment("ORC").ok_or_else(|| {
        Problem::new(
            ErrorCode::SegmentSequenceError,
            None,
            "the message has no ORC segment: an order needs its common order segment",
        )
    })?;
    if received.segments("ORC").count() > 1 {
        return Err(Problem::new(
            ErrorCode::SegmentSequenceError,
            Some(
                received
                    .segments("ORC")
                    .nth(1)
                    .map(|s| s.at(1))
                    .unwrap_or_else(|| orc.at(1)),
            ),
            "one order per message: send each ORC in its own message",
        ));
    }
    let obr = received.segment("OBR");
    let placer = placer_order(&orc, obr.as_ref())?;
    let control = orc.required(1, 1, "the order control code (ORC-1)")?;
    let request = match control.to_ascii_uppercase().as_str() {
        "NW" => {
            let obr = obr.ok_or_else(|| {
                Problem::new(
                    ErrorCode::SegmentSequenceError,
                    None,
                    "a new order needs its OBR segment (the requested procedure)",
                )
            })?;
            OrderRequest::New {
                details: details(received, &orc, &obr, placer, config, catalogue)?,
                ordered_by: provider(&orc, 12).or_else(|| provider(&obr, 16)),
            }
        }
        "XO" => {
            let obr = obr.ok_or_else(|| {
                Problem::new(
                    ErrorCode::SegmentSequenceError,
                    None,
                    "a changed order needs its OBR segment (what it asks for now)",
                )
            })?;
            OrderRequest::Change {
                details: details(received, &orc, &obr, placer, config, catalogue)?,
            }
        }
        "CA" | "DC" => OrderRequest::Cancel {
            placer,
            reason: text_of(&orc, 16)
                .map(|r| format!("cancelled by the ordering system: {r}"))
                .unwrap_or_else(|| "cancelled by the ordering system".to_string())
                .chars()
                .take(LONG_TEXT)
                .collect(),
        },
        other => {
            return Err(Problem::new(
                ErrorCode::TableValueNotFound,
                Some(orc.at(1)),
                format!("order control '{other}' is not read here: NW (new), XO (change), CA or DC (cancel)"),
            ))
        }
    };
    Ok(OrderMessage { site, mrn, request })
}

/// ORC-2 (or OBR-2): the placer order number and its namespace.
fn placer_order(orc: &Seg<'_>, obr: Option<&Seg<'_>>) -> Result<PlacerOrder, Problem> {
    let (segment, number) = match orc.get(2, 1) {
        Value::Text(n) => (*orc, n),
        _ => match obr.map(|o| (o, o.get(2, 1))) {
            Some((o, Value::Text(n))) => (*o, n),
            _ => {
                return Err(Problem::new(
                    ErrorCode::RequiredFieldMissing,
                    Some(orc.at(2).component(1)),
                    "the placer order number (ORC-2) is required: it is how the order is cancelled or changed later",
                ))
            }
        },
    };
    let authority = segment.get(2, 2).text().unwrap_or("").to_string();
    PlacerOrder::new(&number, &authority)
        .map_err(|e| Problem::invalid(segment.at(2).component(1), e))
}

fn details(
    received: &Received,
    orc: &Seg<'_>,
    obr: &Seg<'_>,
    placer: PlacerOrder,
    config: &InterfaceConfig,
    catalogue: &ProcedureCatalogue,
) -> Result<ReferralDetails, Problem> {
    let code = obr.required(4, 1, "the requested procedure (OBR-4)")?;
    let procedure_id = config.procedure_of(&code).ok_or_else(|| {
        Problem::new(
            ErrorCode::TableValueNotFound,
            Some(obr.at(4).component(1)),
            format!(
                "order code '{code}' is not mapped to a procedure: add it under [orders] in the interface file, then replay this message"
            ),
        )
    })?;
    let procedure = catalogue.find(procedure_id).map_err(|e| {
        Problem::new(
            ErrorCode::TableValueNotFound,
            Some(obr.at(4).component(1)),
            format!("order code '{code}' maps to '{procedure_id}', which the catalogue does not hold ({e})"),
        )
    })?;
    let reason = text_of(obr, 31);
    let clinical_information = text_of(obr, 13);
    let indication = reason.clone().or_else(|| clinical_information.clone()).ok_or_else(|| {
        Problem::new(
            ErrorCode::RequiredFieldMissing,
            Some(obr.at(31)),
            "the reason for the request is required: send it in OBR-31 (reason for study) or OBR-13 (relevant clinical information)",
        )
    })?;
    let clinician = provider_name(orc, 12)
        .or_else(|| provider_name(obr, 16))
        .unwrap_or_else(|| "ordering system".to_string());
    let service = received
        .segment("PV1")
        .and_then(|pv1| pv1.get(10, 1).text().map(str::to_string))
        .and_then(|code| config.service_of(&code))
        .unwrap_or(RequestingService::Other);
    Ok(ReferralDetails {
        requesting_clinician: clinician.chars().take(SHORT_TEXT).collect(),
        requesting_service: service,
        indication: indication.chars().take(LONG_TEXT).collect(),
        requested_procedure: Some(procedure.id.clone()),
        requested_procedure_text: obr
            .get(4, 2)
            .text()
            .map(|t| t.chars().take(MEDIUM_TEXT).collect()),
        urgency: urgency(received, orc, obr)?,
        clinical_question: if reason.is_some() {
            clinical_information
                .unwrap_or_default()
                .chars()
                .take(LONG_TEXT)
                .collect()
        } else {
            String::new()
        },
        placer_order: Some(placer),
    })
}

/// The order's priority (table 0027: S stat, A as soon as possible, R routine, P pre-op,
/// C callback, T timing critical), from TQ1-9 (v2.5), OBR-27.6 or ORC-7.6 (TQ), or OBR-5;
/// none sent: routine.
fn urgency(received: &Received, orc: &Seg<'_>, obr: &Seg<'_>) -> Result<Urgency, Problem> {
    let sent = [
        received
            .segment("TQ1")
            .map(|tq1| (tq1.at(9), tq1.get(9, 1))),
        Some((obr.at(27).component(6), obr.get(27, 6))),
        Some((orc.at(7).component(6), orc.get(7, 6))),
        Some((obr.at(5), obr.get(5, 1))),
    ];
    for (at, value) in sent.into_iter().flatten() {
        let Value::Text(code) = value else { continue };
        return match code.trim().to_ascii_uppercase().as_str() {
            "S" => Ok(Urgency::Emergent),
            "A" | "T" => Ok(Urgency::Urgent),
            "R" | "P" | "C" => Ok(Urgency::Routine),
            other => Err(Problem::new(
                ErrorCode::TableValueNotFound,
                Some(at),
                format!("priority '{other}' is not in table 0027: use S, A, R, P, C or T"),
            )),
        };
    }
    Ok(Urgency::Routine)
}

/// XCN-1 of `field`: the provider's id.
fn provider(segment: &Seg<'_>, field: usize) -> Option<String> {
    segment.get(field, 1).text().map(|t| t.trim().to_string())
}

/// "Given Family" of an XCN field.
fn provider_name(segment: &Seg<'_>, field: usize) -> Option<String> {
    let family = segment
        .get_sub(field, 1, 2, 1)
        .text()
        .unwrap_or("")
        .trim()
        .to_string();
    let given = segment
        .get(field, 3)
        .text()
        .unwrap_or("")
        .trim()
        .to_string();
    let name = format!("{given} {family}").trim().to_string();
    (!name.is_empty())
        .then_some(name)
        .or_else(|| provider(segment, field))
}

/// A CWE/CE field's text (component 2), or its code.
fn text_of(segment: &Seg<'_>, field: usize) -> Option<String> {
    [2, 1]
        .into_iter()
        .find_map(|c| segment.get(field, c).text().map(|t| t.trim().to_string()))
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<OrderMessage, Problem> {
        let received = Received::read(text.as_bytes()).unwrap();
        let config = InterfaceConfig::parse(crate::DEMO_INTERFACE, "demo").unwrap();
        let catalogue = ProcedureCatalogue::parse(
            include_str!("../../../catalog/procedures.toml"),
            "procedures.toml",
        )
        .unwrap();
        read(&received, &config, &catalogue)
    }

    #[test]
    fn a_new_order_reads_as_a_referral_with_its_number_procedure_and_priority() {
        let order = read_text(
            "MSH|^~\\&|ORDERS|GENHOSP|SELDINGER|IR|202612010900||OMG^O19^OMG_O19|O1|P|2.5.1\r\
             PID|1||M7001^^^GENHOSP^MR||Quill^Rowan||19580214|M\r\
             PV1|1|I|WARD7|||||||URO\r\
             ORC|NW|PO-1001^ORDERS||||||||||D123^Anand^Priya\r\
             TQ1|1||||||||A^ASAP^HL70078\r\
             OBR|1|PO-1001^ORDERS||IR-NEPH^Nephrostomy^L|||||||||Obstructed left kidney, creatinine rising||||||||||||||||||Hydronephrosis^Hydronephrosis\r",
        )
        .unwrap();
        let OrderRequest::New {
            details,
            ordered_by,
        } = order.request
        else {
            panic!("a new order")
        };
        assert_eq!(ordered_by.as_deref(), Some("D123"));
        assert_eq!(details.requesting_clinician, "Priya Anand");
        assert_eq!(details.urgency, Urgency::Urgent);
        assert_eq!(details.indication, "Hydronephrosis");
        assert_eq!(
            details.clinical_question,
            "Obstructed left kidney, creatinine rising"
        );
        assert_eq!(details.requesting_service, RequestingService::Urology);
        let placer = details.placer_order.unwrap();
        assert_eq!(
            (placer.number.as_str(), placer.authority.as_str()),
            ("PO-1001", "ORDERS")
        );
        assert!(details.requested_procedure.is_some());
    }

    #[test]
    fn an_unmapped_code_and_a_missing_number_are_refused_with_the_line_to_add() {
        let unmapped = read_text(
            "MSH|^~\\&|ORDERS|GENHOSP|SELDINGER|IR|202612010900||ORM^O01|O2|P|2.3.1\r\
             PID|1||M7001^^^GENHOSP^MR\r\
             ORC|NW|PO-1002\r\
             OBR|1|PO-1002||XR-CHEST^Chest X-ray^L|||||||||Cough\r",
        )
        .unwrap_err();
        assert_eq!(unmapped.code, ErrorCode::TableValueNotFound);
        assert_eq!(unmapped.location.unwrap().path(), "OBR-4.1");
        assert!(unmapped.reason.contains("[orders]"));
        let no_number = read_text(
            "MSH|^~\\&|ORDERS|GENHOSP|SELDINGER|IR|202612010900||ORM^O01|O3|P|2.3.1\r\
             PID|1||M7001^^^GENHOSP^MR\r\
             ORC|NW\r\
             OBR|1|||IR-NEPH|||||||||Cough\r",
        )
        .unwrap_err();
        assert_eq!(no_number.code, ErrorCode::RequiredFieldMissing);
    }

    #[test]
    fn a_cancellation_names_its_order_and_reason() {
        let order = read_text(
            "MSH|^~\\&|ORDERS|GENHOSP|SELDINGER|IR|202612011000||ORM^O01|O4|P|2.3.1\r\
             PID|1||M7001^^^GENHOSP^MR\r\
             ORC|CA|PO-1001^ORDERS||||||||||||||DUP^Duplicate order\r",
        )
        .unwrap();
        assert_eq!(
            order.request,
            OrderRequest::Cancel {
                placer: PlacerOrder::new("PO-1001", "ORDERS").unwrap(),
                reason: "cancelled by the ordering system: Duplicate order".into()
            }
        );
    }
}
