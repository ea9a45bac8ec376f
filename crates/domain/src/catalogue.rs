//! The procedure catalogue: what the department does, with the facts rules need about each
//! procedure. It lives in `catalog/procedures.toml` (data, versioned with the code); this module
//! parses it from text and refuses anything malformed, naming the file, entry and field.

use crate::validation::parse_choice;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// Stable id of a catalogue entry, e.g. `tace`. Never reused for a different procedure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
#[serde(try_from = "String", into = "String")]
pub struct ProcedureId(String);

impl TryFrom<String> for ProcedureId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        ProcedureId::parse(&value)
    }
}

impl From<ProcedureId> for String {
    fn from(id: ProcedureId) -> String {
        id.0
    }
}

impl ProcedureId {
    /// What [`ProcedureId::parse`] takes, as an ECMA-262 pattern (for the OpenAPI document).
    pub const PATTERN: &'static str = "^[a-z][a-z0-9-]{0,63}$";

    pub fn parse(value: &str) -> Result<Self, String> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(ProcedureId(value.to_string()))
        } else {
            Err(format!("'{value}' is not a procedure id: use lower-case letters, digits and '-', starting with a letter"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProcedureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! choice_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const CHOICES: &'static [(&'static str, $name)] = &[$(($text, $name::$variant)),+];

            pub fn parse(value: &str) -> Result<Self, String> {
                parse_choice(value, Self::CHOICES)
            }

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice_enum!(
    /// The department's grouping of procedures.
    Category {
        Vascular = "vascular",
        NonVascular = "non_vascular",
        Oncologic = "oncologic",
        Access = "access",
        Drainage = "drainage",
        Musculoskeletal = "musculoskeletal",
        Gi = "gi",
        Venous = "venous",
    }
);

choice_enum!(
    Intent {
        Diagnostic = "diagnostic",
        Therapeutic = "therapeutic",
    }
);

choice_enum!(
    /// Imaging used to guide the procedure.
    GuidanceModality {
        Fluoroscopy = "fluoroscopy",
        Ct = "ct",
        ConeBeamCt = "cone_beam_ct",
        Ultrasound = "ultrasound",
        Mri = "mri",
        None = "none",
    }
);

impl GuidanceModality {
    /// Whether the modality exposes the patient to ionising radiation (pregnancy and dose rules).
    pub fn is_ionising(self) -> bool {
        matches!(
            self,
            GuidanceModality::Fluoroscopy | GuidanceModality::Ct | GuidanceModality::ConeBeamCt
        )
    }
}

choice_enum!(
    /// The access route planned at vetting (clinical-rules.md §1.2, v2): the arterial INR rows
    /// apply to femoral and radial access, and a sheath above 7 F makes an arterial procedure
    /// high bleeding risk (§1.1).
    AccessRoute {
        Femoral = "femoral",
        Radial = "radial",
        Brachial = "brachial",
        Pedal = "pedal",
        Venous = "venous",
        None = "none",
        Other = "other",
    }
);

impl AccessRoute {
    pub fn is_arterial(self) -> bool {
        matches!(
            self,
            AccessRoute::Femoral | AccessRoute::Radial | AccessRoute::Brachial | AccessRoute::Pedal
        )
    }
}

choice_enum!(
    /// How a catalogue procedure reaches the vessels, which decides whether vetting must record
    /// an access route (a low-risk arterial procedure needs one, clinical-rules.md §1.2).
    VascularAccess {
        Arterial = "arterial",
        Venous = "venous",
        Varies = "varies", // arterial or venous, decided case by case at vetting
        None = "none",
    }
);

/// Sheath size in French (UCUM `[Ch]`), as planned at vetting; kept in tenths so plans compare
/// exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = f64))]
#[serde(try_from = "f64", into = "f64")]
pub struct SheathFrench(u16);

impl SheathFrench {
    /// Plausibility bounds for data entry (the sizes made), not a clinical rule.
    pub const MIN_FRENCH: f64 = 1.0;
    pub const MAX_FRENCH: f64 = 30.0;

    pub fn parse(french: f64) -> Result<Self, String> {
        if french.is_finite() && (Self::MIN_FRENCH..=Self::MAX_FRENCH).contains(&french) {
            Ok(SheathFrench((french * 10.0).round() as u16))
        } else {
            Err(format!(
                "{french} is not a sheath size: give French (Fr) from 1 to 30"
            ))
        }
    }

    pub fn french(self) -> f64 {
        f64::from(self.0) / 10.0
    }
}

impl TryFrom<f64> for SheathFrench {
    type Error = String;
    fn try_from(value: f64) -> Result<Self, String> {
        SheathFrench::parse(value)
    }
}

impl From<SheathFrench> for f64 {
    fn from(size: SheathFrench) -> f64 {
        size.french()
    }
}

choice_enum!(
    /// Periprocedural bleeding-risk class, clinical-rules.md §1.1 (SIR 2019).
    BleedingRisk {
        Low = "low",
        High = "high",
    }
);

choice_enum!(
    /// Depth of sedation or anaesthesia.
    Sedation {
        None = "none",
        Local = "local",
        Moderate = "moderate",
        General = "general",
    }
);

choice_enum!(
    /// Follow-up a procedure usually needs; intervals come from clinical-rules.md §7.
    FollowUpKind {
        IvcFilterRetrievalReview = "ivc_filter_retrieval_review",
        NephrostomyExchange = "nephrostomy_exchange",
        BiliaryDrainExchange = "biliary_drain_exchange",
        GastrostomyExchange = "gastrostomy_exchange",
        PortFlush = "port_flush",
        PostAblationImaging = "post_ablation_imaging",
        PostTaceImaging = "post_tace_imaging",
        ClinicReview = "clinic_review",
        DrainReview = "drain_review",
    }
);

/// One catalogue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Procedure {
    pub id: ProcedureId,
    pub name: String,
    pub category: Category,
    pub intent: Intent,
    pub modalities: Vec<GuidanceModality>,
    pub bleeding_risk: BleedingRisk,
    /// Where the bleeding-risk class comes from (section of clinical-rules.md and, for mapped
    /// entries, the reasoning).
    pub bleeding_risk_source: String,
    /// Arterial, venous, case by case, or none: whether vetting must record the access route.
    pub vascular_access: VascularAccess,
    pub sedation: Sedation,
    pub room_minutes: u32,
    pub outpatient: bool,
    pub follow_up: Vec<FollowUpKind>,
}

/// Why the catalogue could not be loaded: file, entry and field, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {location}{problem}")]
pub struct CatalogueError {
    pub file: String,
    pub location: String,
    pub problem: String,
}

/// The loaded catalogue, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcedureCatalogue {
    pub version: String,
    pub procedures: Vec<Procedure>,
}

const ENTRY_FIELDS: &[&str] = &[
    "id",
    "name",
    "category",
    "intent",
    "modalities",
    "bleeding_risk",
    "bleeding_risk_source",
    "vascular_access",
    "sedation",
    "room_minutes",
    "outpatient",
    "follow_up",
];

impl ProcedureCatalogue {
    /// Parses the catalogue text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, CatalogueError> {
        let err = |location: String, problem: String| CatalogueError {
            file: file.to_string(),
            location,
            problem,
        };
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| err(String::new(), e.to_string()))?;
        for key in doc.keys() {
            if key != "version" && key != "procedure" {
                return Err(err(
                    String::new(),
                    format!("unknown top-level key '{key}': allowed are version, procedure"),
                ));
            }
        }
        let version = match doc.get("version") {
            Some(toml::Value::String(v)) if !v.trim().is_empty() => v.clone(),
            _ => {
                return Err(err(
                    String::new(),
                    "'version' must be a non-empty string".into(),
                ))
            }
        };
        let entries = match doc.get("procedure") {
            Some(toml::Value::Array(entries)) if !entries.is_empty() => entries,
            _ => return Err(err(String::new(), "no [[procedure]] entries".into())),
        };
        let mut procedures = Vec::with_capacity(entries.len());
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        for (index, entry) in entries.iter().enumerate() {
            let number = index + 1;
            let table = entry
                .as_table()
                .ok_or_else(|| err(format!("entry {number}: "), "is not a table".into()))?;
            let label = match table.get("id").and_then(toml::Value::as_str) {
                Some(id) => format!("entry {number} (id '{id}'), "),
                None => format!("entry {number}, "),
            };
            let procedure = parse_entry(table)
                .map_err(|(field, problem)| err(format!("{label}field '{field}': "), problem))?;
            if !ids.insert(procedure.id.clone()) {
                return Err(err(
                    format!("{label}field 'id': "),
                    "duplicates an earlier entry's id".into(),
                ));
            }
            if !names.insert(procedure.name.to_lowercase()) {
                return Err(err(
                    format!("{label}field 'name': "),
                    format!("'{}' duplicates an earlier entry's name", procedure.name),
                ));
            }
            procedures.push(procedure);
        }
        Ok(ProcedureCatalogue {
            version,
            procedures,
        })
    }

    pub fn get(&self, id: &ProcedureId) -> Option<&Procedure> {
        self.procedures.iter().find(|p| &p.id == id)
    }

    /// Looks up an id given as text, with an error that says what to do.
    pub fn find(&self, id: &str) -> Result<&Procedure, String> {
        self.procedures
            .iter()
            .find(|p| p.id.as_str() == id)
            .ok_or_else(|| {
                format!("'{id}' is not in the procedure catalogue (see GET /api/v1/procedures)")
            })
    }

    /// Entries per category, for overviews.
    pub fn by_category(&self) -> BTreeMap<Category, Vec<&Procedure>> {
        let mut map: BTreeMap<Category, Vec<&Procedure>> = BTreeMap::new();
        for p in &self.procedures {
            map.entry(p.category).or_default().push(p);
        }
        map
    }
}

type FieldProblem = (&'static str, String);

fn parse_entry(table: &toml::Table) -> Result<Procedure, FieldProblem> {
    for key in table.keys() {
        if !ENTRY_FIELDS.contains(&key.as_str()) {
            return Err((
                "?",
                format!(
                    "unknown field '{key}'; allowed are {}",
                    ENTRY_FIELDS.join(", ")
                ),
            ));
        }
    }
    let text = |field: &'static str| -> Result<String, FieldProblem> {
        match table.get(field) {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(toml::Value::String(_)) => Err((field, "must not be blank".into())),
            Some(other) => Err((
                field,
                format!("must be a string, found {}", other.type_str()),
            )),
            None => Err((field, "is missing".into())),
        }
    };
    let list = |field: &'static str| -> Result<Vec<String>, FieldProblem> {
        match table.get(field) {
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or((field, "must be a list of strings".to_string()))
                })
                .collect(),
            Some(other) => Err((field, format!("must be a list, found {}", other.type_str()))),
            None => Err((field, "is missing".into())),
        }
    };
    let id = ProcedureId::parse(&text("id")?).map_err(|e| ("id", e))?;
    let name = text("name")?;
    let category = Category::parse(&text("category")?).map_err(|e| ("category", e))?;
    let intent = Intent::parse(&text("intent")?).map_err(|e| ("intent", e))?;
    let modalities = list("modalities")?
        .iter()
        .map(|m| GuidanceModality::parse(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ("modalities", e))?;
    if modalities.is_empty() {
        return Err((
            "modalities",
            "must name at least one guidance modality".into(),
        ));
    }
    let bleeding_risk =
        BleedingRisk::parse(&text("bleeding_risk")?).map_err(|e| ("bleeding_risk", e))?;
    let bleeding_risk_source = text("bleeding_risk_source")?;
    if !bleeding_risk_source.contains("clinical-rules.md §1") {
        return Err((
            "bleeding_risk_source",
            "must cite clinical-rules.md §1.x".into(),
        ));
    }
    let vascular_access =
        VascularAccess::parse(&text("vascular_access")?).map_err(|e| ("vascular_access", e))?;
    let sedation = Sedation::parse(&text("sedation")?).map_err(|e| ("sedation", e))?;
    let room_minutes = match table.get("room_minutes") {
        Some(toml::Value::Integer(m)) if (5..=720).contains(m) => *m as u32,
        Some(toml::Value::Integer(m)) => {
            return Err(("room_minutes", format!("{m} is outside 5-720 minutes")))
        }
        Some(other) => {
            return Err((
                "room_minutes",
                format!(
                    "must be a whole number of minutes, found {}",
                    other.type_str()
                ),
            ))
        }
        None => return Err(("room_minutes", "is missing".into())),
    };
    let outpatient = match table.get("outpatient") {
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => {
            return Err((
                "outpatient",
                format!("must be true or false, found {}", other.type_str()),
            ))
        }
        None => return Err(("outpatient", "is missing".into())),
    };
    let follow_up = list("follow_up")?
        .iter()
        .map(|f| FollowUpKind::parse(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ("follow_up", e))?;
    Ok(Procedure {
        id,
        name,
        category,
        intent,
        modalities,
        bleeding_risk,
        bleeding_risk_source,
        vascular_access,
        sedation,
        room_minutes,
        outpatient,
        follow_up,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = r#"
[[procedure]]
id = "paracentesis"
name = "Paracentesis"
category = "drainage"
intent = "therapeutic"
modalities = ["ultrasound"]
bleeding_risk = "low"
bleeding_risk_source = "clinical-rules.md §1.1 low: paracentesis"
vascular_access = "none"
sedation = "local"
room_minutes = 45
outpatient = true
follow_up = []
"#;

    fn doc(entries: &str) -> String {
        format!("version = \"t1\"\n{entries}")
    }

    #[test]
    fn parses_a_valid_entry() {
        let c = ProcedureCatalogue::parse(&doc(ENTRY), "t.toml").expect("valid");
        assert_eq!(c.procedures.len(), 1);
        assert_eq!(c.procedures[0].bleeding_risk, BleedingRisk::Low);
    }

    #[test]
    fn duplicate_id_names_file_entry_and_field() {
        let e = ProcedureCatalogue::parse(
            &doc(&format!(
                "{ENTRY}{}",
                ENTRY.replace("Paracentesis", "Other")
            )),
            "t.toml",
        )
        .expect_err("duplicate");
        assert_eq!(
            e.to_string(),
            "t.toml: entry 2 (id 'paracentesis'), field 'id': duplicates an earlier entry's id"
        );
    }

    #[test]
    fn bad_enum_value_lists_allowed_values() {
        let e = ProcedureCatalogue::parse(&doc(&ENTRY.replace("\"low\"", "\"medium\"")), "t.toml")
            .expect_err("bad");
        assert!(e.to_string().contains("entry 1 (id 'paracentesis'), field 'bleeding_risk': 'medium' is not allowed; use one of: low, high"), "{e}");
    }

    #[test]
    fn missing_and_unknown_fields_are_refused() {
        let e =
            ProcedureCatalogue::parse(&doc(&ENTRY.replace("room_minutes = 45\n", "")), "t.toml")
                .expect_err("missing");
        assert!(
            e.to_string().ends_with("field 'room_minutes': is missing"),
            "{e}"
        );
        let e = ProcedureCatalogue::parse(&doc(&format!("{ENTRY}colour = \"red\"\n")), "t.toml")
            .expect_err("unknown");
        assert!(e.to_string().contains("unknown field 'colour'"), "{e}");
    }
}
