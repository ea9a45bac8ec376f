//! Dose statistics for the physicist: distributions per group, the department's own median and
//! 75th percentile, and diagnostic reference levels (DRLs).
//!
//! clinical-rules.md §5: DRLs are configured per procedure by the department's physicist (D); no
//! national values are shipped until verified, and the local 75th percentile is computed from the
//! department's own data. So the shipped DRL table is empty, and every configured row names its
//! source.

use crate::catalogue::ProcedureId;
use crate::dose::DoseTotals;
use serde::{Deserialize, Serialize};

/// A measure as physicists compare it, in the unit they use for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StatMeasure {
    /// Kerma-area product, Gy·cm².
    KermaAreaProduct,
    /// Reference-point air kerma, Gy.
    ReferenceAirKerma,
    /// Fluoroscopy time, min.
    FluoroscopyTime,
    /// CT dose-length product, mGy·cm.
    CtDoseLengthProduct,
}

impl StatMeasure {
    pub const ALL: [StatMeasure; 4] = [
        StatMeasure::KermaAreaProduct,
        StatMeasure::ReferenceAirKerma,
        StatMeasure::FluoroscopyTime,
        StatMeasure::CtDoseLengthProduct,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatMeasure::KermaAreaProduct => "kerma_area_product",
            StatMeasure::ReferenceAirKerma => "reference_air_kerma",
            StatMeasure::FluoroscopyTime => "fluoroscopy_time",
            StatMeasure::CtDoseLengthProduct => "ct_dose_length_product",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            StatMeasure::KermaAreaProduct => "Gy.cm2",
            StatMeasure::ReferenceAirKerma => "Gy",
            StatMeasure::FluoroscopyTime => "min",
            StatMeasure::CtDoseLengthProduct => "mGy.cm",
        }
    }

    /// The measure from SI totals, converted to this measure's unit (§5: 1 Gy·m² = 10 000
    /// Gy·cm²).
    pub fn of(self, totals: &DoseTotals) -> Option<f64> {
        match self {
            StatMeasure::KermaAreaProduct => totals
                .kerma_area_product
                .map(|k| k.gray_square_centimetres()),
            StatMeasure::ReferenceAirKerma => totals.reference_air_kerma.map(|g| g.0),
            StatMeasure::FluoroscopyTime => totals.fluoroscopy_time.map(|s| s.0 / 60.0),
            StatMeasure::CtDoseLengthProduct => totals
                .ct_dose_length_product
                .map(|d| d.milligray_centimetres()),
        }
    }
}

/// The spread of one measure over a group of cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Distribution {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p75: f64,
    pub max: f64,
}

/// Percentile by linear interpolation between closest ranks (the method of NumPy's default and
/// of spreadsheet PERCENTILE.INC), on sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

/// The distribution of `values`; `None` when there are none. Values that are not finite are
/// ignored.
pub fn distribution(values: &[f64]) -> Option<Distribution> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    Some(Distribution {
        n: sorted.len(),
        min: sorted[0],
        median: percentile(&sorted, 0.5),
        p75: percentile(&sorted, 0.75),
        max: sorted[sorted.len() - 1],
    })
}

/// One configured diagnostic reference level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReferenceLevel {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub procedure: ProcedureId,
    pub measure: StatMeasure,
    /// In the measure's unit (see [`StatMeasure::unit`]).
    pub value: f64,
    /// Where the value comes from (a national survey, the department's physicist's decision).
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReferenceLevels {
    pub levels: Vec<ReferenceLevel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceLevelsFile {
    #[serde(default)]
    level: Vec<ReferenceLevel>,
}

impl ReferenceLevels {
    /// Reads a DRL table (TOML, `[[level]]` rows). `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, String> {
        let parsed: ReferenceLevelsFile =
            toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        let mut seen = std::collections::HashSet::new();
        for (i, level) in parsed.level.iter().enumerate() {
            let row = i + 1;
            if !(level.value.is_finite() && level.value > 0.0) {
                return Err(format!(
                    "{file}: level {row}: value must be a positive number"
                ));
            }
            if level.source.trim().is_empty() {
                return Err(format!("{file}: level {row}: name the source of the value"));
            }
            if !seen.insert((level.procedure.clone(), level.measure)) {
                return Err(format!(
                    "{file}: level {row}: {} {} is given twice",
                    level.procedure.as_str(),
                    level.measure.as_str()
                ));
            }
        }
        Ok(ReferenceLevels {
            levels: parsed.level,
        })
    }

    pub fn get(&self, procedure: &ProcedureId, measure: StatMeasure) -> Option<&ReferenceLevel> {
        self.levels
            .iter()
            .find(|l| &l.procedure == procedure && l.measure == measure)
    }
}

/// How one case's measure compares with the reference level and the department's practice.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comparison {
    pub measure: StatMeasure,
    pub unit: &'static str,
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_level: Option<ReferenceLevel>,
    /// Above the configured reference level (absent when none is configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above_reference_level: Option<bool>,
    /// The department's distribution for the same procedure (this case included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<Distribution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above_local_p75: Option<bool>,
}

/// Compares a case's totals with the configured levels for its procedure and with `peers`, the
/// totals of the department's cases of the same procedure.
pub fn compare(
    procedure: Option<&ProcedureId>,
    totals: &DoseTotals,
    peers: &[DoseTotals],
    levels: &ReferenceLevels,
) -> Vec<Comparison> {
    StatMeasure::ALL
        .into_iter()
        .filter_map(|measure| {
            let value = measure.of(totals)?;
            let reference_level = procedure.and_then(|p| levels.get(p, measure)).cloned();
            let local = distribution(
                &peers
                    .iter()
                    .filter_map(|t| measure.of(t))
                    .collect::<Vec<_>>(),
            );
            Some(Comparison {
                measure,
                unit: measure.unit(),
                value,
                above_reference_level: reference_level.as_ref().map(|l| value > l.value),
                reference_level,
                above_local_p75: local.as_ref().map(|d| value > d.p75),
                local,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dose::{Gray, GrayMetreSquared};

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let d = distribution(&[4.0, 1.0, 3.0, 2.0]).expect("values");
        assert_eq!((d.n, d.min, d.max), (4, 1.0, 4.0));
        assert!((d.median - 2.5).abs() < 1e-12);
        assert!((d.p75 - 3.25).abs() < 1e-12);
        assert_eq!(distribution(&[]), None);
        assert_eq!(distribution(&[f64::NAN]), None);
        let one = distribution(&[7.0]).expect("one");
        assert_eq!((one.median, one.p75), (7.0, 7.0));
    }

    #[test]
    fn the_shipped_table_is_empty_and_rows_need_a_source() {
        let shipped = ReferenceLevels::parse(
            include_str!("../../../catalog/dose-reference-levels.toml"),
            "dose-reference-levels.toml",
        )
        .expect("shipped table");
        assert!(shipped.levels.is_empty(), "§5: no national values shipped");
        let row = |source: &str| {
            format!("[[level]]\nprocedure = \"tace\"\nmeasure = \"kerma_area_product\"\nvalue = 250.0\nsource = \"{source}\"\n")
        };
        assert!(ReferenceLevels::parse(&row("dept physicist 2026"), "t").is_ok());
        let error = ReferenceLevels::parse(&row(" "), "t").expect_err("no source");
        assert!(error.contains("level 1: name the source"), "{error}");
        let twice = format!("{}{}", row("a"), row("b"));
        assert!(ReferenceLevels::parse(&twice, "t")
            .expect_err("twice")
            .contains("given twice"));
    }

    #[test]
    fn a_case_is_compared_with_its_level_and_the_local_p75() {
        let levels = ReferenceLevels::parse(
            "[[level]]\nprocedure = \"tace\"\nmeasure = \"kerma_area_product\"\nvalue = 250.0\nsource = \"test\"\n",
            "t",
        )
        .expect("levels");
        let totals = |kap_gycm2: f64| DoseTotals {
            kerma_area_product: Some(GrayMetreSquared::from_gray_square_centimetres(kap_gycm2)),
            reference_air_kerma: Some(Gray(1.0)),
            ..DoseTotals::default()
        };
        let peers: Vec<_> = [100.0, 200.0, 300.0].map(totals).to_vec();
        let tace = ProcedureId::parse("tace").expect("id");
        let result = compare(Some(&tace), &totals(300.0), &peers, &levels);
        let kap = &result[0];
        assert_eq!(kap.measure, StatMeasure::KermaAreaProduct);
        assert_eq!(kap.above_reference_level, Some(true));
        assert_eq!(kap.above_local_p75, Some(true));
        let kar = &result[1];
        assert_eq!(kar.reference_level, None);
        assert_eq!(kar.above_reference_level, None);
        assert_eq!(kar.above_local_p75, Some(false));
        assert_eq!(result.len(), 2, "measures the case lacks are left out");
    }
}
