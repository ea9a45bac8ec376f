//! The vetting queue: referrals waiting for an IR physician's decision, each with the three
//! answers (accept with the plan, decline with a reason, ask for more information). A refused
//! form comes back with the error beside its field and the physician's input kept; a decision
//! someone else made first is shown as such.

use super::{api_error_page, render, NavItem, Viewer};
use crate::auth::Audit;
use crate::problem::ApiError;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use seldinger_app::CaseEventRequest;
use seldinger_domain::access::Permission;
use seldinger_domain::catalogue::{AccessRoute, GuidanceModality, Sedation, SheathFrench};
use seldinger_domain::lifecycle::CaseEvent;
use seldinger_domain::referral::URGENCIES;
use seldinger_domain::{ProcedureId, Urgency};
use serde::Deserialize;
use std::collections::HashMap;

/// What the physician typed, kept when a form is refused.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct DecisionForm {
    pub csrf_token: String,
    pub expected_version: u64,
    /// accept, decline or request_information
    pub decision: String,
    #[serde(default)]
    pub procedure_id: String,
    #[serde(default)]
    pub modality: String,
    #[serde(default)]
    pub sedation: String,
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub iodinated_contrast: Option<String>,
    /// The planned access route (blank: not decided yet).
    #[serde(default)]
    pub access_route: String,
    /// The planned sheath size in French (blank: not decided yet).
    #[serde(default)]
    pub sheath_french: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub question: String,
}

/// A refused decision, shown again on its card: the case, what was entered, each field's error,
/// and a message about the whole form.
pub struct Refused {
    case_id: String,
    form: DecisionForm,
    errors: HashMap<String, String>,
    notice: Option<String>,
}

pub struct Choice {
    pub value: String,
    pub label: String,
}

pub struct ReferralCard {
    pub case_id: String,
    pub version: u64,
    pub patient_name: String,
    pub mrn: String,
    pub age: u32,
    pub urgency: &'static str,
    pub indication: String,
    pub question: String,
    pub requester: String,
    pub service: String,
    pub received: String,
    pub requested: String,
    /// The form's values: the physician's last input, else the referral's defaults.
    pub form: DecisionForm,
    /// field → message, for a refused form.
    pub errors: HashMap<String, String>,
    /// A message about the whole form (stale, not allowed).
    pub notice: Option<String>,
}

impl ReferralCard {
    pub fn error(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }

    pub fn has_error(&self, field: &str) -> bool {
        self.errors.contains_key(field)
    }

    pub fn contrast_checked(&self) -> bool {
        self.form.iodinated_contrast.is_some()
    }
}

#[derive(Template)]
#[template(path = "vetting.html")]
struct VettingPage<'a> {
    /// Referrals waiting beyond the 200 shown (newest first): said, never dropped.
    more: u64,
    notice: Option<String>,
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    referrals: Vec<ReferralCard>,
    procedures: Vec<Choice>,
    modalities: Vec<Choice>,
    sedations: Vec<Choice>,
    priorities: Vec<Choice>,
    access_routes: Vec<Choice>,
}

/// The access route and sheath of a form (blank: not decided yet), each error under its field.
pub(crate) fn parse_access(
    route: &str,
    sheath: &str,
) -> Result<(Option<AccessRoute>, Option<SheathFrench>), (String, String)> {
    let access_route = match route.trim() {
        "" => None,
        r => Some(AccessRoute::parse(r).map_err(|e| ("access_route".to_string(), e))?),
    };
    let sheath_french = match sheath.trim() {
        "" => None,
        f => Some(
            f.parse::<f64>()
                .map_err(|_| format!("'{f}' is not a number of French"))
                .and_then(SheathFrench::parse)
                .map_err(|e| ("sheath_french".to_string(), e))?,
        ),
    };
    Ok((access_route, sheath_french))
}

fn urgency_name(u: Urgency) -> &'static str {
    URGENCIES
        .iter()
        .find(|(_, v)| *v == u)
        .map(|(n, _)| *n)
        .unwrap_or("routine")
}

fn choices<T: Copy>(list: &'static [(&'static str, T)]) -> Vec<Choice> {
    list.iter()
        .map(|(value, _)| Choice {
            value: value.to_string(),
            label: value.replace('_', " "),
        })
        .collect()
}

/// The queue, with `refused` (case id, input, errors, notice) shown on its card.
async fn queue(
    state: &AppState,
    viewer: &Viewer,
    refused: Option<Refused>,
) -> Result<(Vec<ReferralCard>, u64), ApiError> {
    let page = state.vetting_queue(&viewer.caller, None, 200).await?;
    let more = page.total.saturating_sub(page.items.len() as u64);
    let referrals = page.items;
    let today = state.today();
    let mut cards = Vec::new();
    let patient_ids: Vec<_> = referrals.iter().map(|r| r.patient_id).collect();
    let patients: std::collections::HashMap<_, _> = state
        .store
        .patients_by_id(&patient_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let case_ids: Vec<_> = referrals.iter().map(|r| r.case_id).collect();
    let mut cases: std::collections::HashMap<_, _> = state
        .store
        .cases_by_id(&case_ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    for referral in &referrals {
        let Some(case) = cases.remove(&referral.case_id) else {
            continue;
        };
        let patient = patients.get(&referral.patient_id);
        let (patient_name, mrn) = crate::routes::patient_label(patient);
        let d = &referral.details;
        let defaults = DecisionForm {
            procedure_id: d
                .requested_procedure
                .as_ref()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            modality: d
                .requested_procedure
                .as_ref()
                .and_then(|p| state.catalogue.get(p))
                .and_then(|p| p.modalities.first())
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            sedation: d
                .requested_procedure
                .as_ref()
                .and_then(|p| state.catalogue.get(p))
                .map(|p| p.sedation.as_str().to_string())
                .unwrap_or_default(),
            priority: urgency_name(d.urgency).to_string(),
            ..DecisionForm::default()
        };
        let case_id = case.id.to_string();
        let (form, errors, notice) = match &refused {
            Some(r) if r.case_id == case_id => (r.form.clone(), r.errors.clone(), r.notice.clone()),
            _ => (defaults, HashMap::new(), None),
        };
        cards.push(ReferralCard {
            case_id,
            version: case.version,
            patient_name,
            mrn,
            age: patient
                .as_ref()
                .map(|p| p.details.age_on(today))
                .unwrap_or_default(),
            urgency: urgency_name(d.urgency),
            indication: d.indication.clone(),
            question: d.clinical_question.clone(),
            requester: d.requesting_clinician.clone(),
            service: d.requesting_service.as_str().replace('_', " "),
            received: state.time.format(referral.received_at, "%Y-%m-%d %H:%M"),
            requested: d
                .requested_procedure
                .as_ref()
                .and_then(|p| state.catalogue.get(p))
                .map(|p| p.name.clone())
                .or_else(|| d.requested_procedure_text.clone())
                .unwrap_or_default(),
            form,
            errors,
            notice,
        });
    }
    // Emergent first, then by arrival.
    cards.sort_by_key(|c| {
        (
            c.urgency != "emergent",
            c.urgency != "urgent",
            c.received.clone(),
        )
    });
    state
        .audit_all(
            &viewer.caller,
            referrals
                .iter()
                .map(|r| Audit::of("list", "referral", r.id, r.patient_id))
                .collect(),
        )
        .await?;
    Ok((cards, more))
}

async fn show(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    refused: Option<Refused>,
) -> Response {
    let refused_id = refused.as_ref().map(|r| r.case_id.clone());
    let (referrals, more) = match queue(state, viewer, refused).await {
        Ok(r) => r,
        Err(e) => return api_error_page(e),
    };
    let procedures = state
        .catalogue
        .procedures
        .iter()
        .map(|p| Choice {
            value: p.id.as_str().to_string(),
            label: p.name.clone(),
        })
        .collect();
    // A decision on a referral no longer in the queue: someone else decided it first.
    let gone = refused_id.filter(|id| !referrals.iter().any(|r| &r.case_id == id));
    let notice = gone.map(|_| {
        "That referral was decided by someone else while you were looking; it has left the queue.".to_string()
    });
    let page = VettingPage {
        more,
        notice,
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        referrals,
        procedures,
        modalities: choices(GuidanceModality::CHOICES),
        sedations: choices(Sedation::CHOICES),
        priorities: choices(URGENCIES),
        access_routes: choices(AccessRoute::CHOICES),
    };
    let mut response = render(&page);
    *response.status_mut() = status;
    response
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::VetCases,
        "/vetting",
    )
    .await
    {
        Ok(viewer) => show(&state, &viewer, StatusCode::OK, None).await,
        Err(page) => page,
    }
}

fn event_from(form: &DecisionForm) -> Result<(CaseEvent, Option<String>), (String, String)> {
    let text = |field: &str, value: &str| {
        let value = value.trim();
        if value.is_empty() {
            Err((field.to_string(), "required".to_string()))
        } else {
            Ok(value.to_string())
        }
    };
    match form.decision.as_str() {
        "accept" => {
            let procedure_id = ProcedureId::parse(&text("procedure_id", &form.procedure_id)?)
                .map_err(|e| ("procedure_id".to_string(), e))?;
            let modality = GuidanceModality::parse(&text("modality", &form.modality)?)
                .map_err(|e| ("modality".to_string(), e))?;
            let sedation = Sedation::parse(&text("sedation", &form.sedation)?)
                .map_err(|e| ("sedation".to_string(), e))?;
            let priority = URGENCIES
                .iter()
                .find(|(name, _)| *name == form.priority)
                .map(|(_, u)| *u)
                .ok_or_else(|| ("priority".to_string(), "choose a priority".to_string()))?;
            let (access_route, sheath_french) =
                parse_access(&form.access_route, &form.sheath_french)?;
            Ok((
                CaseEvent::Accept {
                    procedure_id,
                    modality,
                    sedation,
                    priority,
                    iodinated_contrast: form.iodinated_contrast.is_some(),
                    access_route,
                    sheath_french,
                },
                None,
            ))
        }
        "decline" => Ok((CaseEvent::Decline, Some(text("reason", &form.reason)?))),
        "request_information" => Ok((
            CaseEvent::RequestInformation {
                question: text("question", &form.question)?,
            },
            None,
        )),
        other => Err((
            "decision".to_string(),
            format!("'{other}' is not accept, decline or request_information"),
        )),
    }
}

pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(case_id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::VetCases,
        "/vetting",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    if !viewer.csrf_ok(&form.csrf_token) {
        return super::expired_form();
    }
    let (event, reason) = match event_from(&form) {
        Ok(parsed) => parsed,
        Err((field, message)) => {
            let errors = HashMap::from([(field, message)]);
            return show(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Refused {
                    case_id,
                    form,
                    errors,
                    notice: None,
                }),
            )
            .await;
        }
    };
    let applied = async {
        let request = CaseEventRequest {
            case_id: crate::routes::cases::case_id(&case_id)?,
            expected_version: form.expected_version,
            event,
            reason: reason.clone(),
        };
        Ok::<_, ApiError>(state.apply_case_event(&viewer.caller, request).await?)
    }
    .await;
    match applied {
        Ok(_) => Redirect::to("/vetting").into_response(),
        Err(error) => {
            let status = error.status();
            let errors: HashMap<String, String> = error
                .field_errors()
                .iter()
                .map(|e| {
                    (
                        e.field.trim_start_matches("event.").to_string(),
                        e.detail.clone(),
                    )
                })
                .collect();
            let notice = if error.current_version().is_some() {
                Some("Someone else changed this referral while you were deciding; it is shown as it is now, with what you entered kept. Check it and decide again.".to_string())
            } else if errors.is_empty() {
                Some(error.detail().to_string())
            } else {
                None
            };
            show(
                &state,
                &viewer,
                status,
                Some(Refused {
                    case_id,
                    form,
                    errors,
                    notice,
                }),
            )
            .await
        }
    }
}
