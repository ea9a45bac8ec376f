//! The rules. Each function reads the input and the reference and returns checklist items; none
//! holds a number of its own — every threshold comes from the reference, cited.

use super::checklist::{Action, Checklist, ChecklistItem, ItemStatus, UNVERIFIED_NOTE};
use super::input::{CareSetting, DrugUse, FastingRecord, SafetyInput};
use super::reference::{DrugClass, Evidence, SafetyReference, Threshold, ThresholdId as T};
use crate::access::Role;
use crate::catalogue::{AccessRoute, BleedingRisk, Sedation, VascularAccess};
use crate::clinical::{LabResult, LabTest};
use crate::patient::{AllergyClass, Pregnancy, Sex};
use chrono::{DateTime, Duration, Utc};

/// Evaluates every rule for one case.
/// Creatinine clearance in mL/min by Cockcroft–Gault (clinical-rules.md §1.3: Cockcroft & Gault,
/// Nephron 1976;16:31–41, V): (140 − age) × weight ÷ (72 × serum creatinine in mg/dL), × 0.85
/// for females; sex other or unknown takes the lower (female) estimate (D).
pub fn cockcroft_gault(age_years: u32, weight_kg: f64, creatinine_mg_dl: f64, sex: Sex) -> f64 {
    let male = (140.0 - f64::from(age_years)) * weight_kg / (72.0 * creatinine_mg_dl);
    match sex {
        Sex::Male => male,
        Sex::Female | Sex::Other | Sex::Unknown => male * 0.85,
    }
}

pub fn evaluate(input: &SafetyInput, reference: &SafetyReference) -> Checklist {
    let r = Rules { input, reference };
    let mut items = Vec::new();
    items.extend(r.access_plan());
    items.extend(r.inr());
    items.extend(r.platelets());
    items.extend(r.fibrinogen());
    items.extend(r.antithrombotics());
    items.extend(r.contrast_allergy());
    items.extend(r.renal_function());
    items.extend(r.metformin());
    items.extend(r.pregnancy());
    items.extend(r.fasting());
    items.extend(r.anaesthesia_review());
    items.extend(r.latex());
    items.push(r.consent());
    items.push(r.time_out());
    Checklist::new(items, reference.version.clone())
}

fn hours(h: f64) -> Duration {
    Duration::minutes((h * 60.0).round() as i64)
}

struct Rules<'a> {
    input: &'a SafetyInput<'a>,
    reference: &'a SafetyReference,
}

/// Builds an item; an unverified threshold marks it and says so in the reason.
struct Item {
    rule: String,
    title: &'static str,
    citation: String,
    unverified: bool,
}

impl Item {
    fn new(rule: impl Into<String>, title: &'static str, citation: &str) -> Self {
        Item {
            rule: rule.into(),
            title,
            citation: citation.into(),
            unverified: false,
        }
    }

    fn using(mut self, thresholds: &[&Threshold]) -> Self {
        self.unverified |= thresholds
            .iter()
            .any(|t| t.evidence == Evidence::Unverified);
        self
    }

    fn status(
        self,
        status: ItemStatus,
        reason: impl Into<String>,
        actions: Vec<Action>,
    ) -> ChecklistItem {
        let mut reason = reason.into();
        if self.unverified {
            reason.push_str(UNVERIFIED_NOTE);
        }
        ChecklistItem {
            rule: self.rule,
            title: self.title.into(),
            status,
            reason,
            actions,
            citation: self.citation,
            unverified: self.unverified,
        }
    }

    fn pass(self, reason: impl Into<String>) -> ChecklistItem {
        self.status(ItemStatus::Pass, reason, vec![])
    }
}

fn act(role: Role, what: impl Into<String>, due: Option<DateTime<Utc>>) -> Action {
    Action {
        what: what.into(),
        due,
        role,
    }
}

impl Rules<'_> {
    /// A time as the department reads it, its zone's abbreviation named (e.g. GMT, BST, UTC).
    fn when(&self, t: DateTime<Utc>) -> String {
        self.input.time.format(t, "%a %d %b %Y %H:%M %Z")
    }

    fn t(&self, id: T) -> &Threshold {
        self.reference.threshold(id)
    }

    /// High bleeding risk: the procedure's class, or an arterial procedure whose planned sheath
    /// is above 7 F (clinical-rules.md §1.1, v2).
    fn high_risk(&self) -> bool {
        self.input.procedure.bleeding_risk == BleedingRisk::High || self.large_arterial_sheath()
    }

    fn arterial(&self) -> bool {
        self.input
            .access_route
            .is_some_and(AccessRoute::is_arterial)
    }

    fn large_arterial_sheath(&self) -> bool {
        let limit = self.t(T::SheathArterialHighRiskAbove);
        self.arterial()
            && self
                .input
                .sheath_french
                .is_some_and(|s| s.french() > limit.value)
    }

    /// The procedure may reach the arteries (the catalogue's vascular access).
    fn reaches_arteries(&self) -> bool {
        matches!(
            self.input.procedure.vascular_access,
            VascularAccess::Arterial | VascularAccess::Varies
        )
    }

    // §1.2 (v2) the planned access route and sheath, for procedures that reach the arteries.
    fn access_plan(&self) -> Option<ChecklistItem> {
        if !self.reaches_arteries() && !self.arterial() {
            return None;
        }
        let limit = self.t(T::SheathArterialHighRiskAbove);
        let item = Item::new(
            "plan.access_route",
            "Planned access route and sheath",
            "clinical-rules.md §1.2",
        )
        .using(&[limit]);
        let Some(route) = self.input.access_route else {
            if self.input.procedure.bleeding_risk == BleedingRisk::High {
                return Some(item.pass(
                    "Access route not recorded; the procedure is high bleeding risk whatever the route.",
                ));
            }
            return Some(item.status(
                ItemStatus::MissingData,
                "Missing data: access route. The INR limits of a low bleeding-risk arterial procedure depend on it (femoral or radial), and a sheath above 7 F makes it high risk.",
                vec![act(
                    Role::IrPhysician,
                    "Record the planned access route and sheath size",
                    Some(self.input.planned_start),
                )],
            ));
        };
        let sheath = self
            .input
            .sheath_french
            .map(|s| format!(", {} F sheath", s.french()))
            .unwrap_or_else(|| ", sheath size not recorded".into());
        Some(if self.large_arterial_sheath() {
            item.pass(format!(
                "{route} access{sheath}: an arterial procedure with a sheath above {} F is high bleeding risk (§1.1); the high-risk rules apply.",
                limit.value
            ))
        } else {
            item.pass(format!("{route} access{sheath}."))
        })
    }

    fn ionising(&self) -> bool {
        self.input.modality.is_ionising()
    }

    fn stopping_warfarin(&self) -> bool {
        self.high_risk() && self.input.takes("warfarin")
    }

    /// Whether a coagulation result is recent enough (clinical-rules.md §1.2, D). Returns the
    /// window's description when it is not.
    fn coagulation_recency(&self, lab: &LabResult) -> Result<(), String> {
        let start = self.input.planned_start;
        if self.stopping_warfarin() {
            let t = self.t(T::RecencyCoagulationStoppingWarfarinHours);
            if lab.drawn_at < start - hours(t.value) {
                return Err(format!(
                    "within {} h before the procedure (stopping warfarin)",
                    t.value
                ));
            }
        }
        match self.input.setting {
            CareSetting::Admitted { since } if lab.drawn_at < since => Err(format!(
                "during this admission (since {})",
                self.when(since)
            )),
            CareSetting::Admitted { .. } => Ok(()),
            CareSetting::ScheduledOutpatient => {
                let t = self.t(T::RecencyCoagulationOutpatientHours);
                if lab.drawn_at < start - hours(t.value) {
                    Err(format!(
                        "within {} days before the procedure",
                        t.value / 24.0
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    // §1.2 INR
    fn inr(&self) -> Option<ChecklistItem> {
        let item = Item::new(
            "coagulation.inr",
            "INR for the procedure's bleeding risk",
            "clinical-rules.md §1.2",
        );
        if self.input.flags.chronic_liver_disease {
            return Some(item.pass("Chronic liver disease: INR does not reflect bleeding risk; platelets and fibrinogen are used instead."));
        }
        let (pass_max, block_above) = if self.high_risk() {
            (
                self.t(T::InrHighRiskPassMax),
                self.t(T::InrHighRiskBlockAbove),
            )
        } else {
            (
                self.t(T::InrLowRiskPassMax),
                self.t(T::InrLowRiskBlockAbove),
            )
        };
        let item = item.using(&[pass_max, block_above]);
        let needed =
            self.high_risk() || self.input.takes("warfarin") || self.input.takes("heparin");
        let Some(lab) = self.input.latest(LabTest::Inr) else {
            return Some(if needed {
                let why = if self.high_risk() {
                    "a high bleeding-risk procedure"
                } else {
                    "a patient on warfarin or heparin"
                };
                item.status(
                    ItemStatus::MissingData,
                    format!("No INR on record; one is required for {why}."),
                    vec![act(
                        Role::IrNurse,
                        "Request an INR",
                        Some(self.input.planned_start),
                    )],
                )
            } else {
                item.pass("Low bleeding risk and no warfarin or heparin: INR not routinely needed.")
            });
        };
        if let Err(window) = self.coagulation_recency(lab) {
            return Some(item.status(
                ItemStatus::ActionNeeded,
                format!(
                    "INR {} was drawn {}, too long ago: it must be drawn {window}.",
                    lab.value,
                    self.when(lab.drawn_at)
                ),
                vec![act(
                    Role::IrNurse,
                    format!("Repeat INR {window}"),
                    Some(self.input.planned_start),
                )],
            ));
        }
        if !self.high_risk() && self.arterial() {
            return Some(self.arterial_inr(lab));
        }
        if !self.high_risk() && self.reaches_arteries() && self.input.access_route.is_none() {
            return Some(self.unrouted_arterial_inr(lab));
        }
        let class = if self.high_risk() { "high" } else { "low" };
        Some(if lab.value <= pass_max.value {
            item.pass(format!(
                "INR {} is at or below {} for a {class} bleeding-risk procedure.",
                lab.value, pass_max.value
            ))
        } else if lab.value <= block_above.value {
            item.status(
                ItemStatus::ActionNeeded,
                format!(
                    "INR {} is above {} but within the guideline range up to {} for a {class} bleeding-risk procedure: physician to confirm.",
                    lab.value, pass_max.value, block_above.value
                ),
                vec![act(Role::IrPhysician, "Confirm the INR is acceptable, or correct it", Some(self.input.planned_start))],
            )
        } else {
            item.status(
                ItemStatus::Block,
                format!("INR {} is above {} for a {class} bleeding-risk procedure: correct it before the procedure.", lab.value, block_above.value),
                vec![act(Role::IrPhysician, format!("Correct INR to {} or below, then repeat", pass_max.value), Some(self.input.planned_start))],
            )
        })
    }

    /// §1.2 (v3 clarification) a low bleeding-risk procedure that reaches the arteries with no
    /// access route recorded: its INR passes only below the lowest arterial limit (femoral 1.8),
    /// where every arterial row would pass; from there the route decides, so it is missing data
    /// — never a pass on the non-arterial row.
    fn unrouted_arterial_inr(&self, lab: &LabResult) -> ChecklistItem {
        let femoral = self.t(T::InrArterialFemoralPassBelow);
        let radial = self.t(T::InrArterialRadialPassBelow);
        let lowest = if femoral.value <= radial.value {
            femoral
        } else {
            radial
        };
        let item = Item::new(
            "coagulation.inr",
            "INR for the procedure's bleeding risk",
            "clinical-rules.md §1.2",
        )
        .using(&[femoral, radial]);
        if lab.value < lowest.value {
            item.pass(format!(
                "INR {} is below {}: it passes whatever the arterial access (route not yet recorded).",
                lab.value, lowest.value
            ))
        } else {
            item.status(
                ItemStatus::MissingData,
                format!(
                    "Missing data: access route. INR {} passes for radial access (below {}) but not femoral (below {}); record the planned route.",
                    lab.value, radial.value, femoral.value
                ),
                vec![act(
                    Role::IrPhysician,
                    "Record the planned access route and sheath size",
                    Some(self.input.planned_start),
                )],
            )
        }
    }

    /// §1.2 (v2) the arterial row of a low bleeding-risk procedure: femoral passes below 1.8,
    /// radial below 2.2 (V); at or above, block (D). The guideline gives no value for other
    /// arterial routes, so a physician confirms those.
    fn arterial_inr(&self, lab: &LabResult) -> ChecklistItem {
        let femoral = self.t(T::InrArterialFemoralPassBelow);
        let radial = self.t(T::InrArterialRadialPassBelow);
        let item = Item::new(
            "coagulation.inr",
            "INR for the procedure's bleeding risk",
            "clinical-rules.md §1.2",
        );
        let route = self.input.access_route.unwrap_or(AccessRoute::Other);
        let limit = match route {
            AccessRoute::Femoral => femoral,
            AccessRoute::Radial => radial,
            _ => {
                return item.using(&[femoral, radial]).status(
                    ItemStatus::ActionNeeded,
                    format!(
                        "INR {} with {route} arterial access: clinical-rules.md §1.2 gives arterial limits for femoral (below {}) and radial (below {}) access only; physician to confirm.",
                        lab.value, femoral.value, radial.value
                    ),
                    vec![act(Role::IrPhysician, format!("Confirm the INR is acceptable for {route} access"), Some(self.input.planned_start))],
                );
            }
        };
        let item = item.using(&[limit]);
        if lab.value < limit.value {
            item.pass(format!(
                "INR {} is below {} for {route} arterial access (low bleeding risk).",
                lab.value, limit.value
            ))
        } else {
            item.status(
                ItemStatus::Block,
                format!(
                    "INR {} is at or above {} for {route} arterial access: correct it before the procedure.",
                    lab.value, limit.value
                ),
                vec![act(Role::IrPhysician, format!("Correct INR to below {}, then repeat", limit.value), Some(self.input.planned_start))],
            )
        }
    }

    // §1.2 platelets (and the liver-disease thresholds, U)
    fn platelets(&self) -> Option<ChecklistItem> {
        let item = Item::new(
            "coagulation.platelets",
            "Platelet count for the procedure's bleeding risk",
            "clinical-rules.md §1.2",
        );
        let liver = self.input.flags.chronic_liver_disease;
        let (threshold, inclusive_ok) = match (liver, self.high_risk()) {
            (true, true) => (self.t(T::LiverPlateletsHighRiskMinExclusive), false),
            (true, false) => (self.t(T::LiverPlateletsLowRiskMinExclusive), false),
            (false, true) => (self.t(T::PlateletsHighRiskTransfuseBelow), true),
            (false, false) => (self.t(T::PlateletsLowRiskTransfuseBelow), true),
        };
        let item = item.using(&[threshold]);
        let needed = self.high_risk() || liver;
        let Some(lab) = self.input.latest(LabTest::Platelets) else {
            return Some(if needed {
                item.status(
                    ItemStatus::MissingData,
                    "No platelet count on record; one is required for this procedure.",
                    vec![act(
                        Role::IrNurse,
                        "Request a full blood count",
                        Some(self.input.planned_start),
                    )],
                )
            } else {
                item.pass("Low bleeding risk: platelet count not routinely needed.")
            });
        };
        if needed {
            if let Err(window) = self.coagulation_recency(lab) {
                return Some(item.status(
                    ItemStatus::ActionNeeded,
                    format!(
                        "Platelets {} were counted {}, too long ago: repeat {window}.",
                        lab.value,
                        self.when(lab.drawn_at)
                    ),
                    vec![act(
                        Role::IrNurse,
                        format!("Repeat the platelet count {window}"),
                        Some(self.input.planned_start),
                    )],
                ));
            }
        }
        let ok = if inclusive_ok {
            lab.value >= threshold.value
        } else {
            lab.value > threshold.value
        };
        let bound = if inclusive_ok { "at least" } else { "above" };
        Some(if ok {
            item.pass(format!(
                "Platelets {} ×10⁹/L: {bound} {}.",
                lab.value, threshold.value
            ))
        } else {
            item.status(
                ItemStatus::Block,
                format!(
                    "Platelets {} ×10⁹/L: must be {bound} {} for this procedure.",
                    lab.value, threshold.value
                ),
                vec![act(
                    Role::IrPhysician,
                    "Arrange platelet transfusion and a repeat count",
                    Some(self.input.planned_start),
                )],
            )
        })
    }

    // §1.2 fibrinogen in chronic liver disease (U)
    fn fibrinogen(&self) -> Option<ChecklistItem> {
        if !self.input.flags.chronic_liver_disease {
            return None;
        }
        let t = self.t(T::LiverFibrinogenMinExclusive);
        let item = Item::new(
            "coagulation.fibrinogen",
            "Fibrinogen in chronic liver disease",
            "clinical-rules.md §1.2",
        )
        .using(&[t]);
        Some(match self.input.latest(LabTest::Fibrinogen) {
            None => item.status(
                ItemStatus::MissingData,
                "Chronic liver disease: a fibrinogen level is needed.",
                vec![act(
                    Role::IrNurse,
                    "Request fibrinogen",
                    Some(self.input.planned_start),
                )],
            ),
            Some(lab) if lab.value > t.value => item.pass(format!(
                "Fibrinogen {} mg/dL is above {}.",
                lab.value, t.value
            )),
            Some(lab) => item.status(
                ItemStatus::Block,
                format!(
                    "Fibrinogen {} mg/dL: must be above {} in chronic liver disease.",
                    lab.value, t.value
                ),
                vec![act(
                    Role::IrPhysician,
                    "Correct fibrinogen before the procedure",
                    Some(self.input.planned_start),
                )],
            ),
        })
    }

    // §1.3 antithrombotic holds
    fn antithrombotics(&self) -> Vec<ChecklistItem> {
        let mut items = Vec::new();
        for drug in &self.input.drugs {
            let name = drug.drug.trim().to_lowercase();
            let rule = format!("hold.{name}");
            let item = Item::new(
                rule.clone(),
                "Antithrombotic drug before the procedure",
                "clinical-rules.md §1.3",
            );
            let Some(class) = self.reference.drug_class(&name) else {
                items.push(item.status(
                    ItemStatus::MissingData,
                    format!(
                        "'{}' is not in the drug table: confirm whether it affects bleeding.",
                        drug.drug
                    ),
                    vec![act(
                        Role::IrPhysician,
                        format!("Review '{}' for bleeding risk", drug.drug),
                        Some(self.input.planned_start),
                    )],
                ));
                continue;
            };
            if !class.is_antithrombotic() {
                continue;
            }
            if !self.high_risk() {
                items.push(item.pass(format!(
                    "Low bleeding-risk procedure: {name} is not withheld."
                )));
                continue;
            }
            let mut held = self.hold(item, drug, &name, class);
            held.actions.extend(self.resumption(&name, class));
            items.push(held);
            if self.input.flags.high_thrombotic_risk {
                items.push(Item::new(format!("bridging.{name}"), "High thrombotic risk", "clinical-rules.md §1.3").status(
                    ItemStatus::ActionNeeded,
                    format!("High thrombotic risk and {name} to be held: discuss bridging with the prescribing team."),
                    vec![act(Role::IrPhysician, format!("Discuss bridging for {name} with the prescribing team"), Some(self.input.planned_start))],
                ));
            }
        }
        items
    }

    /// Creatinine clearance for a hold that depends on it: the one recorded in the assessment,
    /// else estimated by Cockcroft–Gault from age, sex, recorded weight and a creatinine within
    /// the eGFR recency of §2 (clinical-rules.md §1.3, v2). `Err` names what is missing.
    fn creatinine_clearance(&self) -> Result<(f64, Option<String>), Vec<&'static str>> {
        if let Some(recorded) = self.input.flags.creatinine_clearance {
            return Ok((recorded, None));
        }
        let window = match self.input.setting {
            CareSetting::ScheduledOutpatient => self.t(T::RecencyEgfrOutpatientHours),
            CareSetting::Admitted { .. } => self.t(T::RecencyEgfrInpatientHours),
        };
        // A creatinine of 0 cannot be divided by: it estimates nothing (and would pass every row).
        let creatinine = self
            .input
            .latest(LabTest::Creatinine)
            .filter(|l| l.drawn_at >= self.input.planned_start - hours(window.value))
            .filter(|l| l.value > 0.0);
        let weight = self.input.patient.weight_kg;
        let mut missing = Vec::new();
        if weight.is_none() {
            missing.push("a recorded weight");
        }
        if creatinine.is_none() {
            missing
                .push("a creatinine above 0 drawn within the eGFR recency of clinical-rules.md §2");
        }
        let (Some(weight), Some(creatinine)) = (weight, creatinine) else {
            return Err(missing);
        };
        let age = self
            .input
            .patient
            .age_on(self.input.time.date_of(self.input.planned_start));
        let estimate = cockcroft_gault(age, weight.kg(), creatinine.value, self.input.patient.sex);
        let sex = match self.input.patient.sex {
            Sex::Male => "male",
            Sex::Female => "female",
            // §1.3 (D): sex other or unknown takes the lower (female) estimate.
            Sex::Other | Sex::Unknown => "sex not male or female: the lower (female) estimate",
        };
        Ok((
            estimate,
            Some(format!(
                "CrCl {estimate:.0} mL/min estimated (Cockcroft–Gault) from age {age}, weight {} kg, creatinine {} mg/dL drawn {}, {sex}.",
                weight.kg(),
                creatinine.value,
                self.when(creatinine.drawn_at)
            )),
        ))
    }

    fn hold(&self, item: Item, drug: &DrugUse, name: &str, class: DrugClass) -> ChecklistItem {
        let start = self.input.planned_start;
        let renal_dependent = self
            .reference
            .holds
            .iter()
            .any(|h| h.drug == name && !h.crcl.is_any());
        if !renal_dependent {
            return self.hold_at(item, drug, name, class, None);
        }
        match self.creatinine_clearance() {
            Ok((crcl, None)) => self.hold_at(item, drug, name, class, Some(crcl)),
            Ok((crcl, Some(estimate))) => {
                let mut held = self.hold_at(item, drug, name, class, Some(crcl));
                held.reason = format!("{} {estimate}", held.reason);
                held
            }
            Err(missing) => item.status(
                ItemStatus::MissingData,
                format!(
                    "The hold for {name} depends on creatinine clearance: none is recorded, and the Cockcroft–Gault estimate needs {}.",
                    missing.join(" and ")
                ),
                vec![act(
                    Role::IrNurse,
                    "Record creatinine clearance (mL/min), or the weight and a recent creatinine",
                    Some(start),
                )],
            ),
        }
    }

    fn hold_at(
        &self,
        item: Item,
        drug: &DrugUse,
        name: &str,
        class: DrugClass,
        crcl: Option<f64>,
    ) -> ChecklistItem {
        let start = self.input.planned_start;
        if class == DrugClass::Lmwh && drug.dose_intent.is_none() {
            return item.status(
                ItemStatus::MissingData,
                format!("The hold for {name} depends on whether the dose is prophylactic or therapeutic, which is not recorded."),
                vec![act(Role::IrNurse, format!("Record the {name} dose intent"), Some(start))],
            );
        }
        if class == DrugClass::Aspirin && drug.indication.as_deref() != Some("primary_prevention") {
            return match drug.indication.as_deref() {
                Some("secondary_prevention") => item.pass("Aspirin for secondary prevention: not withheld."),
                _ => item.using(&[]).status(
                    ItemStatus::ActionNeeded,
                    "Aspirin is not withheld for most; it is held before high-risk procedures when taken for primary prevention. The indication is not recorded.",
                    vec![act(Role::IrPhysician, "Decide whether aspirin is for primary prevention (then hold)", Some(start))],
                ),
            };
        }
        let rows = self.reference.holds_for(name, crcl, drug.dose_intent);
        let Some(rule) = rows.iter().max_by_key(|h| h.hours) else {
            return item.status(
                ItemStatus::ActionNeeded,
                format!("The reference gives no hold interval for {name} at this renal function: physician to decide."),
                vec![act(Role::IrPhysician, format!("Decide the {name} hold"), Some(start))],
            );
        };
        let item = Item {
            unverified: item.unverified || rule.evidence == Evidence::Unverified,
            ..item
        };
        let deadline = start - Duration::hours(i64::from(rule.hours));
        let interval = if rule.hours % 24 == 0 {
            format!("{} days", rule.hours / 24)
        } else {
            format!("{} h", rule.hours)
        };
        let Some(last) = drug.last_dose_at else {
            return item.status(
                ItemStatus::MissingData,
                format!("{name}: the time of the last dose is not recorded; it must be at least {interval} before the procedure ({}).", self.when(deadline)),
                vec![act(Role::IrNurse, format!("Record the last {name} dose; tell the patient the last dose is no later than {}", self.when(deadline)), Some(deadline))],
            );
        };
        if deadline > self.input.now {
            // Until the deadline passes the patient may take more doses: the hold is a task.
            item.status(
                ItemStatus::ActionNeeded,
                format!(
                    "Hold {name}: last dose no later than {} ({interval} before the procedure). Last recorded dose {}.",
                    self.when(deadline),
                    self.when(last)
                ),
                vec![act(Role::IrNurse, format!("Tell the patient to take the last {name} dose no later than {}", self.when(deadline)), Some(deadline))],
            )
        } else if last <= deadline {
            item.pass(format!(
                "Last {name} dose {} is at least {interval} before the procedure (confirm none since at check-in).",
                self.when(last)
            ))
        } else {
            item.status(
                ItemStatus::Block,
                format!(
                    "Last {name} dose {} is less than {interval} before the procedure at {}: reschedule, or physician override.",
                    self.when(last),
                    self.when(start)
                ),
                vec![act(Role::IrPhysician, "Reschedule or record an override with a reason", Some(start))],
            )
        }
    }

    /// When a held drug restarts after a high bleeding-risk procedure (§1.3, U): a dated
    /// instruction for the discharging physician.
    fn resumption(&self, name: &str, class: DrugClass) -> Option<Action> {
        let end = self.input.planned_end;
        let note = UNVERIFIED_NOTE.trim_start();
        match class {
            DrugClass::Doac => {
                let (from, until) = (self.t(T::ResumeDoacHighRiskFromHours), self.t(T::ResumeDoacHighRiskUntilHours));
                Some(act(
                    Role::IrPhysician,
                    format!(
                        "Resume {name} {}-{} h after the procedure: from {} to {}, once haemostasis is secure {note}",
                        from.value,
                        until.value,
                        self.when(end + hours(from.value)),
                        self.when(end + hours(until.value))
                    ),
                    Some(end + hours(from.value)),
                ))
            }
            DrugClass::VitaminKAntagonist => {
                let after = self.t(T::ResumeWarfarinHighRiskHours);
                Some(act(
                    Role::IrPhysician,
                    format!("Resume {name} {} h after the procedure, from {} {note}", after.value, self.when(end + hours(after.value))),
                    Some(end + hours(after.value)),
                ))
            }
            _ => Some(act(
                Role::IrPhysician,
                format!("Decide when {name} restarts after the procedure (the reference gives no interval)"),
                Some(end),
            )),
        }
    }

    // §2 prior allergic-like reaction to iodinated contrast
    fn contrast_allergy(&self) -> Option<ChecklistItem> {
        if !(self.input.iodinated_contrast
            && self.input.has_allergy(AllergyClass::IodinatedContrast))
        {
            return None;
        }
        let oral = self.t(T::PremedicationElectiveOralFirstDoseHoursBefore);
        let iv = self.t(T::PremedicationAcceleratedIvMinimumHoursBefore);
        let item = Item::new(
            "contrast.allergy",
            "Prior reaction to iodinated contrast",
            "clinical-rules.md §2",
        )
        .using(&[oral, iv]);
        let start = self.input.planned_start;
        let until = start - self.input.now;
        Some(if until >= hours(oral.value) {
            let at = |h: i64| start - Duration::hours(h);
            item.status(
                ItemStatus::ActionNeeded,
                "Prior allergic-like reaction to iodinated contrast: premedicate (elective oral regimen) or use an alternative agent.",
                vec![
                    act(Role::IrNurse, "Prednisone 50 mg PO", Some(at(13))),
                    act(Role::IrNurse, "Prednisone 50 mg PO", Some(at(7))),
                    act(Role::IrNurse, "Prednisone 50 mg PO and diphenhydramine 50 mg", Some(at(1))),
                ],
            )
        } else if until >= hours(iv.value) {
            item.status(
                ItemStatus::ActionNeeded,
                "Prior allergic-like reaction to iodinated contrast and less than 13 h to go: accelerated IV premedication.",
                vec![
                    act(Role::IrNurse, "Methylprednisolone 40 mg IV (or hydrocortisone 200 mg IV) now and every 4 h until contrast", Some(self.input.now)),
                    act(Role::IrNurse, "Diphenhydramine 50 mg IV", Some(start - Duration::hours(1))),
                ],
            )
        } else {
            item.status(
                ItemStatus::Block,
                format!("Prior allergic-like reaction to iodinated contrast and less than {} h to go: too late for premedication.", iv.value),
                vec![act(Role::IrPhysician, "Use an alternative agent, delay, or record an override", Some(start))],
            )
        })
    }

    // §2 renal function and contrast
    fn renal_function(&self) -> Option<ChecklistItem> {
        if !self.input.iodinated_contrast {
            return None;
        }
        let limit = self.t(T::EgfrContrastActionBelow);
        let window = match self.input.setting {
            CareSetting::ScheduledOutpatient => self.t(T::RecencyEgfrOutpatientHours),
            CareSetting::Admitted { .. } => self.t(T::RecencyEgfrInpatientHours),
        };
        let item = Item::new(
            "contrast.renal",
            "Renal function before iodinated contrast",
            "clinical-rules.md §2",
        )
        .using(&[limit, window]);
        if self.input.flags.on_dialysis {
            return Some(item.pass("On dialysis: noted; no block for contrast."));
        }
        if self.input.flags.acute_kidney_injury {
            return Some(item.status(
                ItemStatus::ActionNeeded,
                "Acute kidney injury: physician to weigh contrast use; consider IV hydration.",
                vec![act(
                    Role::IrPhysician,
                    "Weigh contrast use; consider IV hydration",
                    Some(self.input.planned_start),
                )],
            ));
        }
        let Some(lab) = self.input.latest(LabTest::Egfr) else {
            return Some(item.status(
                ItemStatus::MissingData,
                "No eGFR on record before iodinated contrast.",
                vec![act(
                    Role::IrNurse,
                    "Request creatinine/eGFR",
                    Some(self.input.planned_start),
                )],
            ));
        };
        if lab.drawn_at < self.input.planned_start - hours(window.value) {
            return Some(item.status(
                ItemStatus::ActionNeeded,
                format!(
                    "eGFR {} is from {}; it must be from within {} h of the procedure.",
                    lab.value,
                    self.when(lab.drawn_at),
                    window.value
                ),
                vec![act(
                    Role::IrNurse,
                    "Repeat creatinine/eGFR",
                    Some(self.input.planned_start),
                )],
            ));
        }
        Some(if lab.value < limit.value {
            item.status(
                ItemStatus::ActionNeeded,
                format!(
                    "eGFR {} is below {}: physician to weigh contrast use; consider IV hydration.",
                    lab.value, limit.value
                ),
                vec![act(
                    Role::IrPhysician,
                    "Weigh contrast use; consider IV hydration",
                    Some(self.input.planned_start),
                )],
            )
        } else {
            item.pass(format!(
                "eGFR {} is at least {} and no acute kidney injury.",
                lab.value, limit.value
            ))
        })
    }

    // §2 metformin
    fn metformin(&self) -> Option<ChecklistItem> {
        if !(self.input.iodinated_contrast && self.input.takes("metformin")) {
            return None;
        }
        let limit = self.t(T::EgfrContrastActionBelow);
        let after = self.t(T::MetforminHoldAfterContrastHours);
        let item = Item::new(
            "contrast.metformin",
            "Metformin and iodinated contrast",
            "clinical-rules.md §2",
        )
        .using(&[limit, after]);
        let egfr = self.input.latest(LabTest::Egfr).map(|l| l.value);
        Some(match (self.input.flags.acute_kidney_injury, egfr) {
            (false, None) => item.status(
                ItemStatus::MissingData,
                "Metformin and contrast: eGFR needed to decide whether to hold metformin.",
                vec![],
            ),
            (aki, Some(v)) if !aki && v >= limit.value => item.pass(format!(
                "eGFR {v} is at least {}: metformin continues.",
                limit.value
            )),
            _ => {
                let start = self.input.planned_start;
                item.status(
                    ItemStatus::ActionNeeded,
                    format!("Hold metformin at the time of contrast and for {} h after; restart when renal function is stable.", after.value),
                    vec![
                        act(Role::IrNurse, "Hold metformin from the time of contrast", Some(start)),
                        act(Role::IrPhysician, "Check renal function before metformin restarts", Some(start + hours(after.value))),
                    ],
                )
            }
        })
    }

    // §3 pregnancy before ionising radiation
    fn pregnancy(&self) -> Option<ChecklistItem> {
        if !self.ionising() {
            return None;
        }
        let min = self.t(T::PregnancyAgeMinYears);
        let max = self.t(T::PregnancyAgeMaxYears);
        let age = f64::from(
            self.input
                .patient
                .age_on(self.input.time.date_of(self.input.planned_start)),
        );
        let could_be_pregnant =
            self.input.patient.sex != Sex::Male && age >= min.value && age <= max.value;
        if !could_be_pregnant {
            return None;
        }
        let item = Item::new(
            "pregnancy",
            "Pregnancy status before ionising radiation",
            "clinical-rules.md §3",
        )
        .using(&[min, max]);
        // "On the day" is the department's calendar day, not UTC's.
        let day = self.input.time.date_of(self.input.planned_start);
        Some(match &self.input.patient.pregnancy {
            Some(p) if self.input.time.date_of(p.recorded_at) == day => match p.status {
                Pregnancy::NotPregnant | Pregnancy::NotApplicable => item.pass("Pregnancy status documented today: not pregnant."),
                Pregnancy::Pregnant | Pregnancy::PossiblyPregnant | Pregnancy::Unknown => item.status(
                    ItemStatus::Block,
                    "Pregnancy positive or not excluded on the day: an IR physician must decide before ionising radiation.",
                    vec![act(Role::IrPhysician, "Decide on ionising radiation given pregnancy status", Some(self.input.planned_start))],
                ),
            },
            // §3 (v2): no status documented on the day counts as unknown, which blocks.
            _ => item.status(
                ItemStatus::Block,
                format!(
                    "No pregnancy status documented on the day: it counts as unknown, which blocks ionising radiation. A person who can be pregnant, aged {}-{}, needs a test or screening statement on the day; until then an IR physician must decide.",
                    min.value, max.value
                ),
                vec![
                    act(Role::IrNurse, "Document pregnancy status (test or screening) on the day", Some(self.input.planned_start)),
                    act(Role::IrPhysician, "Decide on ionising radiation if the status stays unknown", Some(self.input.planned_start)),
                ],
            ),
        })
    }

    // §4 fasting
    fn fasting(&self) -> Option<ChecklistItem> {
        if !matches!(self.input.sedation, Sedation::Moderate | Sedation::General) {
            return None;
        }
        type Intake = fn(&FastingRecord) -> Option<DateTime<Utc>>;
        let kinds: [(&Threshold, &str, Intake); 4] = [
            (self.t(T::FastingClearLiquidsHours), "clear liquids", |f| {
                f.clear_liquids
            }),
            (self.t(T::FastingBreastMilkHours), "breast milk", |f| {
                f.breast_milk
            }),
            (
                self.t(T::FastingLightMealHours),
                "a light meal, formula or non-human milk",
                |f| f.light_meal,
            ),
            (
                self.t(T::FastingFattyMealHours),
                "fried or fatty food or meat",
                |f| f.fatty_meal,
            ),
        ];
        let used: Vec<&Threshold> = kinds.iter().map(|(t, ..)| *t).collect();
        let item = Item::new(
            "fasting",
            "Fasting for moderate sedation or general anaesthesia",
            "clinical-rules.md §4",
        )
        .using(&used);
        let start = self.input.planned_start;
        let Some(record) = &self.input.fasting else {
            let latest: Vec<String> = kinds
                .iter()
                .map(|(t, what, _)| format!("{what} until {}", self.when(start - hours(t.value))))
                .collect();
            return Some(item.status(
                ItemStatus::MissingData,
                format!(
                    "Fasting not yet recorded. Instructions: {}.",
                    latest.join("; ")
                ),
                vec![act(
                    Role::IrNurse,
                    format!("Give fasting instructions: {}", latest.join("; ")),
                    Some(start - Duration::hours(24)),
                )],
            ));
        };
        let breaches: Vec<String> = kinds
            .iter()
            .filter_map(|(t, what, get)| {
                get(record)
                    .filter(|at| *at > start - hours(t.value))
                    .map(|at| format!("{what} at {} (needs {} h)", self.when(at), t.value))
            })
            .collect();
        Some(if breaches.is_empty() {
            item.pass("Fasting times meet the sedation guideline.")
        } else {
            item.status(
                ItemStatus::Block,
                format!("Not fasted long enough: {}.", breaches.join("; ")),
                vec![act(
                    Role::IrPhysician,
                    "Delay the start, or change the sedation plan",
                    Some(start),
                )],
            )
        })
    }

    // §4 ASA class and airway
    fn anaesthesia_review(&self) -> Option<ChecklistItem> {
        let t = self.t(T::AsaAnaesthesiaReviewFrom);
        let item = Item::new(
            "anaesthesia.review",
            "ASA class and airway",
            "clinical-rules.md §4",
        )
        .using(&[t]);
        let sedated = matches!(self.input.sedation, Sedation::Moderate | Sedation::General);
        let asa = self.input.flags.asa_class;
        if self.input.flags.difficult_airway || asa.is_some_and(|a| f64::from(a) >= t.value) {
            let why = match asa {
                Some(a) if f64::from(a) >= t.value => format!("ASA {a}"),
                _ => "Difficult airway".into(),
            };
            return Some(item.status(
                ItemStatus::ActionNeeded,
                format!("{why}: anaesthesia review before the procedure."),
                vec![act(
                    Role::IrPhysician,
                    "Request an anaesthesia review",
                    Some(self.input.planned_start),
                )],
            ));
        }
        Some(match asa {
            Some(a) => item.pass(format!("ASA {a}: no anaesthesia review needed.")),
            None if sedated => item.status(
                ItemStatus::MissingData,
                "ASA class not assessed for a sedated procedure.",
                vec![act(
                    Role::IrNurse,
                    "Record the ASA class",
                    Some(self.input.planned_start),
                )],
            ),
            None => return None,
        })
    }

    // Latex allergy: the sign-in checks allergies (§8)
    fn latex(&self) -> Option<ChecklistItem> {
        self.input.has_allergy(AllergyClass::Latex).then(|| {
            Item::new("allergy.latex", "Latex allergy", "clinical-rules.md §8").status(
                ItemStatus::ActionNeeded,
                "Latex allergy: prepare a latex-free room and equipment.",
                vec![act(
                    Role::IrNurse,
                    "Prepare a latex-free room and equipment",
                    Some(self.input.planned_start),
                )],
            )
        })
    }

    // §8 consent
    fn consent(&self) -> ChecklistItem {
        let item = Item::new("consent", "Consent recorded", "clinical-rules.md §8");
        match &self.input.consent {
            Some(c) => item.pass(format!(
                "Consent recorded {} by {}.",
                self.when(c.recorded_at),
                c.recorded_by
            )),
            None => item.status(
                ItemStatus::MissingData,
                "No consent on record.",
                vec![act(
                    Role::IrPhysician,
                    "Obtain and record consent",
                    Some(self.input.planned_start),
                )],
            ),
        }
    }

    // §8 time-out: done in the room, so before the room it cannot be outstanding; the lifecycle
    // refuses to start a procedure without a complete one.
    fn time_out(&self) -> ChecklistItem {
        let item = Item::new(
            "time_out",
            "WHO/IR time-out before the procedure",
            "clinical-rules.md §8",
        );
        match &self.input.time_out {
            Some(t) => item.pass(format!("Time-out completed {}.", self.when(t.completed_at))),
            None => item.pass("Done in the room before the procedure starts; the procedure cannot start without a complete time-out."),
        }
    }
}
