//! The original-mode acknowledgement (HL7 v2 §2.9.2): MSA with AA, AE or AR and the control id
//! answered, and for a problem an ERR segment as the message's version writes it — ERR-2/3/4/8
//! from v2.5, ERR-1 (with MSA-3) before.

use crate::charset::Charset;
use crate::problem::Disposition;
use hl7kit::builder::{Builder, Value};

/// What an acknowledgement repeats of the message it answers; what could not be read is empty.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub sending_application: String,
    pub sending_facility: String,
    pub receiving_application: String,
    pub receiving_facility: String,
    pub control_id: String,
    /// MSH-9.1, e.g. `ADT`.
    pub message_code: String,
    /// MSH-9.2, echoed in the ACK's MSH-9.2.
    pub trigger: String,
    pub processing_id: String,
    pub version: String,
}

/// The versions this interface reads (fields used are the same across them).
pub const VERSIONS: &[&str] = &["2.3", "2.3.1", "2.4", "2.5", "2.5.1"];

/// Whether `version` writes errors the v2.5 way (ERR-2..ERR-8) rather than ERR-1.
fn from_v25(version: &str) -> bool {
    !matches!(version, "2.3" | "2.3.1" | "2.4")
}

/// The acknowledgement of a message with `header`, as text (segments end in CR).
pub fn build(
    header: &Header,
    disposition: &Disposition,
    ack_control_id: &str,
    timestamp: &str,
    charset: Charset,
) -> String {
    let version = if VERSIONS.contains(&header.version.as_str()) {
        header.version.as_str()
    } else {
        "2.5.1"
    };
    let mut b = Builder::new();
    let processing = if header.processing_id.is_empty() {
        "P"
    } else {
        header.processing_id.as_str()
    };
    let application = if header.receiving_application.is_empty() {
        "SELDINGER"
    } else {
        header.receiving_application.as_str()
    };
    let msh = b.segment("MSH");
    msh.set(3, application)
        .set(4, header.receiving_facility.as_str())
        .set(5, header.sending_application.as_str())
        .set(6, header.sending_facility.as_str())
        .set(7, timestamp)
        .set(
            9,
            Value::components(["ACK", header.trigger.as_str(), "ACK"]),
        )
        .set(10, ack_control_id)
        .set(11, processing)
        .set(12, version);
    msh.set(18, charset.msh18());
    let msa = b.segment("MSA");
    msa.set(1, disposition.code())
        .set(2, header.control_id.as_str());
    let Some(problem) = disposition.problem() else {
        return b.build();
    };
    let location = problem.location.as_ref();
    if from_v25(version) {
        let err = b.segment("ERR");
        if let Some(at) = location {
            err.set(
                2,
                Value::components([
                    at.segment.clone(),
                    at.occurrence.to_string(),
                    at.field.to_string(),
                    at.repetition.to_string(),
                    at.component.map(|c| c.to_string()).unwrap_or_default(),
                ]),
            );
        }
        err.set(
            3,
            Value::components([problem.code.code(), problem.code.text(), "HL70357"]),
        )
        .set(4, "E")
        .set(8, problem.to_string());
    } else {
        b.segment_at(1).map(|msa| msa.set(3, problem.to_string()));
        let err = b.segment("ERR");
        if let Some(at) = location {
            err.set_component(1, 1, at.segment.clone())
                .set_component(1, 2, at.occurrence.to_string())
                .set_component(1, 3, at.field.to_string());
        }
        err.set_subcomponent(1, 4, 1, problem.code.code())
            .set_subcomponent(1, 4, 2, problem.code.text())
            .set_subcomponent(1, 4, 3, "HL70357");
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Location;
    use crate::problem::{ErrorCode, Problem};

    fn header(version: &str) -> Header {
        Header {
            sending_application: "LAB".into(),
            sending_facility: "GEN".into(),
            receiving_application: "SELDINGER".into(),
            receiving_facility: "IR".into(),
            control_id: "MSG-1".into(),
            message_code: "ORU".into(),
            trigger: "R01".into(),
            processing_id: "P".into(),
            version: version.into(),
        }
    }

    #[test]
    fn an_error_names_its_place_and_code_as_the_version_writes_it() {
        let problem = Problem::new(
            ErrorCode::RequiredFieldMissing,
            Some(Location::new("PID", 3).component(1)),
            "the MRN is required",
        );
        let v25 = build(
            &header("2.5.1"),
            &Disposition::Error(problem.clone()),
            "A1",
            "20261202101500+0000",
            Charset::Utf8,
        );
        let m = hl7kit::Message::parse(v25.as_str()).unwrap();
        assert_eq!(m.get("MSH-9"), Some("ACK^R01^ACK"));
        assert_eq!(m.get("MSH-5"), Some("LAB"));
        assert_eq!(m.get("MSA-1"), Some("AE"));
        assert_eq!(m.get("MSA-2"), Some("MSG-1"));
        assert_eq!(m.get("ERR-2"), Some("PID^1^3^1^1"));
        assert_eq!(m.get("ERR-3.1"), Some("101"));
        assert_eq!(m.get("ERR-4"), Some("E"));
        assert_eq!(
            m.get_decoded("ERR-8").unwrap(),
            "PID-3.1: the MRN is required"
        );

        let v23 = build(
            &header("2.3"),
            &Disposition::Error(problem),
            "A2",
            "20261202101500+0000",
            Charset::Utf8,
        );
        let m = hl7kit::Message::parse(v23.as_str()).unwrap();
        assert_eq!(m.get("MSH-12"), Some("2.3"));
        assert_eq!(
            m.get("ERR-1"),
            Some("PID^1^3^101&Required field missing&HL70357")
        );
        assert!(m.get_decoded("MSA-3").unwrap().contains("MRN"));
    }

    #[test]
    fn an_accepted_message_gets_aa_and_nothing_else() {
        let text = build(
            &header("2.4"),
            &Disposition::Accepted,
            "A3",
            "20261202101500+0000",
            Charset::Latin1,
        );
        assert_eq!(text.matches('\r').count(), 2);
        assert!(text.contains("MSA|AA|MSG-1"));
        assert!(text.contains("|8859/1"));
    }
}
