//! `seldinger export registry`: the de-identified registry export of a period from the command
//! line, through the same use case as the quality page (the quality lead's role: de-identified
//! only), audited as an export by the command line.

use crate::config::{Settings, StorageArgs};
use anyhow::Context;
use chrono::{Days, NaiveDate};
use clap::{Subcommand, ValueEnum};
use seldinger_app::{App, Principal};
use seldinger_domain::access::Role;
use seldinger_domain::registry::{DateMode, TABLES};
use seldinger_domain::DepartmentTime;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// One CSV file per table (procedures, devices, adverse_events) and the data dictionary.
    Csv,
    /// One FHIR R4 Bundle (collection), JSON.
    Fhir,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Dates {
    /// The department's calendar dates.
    Exact,
    /// Each patient's dates moved back by the same whole number of weeks (1-52).
    Shifted,
}

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Procedures, devices, dose summaries and outcomes of the cases whose procedure began in
    /// the period: no name, MRN, address, birth date or free text; a keyed pseudonym per patient.
    Registry {
        /// The first day (YYYY-MM-DD, the department's calendar).
        #[arg(long)]
        from: NaiveDate,
        /// The last day, included.
        #[arg(long)]
        until: NaiveDate,
        #[arg(long, value_enum)]
        format: Format,
        #[arg(long, value_enum, default_value = "shifted")]
        dates: Dates,
        /// CSV: the directory to write the tables into (made if missing; default
        /// registry-export-FROM-UNTIL). FHIR: the file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The department's time zone: its days, and the dates exported.
        #[arg(long, env = "SELDINGER_TIME_ZONE", default_value = "UTC", value_parser = DepartmentTime::parse)]
        time_zone: DepartmentTime,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

pub async fn run(command: ExportCommand) -> anyhow::Result<()> {
    let ExportCommand::Registry {
        from,
        until,
        format,
        dates,
        out,
        time_zone,
        storage,
    } = command;
    if from > until {
        anyhow::bail!("--from {from} is after --until {until}: the period has no days");
    }
    let settings = Settings::from_storage_args(&storage)?;
    let store = settings.open_store(false).await?;
    let mut app = App::new(
        store,
        settings.catalogue,
        settings.safety,
        crate::clock::shared(),
    );
    app.time = time_zone;
    let who = Principal {
        username: "system".into(),
        role: Role::QualityLead,
        client_addr: "command line".into(),
        break_glass_reason: None,
        via_message: None,
        via_claim: None,
    };
    let export = app
        .registry_export(
            &who,
            app.time.start_of(from),
            app.time.start_of(until + Days::new(1)),
            match dates {
                Dates::Exact => DateMode::Exact,
                Dates::Shifted => DateMode::Shifted,
            },
        )
        .await?;
    match format {
        Format::Csv => {
            let dir = out.unwrap_or_else(|| format!("registry-export-{from}-{until}").into());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot make {}", dir.display()))?;
            for table in TABLES {
                let path = dir.join(format!("{table}.csv"));
                let text = export.csv(table).unwrap_or_default();
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            eprintln!(
                "{} procedures, {} devices, {} adverse events written to {}",
                export.procedures.len(),
                export.devices.len(),
                export.adverse_events.len(),
                dir.display()
            );
        }
        Format::Fhir => {
            let text =
                serde_json::to_string_pretty(&seldinger_domain::registry_bundle::bundle(&export))?;
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => println!("{text}"),
            }
        }
    }
    Ok(())
}
