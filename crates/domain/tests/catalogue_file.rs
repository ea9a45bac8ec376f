//! The shipped catalogue: it loads, and it covers what the department must be able to book.

use seldinger_domain::catalogue::{BleedingRisk, ProcedureCatalogue};

fn shipped() -> ProcedureCatalogue {
    ProcedureCatalogue::parse(
        include_str!("../../../catalog/procedures.toml"),
        "catalog/procedures.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Every procedure the foundation issue lists, by the catalogue id that serves it.
const REQUIRED: &[&str] = &[
    "diagnostic-angiography",
    "peripheral-angioplasty",
    "arterial-stent",
    "venous-angioplasty-stent",
    "haemorrhage-embolization",
    "uterine-fibroid-embolization",
    "aneurysm-embolization",
    "varicocele-embolization",
    "portal-vein-embolization",
    "thrombectomy",
    "catheter-directed-thrombolysis",
    "ivc-filter-placement",
    "ivc-filter-retrieval",
    "tips",
    "tace",
    "tare",
    "radiofrequency-ablation",
    "microwave-ablation",
    "cryoablation",
    "biopsy-superficial",
    "biopsy-deep",
    "biopsy-lung",
    "biopsy-liver",
    "biopsy-kidney",
    "biopsy-bone",
    "abscess-drainage-deep",
    "paracentesis",
    "thoracentesis",
    "chest-tube",
    "nephrostomy",
    "nephrostomy-exchange",
    "biliary-drainage",
    "biliary-drain-exchange",
    "gastrostomy",
    "gastrostomy-exchange",
    "nasojejunal-tube",
    "picc",
    "central-line-non-tunnelled",
    "dialysis-catheter-tunnelled",
    "port-placement",
    "port-removal",
    "dialysis-access-intervention",
    "joint-aspiration-injection",
    "vertebroplasty-kyphoplasty",
    "celiac-plexus-neurolysis",
    "venous-malformation-sclerotherapy",
    "lymphatic-malformation-sclerotherapy",
    "vascular-malformation-photoevaporation",
    "varicose-vein-ablation",
];

#[test]
fn covers_every_required_procedure() {
    let catalogue = shipped();
    let missing: Vec<&&str> = REQUIRED
        .iter()
        .filter(|id| catalogue.find(id).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "missing from catalog/procedures.toml: {missing:?}"
    );
}

#[test]
fn every_row_cites_its_bleeding_risk_source() {
    for p in shipped().procedures {
        assert!(
            p.bleeding_risk_source.starts_with("clinical-rules.md §1.1"),
            "{}: {}",
            p.id,
            p.bleeding_risk_source
        );
        // Rows the guideline does not name are marked as mappings so the checklist can say so.
        let named = p.bleeding_risk_source.ends_with(". V");
        assert!(
            named || p.bleeding_risk_source.contains("mapping (U)"),
            "{}: mark V or mapping (U)",
            p.id
        );
    }
}

#[test]
fn classes_named_in_the_guideline_are_as_published() {
    // A few anchors from clinical-rules.md §1.1, so an edit that flips a class is caught.
    let c = shipped();
    let class = |id: &str| {
        c.find(id)
            .map(|p| p.bleeding_risk)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(class("paracentesis"), BleedingRisk::Low);
    assert_eq!(class("picc"), BleedingRisk::Low);
    assert_eq!(class("ivc-filter-placement"), BleedingRisk::Low);
    assert_eq!(class("tips"), BleedingRisk::High);
    assert_eq!(class("biopsy-liver"), BleedingRisk::High);
    assert_eq!(class("biopsy-liver-transjugular"), BleedingRisk::Low);
    assert_eq!(class("nephrostomy"), BleedingRisk::High);
    assert_eq!(class("nephrostomy-exchange"), BleedingRisk::Low);
    assert_eq!(class("gastrostomy"), BleedingRisk::High);
    assert_eq!(class("vertebroplasty-kyphoplasty"), BleedingRisk::High);
}
