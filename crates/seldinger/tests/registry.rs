//! The registry export of the demo department, as a registry would receive it: from the command
//! line (CSV tables and a FHIR Bundle) and from the quality page's API, with exact and shifted
//! dates. Every export is scanned for every demo patient's name, MRN, birth date and internal ids
//! and holds none; the same patient links across exports by pseudonym; the Bundle is held to HL7's
//! R4 JSON Schema and an independent FHIR library.

mod common;

use common::{cli, signed_in, Server};
use serde_json::Value;
use std::io::Write;

/// What would identify a demo patient: names, MRN, birth date in the forms registries write it,
/// and the ids of the patient and their cases.
fn markers(patients: &[Value], cases: &[Value]) -> Vec<String> {
    let mut markers = Vec::new();
    for p in patients {
        let family = p["name"]["family"].as_str().expect("family");
        let given = p["name"]["given"].as_str().expect("given");
        let born = p["birth_date"].as_str().expect("birth date");
        markers.extend([
            family.to_string(),
            format!("{family}, {given}"),
            format!("{given} {family}"),
            p["mrn"].as_str().expect("mrn").to_string(),
            born.to_string(),
            born.replace('-', ""),
            p["id"].as_str().expect("id").to_string(),
        ]);
    }
    for c in cases {
        markers.push(c["id"].as_str().expect("case id").to_string());
        markers.push(c["referral_id"].as_str().expect("referral id").to_string());
    }
    markers.sort();
    markers.dedup();
    markers
}

#[tokio::test]
async fn every_registry_export_of_the_demo_is_free_of_every_patients_identity() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(&["demo"], dir.path());
    let today = common::test_today();
    let from = today - chrono::Days::new(400);
    let physician = signed_in(&server.base, "dr.okafor").await;
    let patients: Vec<Value> = physician
        .get(format!("{}/patients?limit=500", server.base))
        .send()
        .await
        .expect("patients")
        .json()
        .await
        .expect("json");
    let cases: Vec<Value> = physician
        .get(format!("{}/cases?limit=1000", server.base))
        .send()
        .await
        .expect("cases")
        .json()
        .await
        .expect("json");
    assert!(
        patients.len() > 100,
        "the demo's patients: {}",
        patients.len()
    );
    let markers = markers(&patients, &cases);

    // From the quality page's API, as the quality lead.
    let lead = signed_in(&server.base, "qa.singh").await;
    let mut exports: Vec<(String, String)> = Vec::new();
    for dates in ["exact", "shifted"] {
        for form in [
            "format=json",
            "format=fhir",
            "format=csv&table=procedures",
            "format=csv&table=devices",
            "format=csv&table=adverse_events",
            "format=csv&table=dictionary",
        ] {
            let url = format!(
                "{}/quality/registry-export?from={from}&until={today}&dates={dates}&{form}",
                server.base
            );
            let answer = lead.get(&url).send().await.expect("export");
            assert_eq!(answer.status(), 200, "{url}");
            exports.push((url, answer.text().await.expect("text")));
        }
    }
    assert!(server.terminate().success());

    // From the command line, on the same database.
    let data = dir.path();
    let args = |format: &str, dates: &str, out: &str| -> Vec<String> {
        [
            "export",
            "registry",
            "--from",
            &from.to_string(),
            "--until",
            &today.to_string(),
            "--format",
            format,
            "--dates",
            dates,
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    for dates in ["exact", "shifted"] {
        let csv_dir = data.join(format!("csv-{dates}"));
        let csv_args = args("csv", dates, csv_dir.to_str().expect("path"));
        cli(
            &csv_args.iter().map(String::as_str).collect::<Vec<_>>(),
            data,
            None,
            &[],
        );
        for table in ["procedures", "devices", "adverse_events", "dictionary"] {
            let path = csv_dir.join(format!("{table}.csv"));
            exports.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).expect("the table is written"),
            ));
        }
        let bundle = data.join(format!("bundle-{dates}.json"));
        let fhir_args = args("fhir", dates, bundle.to_str().expect("path"));
        cli(
            &fhir_args.iter().map(String::as_str).collect::<Vec<_>>(),
            data,
            None,
            &[],
        );
        exports.push((
            bundle.display().to_string(),
            std::fs::read_to_string(&bundle).expect("the bundle is written"),
        ));
    }

    // Nothing of any patient in any of them.
    for (source, body) in &exports {
        assert!(body.len() > 100, "{source} is not empty: {body}");
        for marker in &markers {
            assert!(
                !body.contains(marker.as_str()),
                "{source} shows {marker}, a demo patient's identity"
            );
        }
    }

    // The same export from the page and the command line; the same patient under one pseudonym
    // whichever dates were chosen, with a year's procedures.
    let api_exact = &exports[2].1;
    let cli_exact = &exports[12].1;
    assert_eq!(
        api_exact, cli_exact,
        "page and command line give the same table"
    );
    let rows: Vec<&str> = api_exact.lines().skip(1).collect();
    assert!(
        rows.len() > 80,
        "a year of the demo's procedures: {}",
        rows.len()
    );
    let pseudonyms = |csv: &str| -> Vec<String> {
        let mut p: Vec<String> = csv
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').nth(1).map(str::to_string))
            .collect();
        p.sort();
        p
    };
    assert_eq!(pseudonyms(api_exact), pseudonyms(&exports[8].1));
    let adverse = &exports[4].1;
    assert!(adverse.contains(",dislodgement,moderate,2,"), "{adverse}");
    assert!(adverse.contains(",infection,mild,1,"), "{adverse}");

    // The Bundle, to HL7's R4 JSON Schema and an independent library, whole and entry by entry.
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    let mut count = 0;
    for (source, body) in exports
        .iter()
        .filter(|(s, _)| s.contains("fhir") || s.ends_with(".json"))
    {
        let bundle: Value = serde_json::from_str(body).expect("json");
        if bundle["resourceType"] != "Bundle" {
            continue;
        }
        writeln!(file, "{bundle}").expect("write");
        count += 1;
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            writeln!(file, "{}", entry["resource"]).expect("write");
            count += 1;
        }
        assert!(count > 200, "{source}: {count} resources");
    }
    file.flush().expect("flush");
    common::held_to_fhir_peers(file.path(), count, "the registry Bundle");
}
