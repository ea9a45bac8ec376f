//! ADT (patient administration): A01 admit, A04 register, A08 update, A31/A28 person
//! information, A03 discharge — each keeps the patient's details as the PAS says: identity,
//! name, birth date, sex, allergies (AL1), the visit (PV1) and weight (OBX).

use crate::config::InterfaceConfig;
use crate::fields::{date, instant, patient_identity, person_name};
use crate::message::{Received, Seg, Value};
use crate::problem::{ErrorCode, Problem};
use seldinger_domain::assessment::Setting;
use seldinger_domain::patient::{
    Allergy, AllergyClass, BodyWeightKg, DetailsPatch, Mrn, Sex, SiteCode, Visit,
};
use seldinger_domain::DepartmentTime;

/// The ADT events read; the others are refused (AR) as unsupported.
pub const EVENTS: &[&str] = &["A01", "A03", "A04", "A08", "A28", "A31", "A40"];

/// An A40: the record at `merged` (MRG-1) is the patient at `survivor` (PID-3).
#[derive(Debug, Clone, PartialEq)]
pub struct MergeMessage {
    pub survivor: (SiteCode, Mrn),
    pub merged: (SiteCode, Mrn),
}

/// Reads an A40 (one PID/MRG pair per message).
pub fn read_merge(received: &Received, config: &InterfaceConfig) -> Result<MergeMessage, Problem> {
    let survivor = patient_identity(received, config)?;
    let mrg = received.segment("MRG").ok_or_else(|| {
        Problem::new(
            ErrorCode::SegmentSequenceError,
            None,
            "an A40 needs its MRG segment (the record merged away)",
        )
    })?;
    if received.segments("MRG").count() > 1 {
        return Err(Problem::new(
            ErrorCode::SegmentSequenceError,
            Some(mrg.at(1)),
            "one merge per message: send each PID/MRG pair in its own A40",
        ));
    }
    let merged = crate::fields::identity_in(&mrg, 1, config)?;
    Ok(MergeMessage { survivor, merged })
}

/// What an ADT message asks: this patient's details, changed so.
#[derive(Debug, Clone, PartialEq)]
pub struct DetailsMessage {
    pub site: SiteCode,
    pub mrn: Mrn,
    pub patch: DetailsPatch,
}

/// Reads an ADT message of event `trigger`.
pub fn read(
    received: &Received,
    trigger: &str,
    config: &InterfaceConfig,
    time: &DepartmentTime,
) -> Result<DetailsMessage, Problem> {
    let (site, mrn) = patient_identity(received, config)?;
    let pid = received
        .segment("PID")
        .ok_or_else(|| Problem::new(ErrorCode::SegmentSequenceError, None, "no PID segment"))?;
    let mut patch = DetailsPatch {
        name: person_name(&pid)?,
        ..DetailsPatch::default()
    };
    match pid.get(7, 1) {
        Value::Text(t) => patch.birth_date = Some(date(&t, &pid.at(7).component(1))?),
        Value::Delete => {
            return Err(Problem::invalid(
                pid.at(7),
                "a birth date cannot be deleted (\"\"): the rules read the patient's age",
            ))
        }
        Value::Absent => {}
    }
    match pid.get(8, 1) {
        Value::Text(t) => patch.sex = Some(sex(&t, &pid)?),
        Value::Delete => patch.sex = Some(Sex::Unknown),
        Value::Absent => {}
    }
    if received.segment("AL1").is_some() {
        patch.allergies = Some(allergies(received)?);
    }
    if let Some(weight) = weight(received)? {
        patch.weight_kg = Some(weight);
    }
    if trigger == "A03" {
        // Discharged: no current visit.
        patch.visit = Some(None);
    } else if let Some(pv1) = received.segment("PV1") {
        patch.visit = visit(&pv1, time)?;
    }
    Ok(DetailsMessage { site, mrn, patch })
}

fn sex(code: &str, pid: &Seg<'_>) -> Result<Sex, Problem> {
    // HL7 table 0001.
    match code.trim().to_ascii_uppercase().as_str() {
        "F" => Ok(Sex::Female),
        "M" => Ok(Sex::Male),
        "O" | "A" => Ok(Sex::Other),
        "U" | "N" => Ok(Sex::Unknown),
        other => Err(Problem::new(
            ErrorCode::TableValueNotFound,
            Some(pid.at(8)),
            format!("'{other}' is not an administrative sex (table 0001): use F, M, O, A, U or N"),
        )),
    }
}

/// PV1-2 (table 0004) and the admission time; `None` leaves the visit as it is.
fn visit(pv1: &Seg<'_>, time: &DepartmentTime) -> Result<Option<Option<Visit>>, Problem> {
    let setting = match pv1.get(2, 1) {
        Value::Absent => return Ok(None),
        Value::Delete => return Ok(Some(None)),
        Value::Text(t) => match t.trim().to_ascii_uppercase().as_str() {
            "I" | "B" => Setting::Inpatient,
            "E" => Setting::Emergency,
            "O" | "R" | "P" => Setting::Outpatient,
            // Unknown or not applicable: nothing to say about the setting.
            "U" | "N" => return Ok(Some(None)),
            other => {
                return Err(Problem::new(
                    ErrorCode::TableValueNotFound,
                    Some(pv1.at(2)),
                    format!(
                    "'{other}' is not a patient class (table 0004): use I, O, E, P, R, B, U or N"
                ),
                ))
            }
        },
    };
    let admitted_at = match pv1.get(44, 1) {
        Value::Text(t) => Some(instant(&t, &pv1.at(44).component(1), time)?),
        _ => None,
    };
    let visit_number = pv1.get(19, 1).text().map(|t| t.trim().to_string());
    Ok(Some(Some(Visit {
        setting,
        admitted_at: admitted_at.filter(|_| setting != Setting::Outpatient),
        visit_number,
    })))
}

/// Every AL1 segment: the patient's allergies as the PAS lists them now. "No known allergies"
/// codes make an empty list.
fn allergies(received: &Received) -> Result<Vec<Allergy>, Problem> {
    let mut out = Vec::new();
    for al1 in received.segments("AL1") {
        let code = al1.get(3, 1).text().unwrap_or("").trim().to_string();
        let text = al1.get(3, 2).text().unwrap_or("").trim().to_string();
        if matches!(code.to_ascii_uppercase().as_str(), "NKA" | "NKDA" | "NKMA") {
            continue;
        }
        let substance = if text.is_empty() { code.clone() } else { text };
        if substance.is_empty() {
            return Err(Problem::new(
                ErrorCode::RequiredFieldMissing,
                Some(al1.at(3)),
                "the allergen is empty",
            ));
        }
        let kind = al1
            .get(2, 1)
            .text()
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase();
        let reaction = al1.get(5, 1).text().unwrap_or("").trim().to_string();
        let limit = seldinger_domain::validation::SHORT_TEXT;
        if substance.chars().count() > limit {
            return Err(Problem::invalid(
                al1.at(3),
                format!("the allergen is longer than {limit} characters"),
            ));
        }
        out.push(Allergy {
            class: allergy_class(&kind, &format!("{code} {substance}")),
            substance,
            reaction: reaction
                .chars()
                .take(seldinger_domain::validation::MEDIUM_TEXT)
                .collect(),
        });
    }
    Ok(out)
}

/// The class the rules need: contrast and latex by the allergen's code or name (PAS codes vary;
/// the substance does not), otherwise by the allergen type (table 0127).
fn allergy_class(kind: &str, allergen: &str) -> AllergyClass {
    let name = allergen.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| name.contains(w));
    if any(&["gadolin", "gado"]) {
        AllergyClass::GadoliniumContrast
    } else if any(&[
        "contrast",
        "iodin",
        "iohexol",
        "iopamidol",
        "iodixanol",
        "iopromide",
        "ioversol",
        "iomeprol",
    ]) {
        AllergyClass::IodinatedContrast
    } else if name.contains("latex") {
        AllergyClass::Latex
    } else {
        match kind {
            "DA" => AllergyClass::Drug,
            "FA" => AllergyClass::Food,
            _ => AllergyClass::Other,
        }
    }
}

/// Body weight from an OBX coded LOINC 29463-7 or 3141-9, in kg or g; `None` when not sent.
fn weight(received: &Received) -> Result<Option<Option<BodyWeightKg>>, Problem> {
    for obx in received.segments("OBX") {
        let code = obx.get(3, 1).text().unwrap_or("").trim().to_string();
        if code != "29463-7" && code != "3141-9" {
            continue;
        }
        let value = match obx.get(5, 1) {
            Value::Absent => continue,
            Value::Delete => return Ok(Some(None)),
            Value::Text(t) => t,
        };
        let number: f64 = value
            .trim()
            .parse()
            .map_err(|_| Problem::invalid(obx.at(5), format!("'{value}' is not a number")))?;
        let unit = obx.get(6, 1).text().unwrap_or("kg").trim().to_string();
        let kg = match unit.as_str() {
            "kg" | "KG" | "Kg" => number,
            "g" => number / 1000.0,
            other => {
                return Err(Problem::new(
                    ErrorCode::TableValueNotFound,
                    Some(obx.at(6)),
                    format!("'{other}' is not a weight unit read here: use kg or g (UCUM)"),
                ))
            }
        };
        let weight = BodyWeightKg::parse(kg).map_err(|e| Problem::invalid(obx.at(5), e))?;
        return Ok(Some(Some(weight)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> InterfaceConfig {
        InterfaceConfig::parse(crate::DEMO_INTERFACE, "demo").unwrap()
    }

    fn read_text(text: &str) -> Result<DetailsMessage, Problem> {
        let received = Received::read(text.as_bytes()).unwrap();
        let trigger = received.header(9, 2);
        read(
            &received,
            &trigger,
            &config(),
            &DepartmentTime::parse("Europe/London").unwrap(),
        )
    }

    #[test]
    fn an_admission_gives_identity_name_allergies_visit_and_weight() {
        let m = read_text(
            "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|202612010900||ADT^A01^ADT_A01|1|P|2.5.1\r\
             EVN|A01|202612010900\r\
             PID|1||H123^^^OTHER^PI~M0042^^^GENHOSP^MR||Fairweather^Ada^J^^^^L||19610412|F\r\
             PV1|1|I|WARD7^12^B||||||||||||||||V991|||||||||||||||||||||||||202612010845\r\
             OBX|1|NM|29463-7^Body weight^LN||72.5|kg|||||F\r\
             AL1|1|DA|IOHEXOL^Omnipaque|SV|Urticaria\r\
             AL1|2|MA|LATEX^Latex gloves\r\
             AL1|3|DA|PEN^Penicillin\r",
        )
        .unwrap();
        assert_eq!(m.site.as_str(), "MAIN");
        assert_eq!(m.mrn.as_str(), "M0042");
        let name = m.patch.name.unwrap();
        assert_eq!(
            (
                name.family.as_str(),
                name.given.as_str(),
                name.middle.as_str()
            ),
            ("Fairweather", "Ada", "J")
        );
        assert_eq!(m.patch.sex, Some(Sex::Female));
        let allergies = m.patch.allergies.unwrap();
        let classes: Vec<_> = allergies.iter().map(|a| a.class).collect();
        assert_eq!(
            classes,
            vec![
                AllergyClass::IodinatedContrast,
                AllergyClass::Latex,
                AllergyClass::Drug
            ]
        );
        assert_eq!(allergies[0].reaction, "Urticaria");
        let visit = m.patch.visit.unwrap().unwrap();
        assert_eq!(visit.setting, Setting::Inpatient);
        assert_eq!(visit.visit_number.as_deref(), Some("V991"));
        assert_eq!(
            visit.admitted_at.unwrap().to_rfc3339(),
            "2026-12-01T08:45:00+00:00"
        );
        assert_eq!(m.patch.weight_kg.unwrap().unwrap().kg(), 72.5);
    }

    #[test]
    fn empty_leaves_a_detail_and_delete_clears_it() {
        let m = read_text(
            "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|202612010900||ADT^A08|2|P|2.4\r\
             PID|1||M0042^^^GENHOSP^MR|||||\"\"\r\
             PV1|1|\"\"\r",
        )
        .unwrap();
        assert_eq!(m.patch.name, None);
        assert_eq!(m.patch.birth_date, None);
        assert_eq!(m.patch.sex, Some(Sex::Unknown));
        assert_eq!(m.patch.allergies, None);
        assert_eq!(m.patch.visit, Some(None));
    }

    #[test]
    fn wrong_content_names_its_field() {
        let unmapped = read_text(
            "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|202612010900||ADT^A08|3|P|2.5\r\
             PID|1||M0042^^^ELSEWHERE^MR||Doe^Jo||19700101|F\r",
        )
        .unwrap_err();
        assert_eq!(unmapped.code, ErrorCode::UnknownKeyIdentifier);
        assert!(unmapped.reason.contains("ELSEWHERE"), "{}", unmapped.reason);
        let sex = read_text(
            "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|202612010900||ADT^A08|4|P|2.5\r\
             PID|1||M0042^^^GENHOSP^MR||Doe^Jo||19700101|Q\r",
        )
        .unwrap_err();
        assert_eq!(
            (sex.code, sex.location.unwrap().path()),
            (ErrorCode::TableValueNotFound, "PID-8".to_string())
        );
        let birth = read_text(
            "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|202612010900||ADT^A08|5|P|2.5\r\
             PID|1||M0042^^^GENHOSP^MR||Doe^Jo||1970|F\r",
        )
        .unwrap_err();
        assert_eq!(birth.location.unwrap().path(), "PID-7.1");
    }
}
