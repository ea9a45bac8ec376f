//! What the engine says about a case: one item per rule.

use crate::access::Role;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Worst first: a checklist is as ready as its worst item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Block,
    MissingData,
    ActionNeeded,
    Pass,
}

/// Something a person must do, by when.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Action {
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
    /// Whose task it is.
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChecklistItem {
    /// Stable rule id, e.g. `coagulation.inr`, `hold.apixaban`.
    pub rule: String,
    pub title: String,
    pub status: ItemStatus,
    /// Why, in plain words.
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// Where the rule comes from, e.g. `clinical-rules.md §1.2`.
    pub citation: String,
    /// True when a value used is marked U in the reference: the item says so.
    pub unverified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Checklist {
    /// The worst item's status.
    pub overall: ItemStatus,
    pub items: Vec<ChecklistItem>,
    /// Version of the safety reference the items were judged against.
    pub reference_version: String,
}

impl Checklist {
    pub fn new(items: Vec<ChecklistItem>, reference_version: String) -> Self {
        let overall = items
            .iter()
            .map(|i| i.status)
            .min()
            .unwrap_or(ItemStatus::Pass);
        Checklist {
            overall,
            items,
            reference_version,
        }
    }

    pub fn item(&self, rule: &str) -> Option<&ChecklistItem> {
        self.items.iter().find(|i| i.rule == rule)
    }

    pub fn blocks(&self) -> impl Iterator<Item = &ChecklistItem> {
        self.items.iter().filter(|i| i.status == ItemStatus::Block)
    }

    /// The items that stop the time-out and the start of the procedure: every "block" and every
    /// "missing data" — the sign-in requires each item reviewed (clinical-rules.md §8, start
    /// gate, D). An IR physician may override either with a reason.
    pub fn stops_start(&self) -> impl Iterator<Item = &ChecklistItem> {
        self.items
            .iter()
            .filter(|i| matches!(i.status, ItemStatus::Block | ItemStatus::MissingData))
    }
}

/// The wording every item built on an unverified value carries.
pub const UNVERIFIED_NOTE: &str = " (reference value not yet verified)";
