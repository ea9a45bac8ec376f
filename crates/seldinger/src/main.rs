//! `seldinger`: run the IR department service, the demo department, or the migrations.

mod accounts;
mod clock;
mod config;
mod demo;
mod export;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::Settings;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "seldinger",
    version,
    about = "Seldinger: an interventional radiology service, end to end"
)]
struct Cli {
    /// Start the clock at this instant (RFC 3339, e.g. 2026-12-05T23:50:00Z) and run it from
    /// there: for demos and tests that must not depend on the day they run. Never in production.
    #[arg(long, global = true, env = "SELDINGER_CLOCK", value_parser = clock::parse)]
    clock: Option<chrono::DateTime<chrono::Utc>>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web UI and APIs.
    Serve(config::ServeArgs),
    /// Serve a synthetic demo department (rooms, today's list, referrals awaiting vetting).
    Demo {
        #[command(flatten)]
        serve: config::ServeArgs,
        /// The same seed and day give the same department.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Years of a large department's past work, up to yesterday, beside the demo's own
        /// (about 15,000 cases a year; see `generate`).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=30))]
        years: u32,
    },
    /// Build a large department into an empty database, to serve or to measure: the demo's
    /// department and `--years` of past work (about 15,000 cases a year), deterministically.
    Generate {
        #[command(flatten)]
        storage: config::StorageArgs,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=30))]
        years: u32,
        /// Days of history instead of years (for tests: a short history, the same path).
        #[arg(long, hide = true, value_parser = clap::value_parser!(u32).range(1..=11000))]
        history_days: Option<u32>,
        /// The history ends this many days before today (for tests: a short history old
        /// enough to be settled).
        #[arg(long, hide = true, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=11000))]
        history_ends_days_ago: u32,
    },
    /// Apply database migrations and exit.
    Migrate(config::StorageArgs),
    /// Copy the embedded SQLite database, while Seldinger serves, into a new checked file
    /// (PostgreSQL: pg_basebackup and WAL archiving, see docs/deploy.md).
    Backup {
        #[command(flatten)]
        storage: config::StorageArgs,
        /// The file to write; never overwritten.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Manage users: add, list, disable, enable, reset-password.
    User {
        #[command(flatten)]
        storage: config::StorageArgs,
        #[command(subcommand)]
        command: accounts::UserCommand,
    },
    /// Radiation dose reports (RDSR).
    Dose {
        #[command(subcommand)]
        command: DoseCommand,
    },
    /// HL7 v2 messages.
    Hl7 {
        #[command(subcommand)]
        command: Hl7Command,
    },
    /// De-identified exports for registries and audit.
    Export {
        #[command(subcommand)]
        command: export::ExportCommand,
    },
    /// Manage API tokens for scripts and interfaces: create, list, revoke.
    Token {
        #[command(flatten)]
        storage: config::StorageArgs,
        #[command(subcommand)]
        command: accounts::TokenCommand,
    },
}

#[derive(Subcommand)]
enum Hl7Command {
    /// Apply the messages in these files (one message after another, or HL7 batch files with
    /// FHS/BHS…BTS/FTS) as if they had arrived over MLLP: each kept, applied or dead-lettered,
    /// with a summary at the end.
    Import {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// The department's interface file (who may send; how codes map).
        #[arg(long, env = "SELDINGER_HL7_CONFIG")]
        hl7_config: Option<std::path::PathBuf>,
        /// The department's time zone, for message times without an offset.
        #[arg(long, env = "SELDINGER_TIME_ZONE", default_value = "UTC", value_parser = seldinger_domain::DepartmentTime::parse)]
        time_zone: seldinger_domain::DepartmentTime,
        #[command(flatten)]
        storage: config::StorageArgs,
    },
}

#[derive(Subcommand)]
enum DoseCommand {
    /// Store every dose report found in these files and folders (recursively). A file that is
    /// not a readable dose report is quarantined with the reason; the rest of the batch goes on.
    Import {
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        #[command(flatten)]
        storage: config::StorageArgs,
    },
    /// Show what is extracted from one RDSR file, without storing it.
    Inspect {
        file: std::path::PathBuf,
        /// Print JSON (report, totals, §5 assessment) instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    config::init_logging();
    let cli = Cli::parse();
    clock::start(cli.clock);
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::from_args(&args)?;
            let store = settings.open_store(false).await?;
            accounts::ensure_first_administrator(&store).await?;
            run(settings, store).await
        }
        Command::Demo { serve, seed, years } => {
            let settings = Settings::for_demo(&serve.with_default_data_dir("data/demo"))?;
            let store = settings.open_store(true).await?;
            let today = clock::now().date_naive();
            let history = demo::HistorySpan::up_to_yesterday(years * 365);
            let summary = generate(&store, &settings, seed, today, history).await?;
            tracing::info!(seed, %today, patients = summary.patients, cases = summary.cases, dose_reports = summary.dose_reports, "demo department ready");
            println!(
                "Demo users (password '{}'): {}",
                accounts::DEMO_PASSWORD,
                accounts::DEMO_USERS
                    .iter()
                    .map(|(u, _, r)| format!("{u} ({r})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            run(settings, store).await
        }
        Command::Generate {
            storage,
            seed,
            years,
            history_days,
            history_ends_days_ago,
        } => {
            let settings = Settings::from_storage_args(&storage)?;
            let store = settings.open_store(false).await?;
            if store.has_patients().await? {
                anyhow::bail!(
                    "the database already holds patients: generate builds only into an empty one"
                );
            }
            let today = clock::now().date_naive();
            let started = std::time::Instant::now();
            let history = demo::HistorySpan {
                days: history_days.unwrap_or(years * 365),
                ends_days_ago: history_ends_days_ago,
            };
            let summary = generate(&store, &settings, seed, today, history).await?;
            println!(
                "generated {} cases of {} patients ({} dose reports) in {:.0?}; demo users' password '{}'",
                summary.cases,
                summary.patients,
                summary.dose_reports,
                started.elapsed(),
                accounts::DEMO_PASSWORD
            );
            Ok(())
        }
        Command::Migrate(args) => {
            let settings = Settings::from_storage_args(&args)?;
            settings.open_store(false).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Backup { storage, out } => {
            let store = Settings::from_storage_args(&storage)?
                .open_store(false)
                .await?;
            store.backup_to(&out).await?;
            let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or_default();
            println!(
                "backed up to {} ({bytes} bytes, integrity checked)",
                out.display()
            );
            Ok(())
        }
        Command::User { storage, command } => {
            let store = Settings::from_storage_args(&storage)?
                .open_store(false)
                .await?;
            accounts::user(&store, command).await
        }
        Command::Dose {
            command: DoseCommand::Inspect { file, json },
        } => dose_inspect(&file, json),
        Command::Dose {
            command: DoseCommand::Import { paths, storage },
        } => {
            let store = Settings::from_storage_args(&storage)?
                .open_store(false)
                .await?;
            dose_import(&store, &paths).await
        }
        Command::Hl7 {
            command:
                Hl7Command::Import {
                    files,
                    hl7_config,
                    time_zone,
                    storage,
                },
        } => {
            let settings = Settings::from_storage_args(&storage)?;
            let store = settings.open_store(false).await?;
            let interface = config::Hl7Args {
                hl7_config,
                ..Default::default()
            }
            .interface(false)?;
            let unknown = interface.unknown_procedures(&settings.catalogue);
            if !unknown.is_empty() {
                anyhow::bail!(
                    "the HL7 interface file maps order codes to procedures the catalogue does not hold: {}",
                    unknown.join(", ")
                );
            }
            let mut app = seldinger_app::App::new(
                store,
                settings.catalogue,
                settings.safety,
                clock::shared(),
            );
            app.time = time_zone;
            hl7_import(seldinger_hl7::Interface::new(app, interface), &files).await
        }
        Command::Export { command } => export::run(command).await,
        Command::Token { storage, command } => {
            let settings = Settings::from_storage_args(&storage)?;
            let store = settings.open_store(false).await?;
            let state = seldinger_web::AppState::new(
                store,
                settings.catalogue,
                settings.safety,
                clock::shared(),
                seldinger_web::AuthPolicy::default(),
            );
            accounts::token(&state, command).await
        }
    }
}

/// The demo department of `today`, its `history` (none if no days), and its users.
async fn generate(
    store: &seldinger_store::Store,
    settings: &Settings,
    seed: u64,
    today: chrono::NaiveDate,
    history: demo::HistorySpan,
) -> anyhow::Result<demo::Summary> {
    let mut summary = demo::seed(store, &settings.catalogue, &settings.safety, seed, today)
        .await
        .context("seeding the demo department")?;
    if history.days > 0 {
        let started = std::time::Instant::now();
        let mut shown = |done: usize, total: usize| {
            use std::io::Write;
            let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
            let left = (total.saturating_sub(done)) as f64 / rate.max(0.001);
            let filled = done * 30 / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total} cases, {rate:.0}/s, about {left:.0} s left   ",
                "#".repeat(filled),
                "-".repeat(30 - filled)
            );
            let _ = std::io::stderr().flush();
        };
        let past = demo::history(
            store,
            &settings.catalogue,
            &settings.safety,
            seed,
            today,
            history,
            &mut shown,
        )
        .await
        .context("generating the department's history")?;
        eprintln!();
        summary.cases += past.cases;
        summary.patients += past.patients;
        summary.dose_reports += past.dose_reports;
    }
    accounts::create_demo_users(store).await?;
    Ok(summary)
}

async fn run(settings: Settings, store: seldinger_store::Store) -> anyhow::Result<()> {
    if !settings.listen.ip().is_loopback() && settings.tls.is_none() && !settings.allow_plain_http {
        anyhow::bail!(
            "refusing to serve plain HTTP on {} (not loopback): patient data and passwords would cross the network in clear. \
             Give --tls-cert and --tls-key, or put a TLS-terminating proxy in front and pass --allow-plain-http, or listen on 127.0.0.1",
            settings.listen
        );
    }
    // Before any report is read: the spellings the dose reader accepts.
    seldinger_dicom::units::use_spellings(settings.dose_units.clone())
        .map_err(anyhow::Error::msg)?;
    let listener = std::net::TcpListener::bind(settings.listen).with_context(|| {
        format!(
            "cannot listen on {} (is another server using it? try --listen)",
            settings.listen
        )
    })?;
    let address = listener.local_addr()?;
    let policy = seldinger_web::AuthPolicy {
        secure_cookies: settings.tls.is_some(),
        trusted_proxies: settings.trusted_proxies.clone(),
        ..Default::default()
    };
    let state = seldinger_web::AppState::new(
        store,
        settings.catalogue,
        settings.safety,
        clock::shared(),
        policy,
    )
    .with_dose_levels(settings.dose_levels)
    .with_quality_thresholds(settings.quality_thresholds)
    .with_time_zone(settings.time_zone);
    let state = match settings.discharge_texts {
        Some(texts) => state.with_discharge_texts(texts),
        None => state,
    };
    let mut state = state;
    let hl7 = match settings.hl7 {
        Some(hl7) => {
            state.app.order_namespaces = Arc::new(hl7.interface.order_namespaces());
            let wakes = outbound(&mut state.app, &hl7.interface);
            // This node's name as the HL7 senders' lease holder: the same after a restart
            // (so a node killed while sending takes its destinations back at once), another
            // for each node (host and HTTP address).
            let node = format!("{} {address}", config::host_name());
            let (task, interface) = start_hl7(hl7, state.app.clone(), wakes, node).await?;
            // The inbox page's "replay" goes through the same interface (whose App has no
            // message handler of its own: no cycle).
            state.app.messages = Some(interface);
            Some(task)
        }
        None => None,
    };
    // After the HL7 routes are set: what the listener changes owes the same messages.
    let dicom = match &settings.dicom {
        Some(dicom) => Some(start_dicom(dicom, state.app.clone()).await?),
        None => None,
    };
    // Last, so that its writes owe the same messages as the API's.
    let fhir = seldinger_fhir::router(
        state.app.clone(),
        state.auth_policy.session_idle,
        settings.tls.is_some(),
    );
    let state = state.with_mount(seldinger_fhir::BASE_PATH, fhir);
    match &settings.tls {
        Some((cert, key)) => {
            tracing::info!(%address, "Seldinger is serving: https://{address}/api/v1/health");
            seldinger_web::serve_tls(listener, state, cert, key, config::shutdown_signal())
                .await
                .with_context(|| {
                    format!(
                        "TLS with certificate {} and key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
        }
        None => {
            tracing::info!(%address, "Seldinger is serving: http://{address}/api/v1/health");
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            seldinger_web::serve(listener, state, config::shutdown_signal()).await?;
        }
    }
    for listener in [dicom, hl7].into_iter().flatten() {
        listener.abort();
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Routes the interface file's destinations in the application (each change that owes them a
/// message writes it to the outbox in its own commit) and returns each destination's wake-up.
fn outbound(
    app: &mut seldinger_app::App,
    interface: &seldinger_hl7::InterfaceConfig,
) -> Vec<Arc<tokio::sync::Notify>> {
    let wakes: Vec<Arc<tokio::sync::Notify>> = interface
        .destinations
        .iter()
        .map(|_| Arc::new(tokio::sync::Notify::new()))
        .collect();
    if wakes.is_empty() {
        return wakes;
    }
    let each = wakes.clone();
    app.outbound = Some(seldinger_app::Outbound {
        routes: interface
            .destinations
            .iter()
            .map(|d| seldinger_app::Route {
                destination: d.name.clone(),
                notices: d.notices.clone(),
            })
            .collect(),
        // notify_one keeps the wake-up for a sender busy sending: it looks again after.
        wake: Arc::new(move || each.iter().for_each(|w| w.notify_one())),
    });
    wakes
}

/// Starts the MLLP listener for HL7 v2 messages, and a sender per destination, in the
/// background.
async fn start_hl7(
    hl7: config::Hl7Settings,
    app: seldinger_app::App,
    wakes: Vec<Arc<tokio::sync::Notify>>,
    node: String,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, Arc<seldinger_hl7::Interface>)> {
    let listener = tokio::net::TcpListener::bind(hl7.listen)
        .await
        .with_context(|| {
            format!("cannot listen for HL7 on {} (is another listener using it? try --hl7-listen or --no-hl7)", hl7.listen)
        })?;
    let address = listener.local_addr()?;
    if hl7.interface.senders.is_empty() {
        tracing::warn!(%address, "HL7 listener has no interface file (--hl7-config): every connection is closed as it is accepted until the department lists its systems");
    }
    if !address.ip().is_loopback() && hl7.listener.tls.is_none() {
        tracing::warn!(%address, "HL7 listener on the network without TLS: messages cross it in clear; give --hl7-tls-cert and --hl7-tls-key");
    }
    for sender in hl7
        .interface
        .senders
        .iter()
        .filter(|s| s.addresses.is_empty())
    {
        tracing::warn!(sender = %format!("{}^{}", sender.application, sender.facility), "HL7 sender with no addresses listed: it may connect from any address, and the listener cannot close strangers' connections at accept");
    }
    tracing::info!(%address, senders = hl7.interface.senders.len(), tls = hl7.listener.tls.is_some(), "HL7 v2 MLLP listener");
    let config = Arc::new(hl7.interface.clone());
    let mut senders = tokio::task::JoinSet::new();
    for (destination, wake) in hl7.interface.destinations.iter().zip(wakes) {
        tracing::info!(destination = %destination.name, address = destination.address.as_deref().unwrap_or_default(), style = destination.style.as_str(), tls = destination.tls_ca.is_some(), "HL7 v2 destination");
        let tls = seldinger_hl7::sender::tls_client(destination).map_err(anyhow::Error::msg)?;
        senders.spawn(seldinger_hl7::sender::run(
            app.clone(),
            config.clone(),
            destination.clone(),
            tls,
            wake,
            seldinger_hl7::sender::SenderConfig {
                node: node.clone(),
                ..seldinger_hl7::sender::SenderConfig::default()
            },
        ));
    }
    let interface = Arc::new(seldinger_hl7::Interface::new(app, hl7.interface));
    let serving = interface.clone();
    let task = tokio::spawn(async move {
        // The senders live as long as the listener (aborting this task drops them).
        let _senders = senders;
        if let Err(error) = seldinger_hl7::mllp::serve(listener, hl7.listener, serving).await {
            tracing::error!(%error, "HL7 listener stopped");
        }
    });
    Ok((task, interface))
}

/// `seldinger hl7 import`: every message of every file, through the same path as the listener.
async fn hl7_import(
    interface: seldinger_hl7::Interface,
    files: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    let mut batches = Vec::new();
    for file in files {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let batch = seldinger_hl7::batch::split(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        for warning in &batch.warnings {
            tracing::warn!(file = %file.display(), "{warning}");
        }
        batches.push((file, batch.messages));
    }
    let total: usize = batches.iter().map(|(_, m)| m.len()).sum();
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut problems = Vec::new();
    for (file, messages) in batches {
        let peer = seldinger_hl7::Peer::file(&file.display().to_string());
        for (n, message) in messages.iter().enumerate() {
            let answer = interface.receive(message, &peer).await;
            *counts.entry(answer.code).or_default() += 1;
            if let Some(reason) = answer.reason {
                problems.push(format!(
                    "{} message {}: {} {reason}",
                    file.display(),
                    n + 1,
                    answer.code
                ));
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    for problem in &problems {
        println!("{problem}");
    }
    println!(
        "{total} messages: {} applied (AA), {} failed (AE, dead letters), {} refused (AR)",
        counts.get("AA").unwrap_or(&0),
        counts.get("AE").unwrap_or(&0),
        counts.get("AR").unwrap_or(&0)
    );
    Ok(())
}

/// Starts the DICOM listener (dose reports, the Modality Worklist) in the background.
async fn start_dicom(
    dicom: &config::DicomSettings,
    app: seldinger_app::App,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (address, ae_title) = (dicom.listen, &dicom.ae_title);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!("cannot listen for DICOM on {address} (is another listener using it? try --dicom-listen or --no-dicom)")
        })?;
    let address = listener.local_addr()?;
    tracing::info!(%address, %ae_title, allowed_callers = ?dicom.allowed_callers, tls = dicom.tls.is_some(), "DICOM listener: dose reports (C-STORE), Modality Worklist (C-FIND)");
    let config = seldinger_dicom::scp::ScpConfig {
        ae_title: ae_title.to_string(),
        allowed_callers: dicom.allowed_callers.clone(),
        tls: dicom.tls.clone(),
        read_timeout: std::time::Duration::from_secs(60),
    };
    Ok(tokio::spawn(async move {
        if let Err(error) = seldinger_dicom::scp::serve(listener, config, app).await {
            tracing::error!(%error, "DICOM listener stopped");
        }
    }))
}

/// Prints one report's extraction and what clinical-rules.md §5 says about it.
fn dose_inspect(file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let report =
        seldinger_dicom::parse_file(file).with_context(|| format!("{}", file.display()))?;
    let reference = seldinger_domain::safety::SafetyReference::parse(
        include_str!("../../../catalog/safety-thresholds.toml"),
        "catalog/safety-thresholds.toml (shipped)",
    )?;
    let totals = report.totals();
    // The skin-check window counts from the procedure; the study date is the best the file gives.
    let end = report
        .study_date
        .as_deref()
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or_else(clock::now);
    let assessment = seldinger_domain::dose::assess(&totals, end, &reference);
    if json {
        let out =
            serde_json::json!({ "report": report, "totals": totals, "assessment": assessment });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}  study {}  accession {}",
        file.display(),
        report.study_instance_uid,
        report.accession_number.as_deref().unwrap_or("-")
    );
    println!(
        "device: {} {}",
        report.manufacturer.as_deref().unwrap_or("-"),
        report.model.as_deref().unwrap_or("-")
    );
    println!("planes: {}", report.planes.len());
    let show = |v: Option<f64>, unit: &str| {
        v.map_or_else(|| "not reported".to_string(), |v| format!("{v} {unit}"))
    };
    println!(
        "reference air kerma: {}",
        show(totals.reference_air_kerma.map(|g| g.0), "Gy")
    );
    println!(
        "kerma-area product: {}",
        show(
            totals
                .kerma_area_product
                .map(|k| k.gray_square_centimetres()),
            "Gy·cm²"
        )
    );
    println!(
        "fluoroscopy time: {}",
        show(totals.fluoroscopy_time.map(|s| s.0), "s")
    );
    if assessment.substantial() {
        println!("SUBSTANTIAL RADIATION DOSE LEVEL reached (clinical-rules.md §5): skin check and patient follow-up needed");
    }
    for m in &report.missing {
        println!("missing: {m}");
    }
    Ok(())
}

/// A file's bytes, unless it is larger than any dose report could be.
fn read_capped(file: &std::path::Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    if size > seldinger_dicom::guard::MAX_REPORT_BYTES as u64 {
        return Err(format!(
            "{size} bytes is larger than any dose report (limit {} bytes)",
            seldinger_dicom::guard::MAX_REPORT_BYTES
        ));
    }
    std::fs::read(file).map_err(|e| e.to_string())
}

/// Files below `path` (itself if a file), in a stable order.
fn files_under(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for entry in entries {
            files_under(&entry, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

async fn dose_import(
    store: &seldinger_store::Store,
    paths: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    use seldinger_dicom::ingest::{Ingest, Ingested};
    let mut files = Vec::new();
    for path in paths {
        files_under(path, &mut files).with_context(|| format!("cannot read {}", path.display()))?;
    }
    let reference = seldinger_domain::safety::SafetyReference::parse(
        include_str!("../../../catalog/safety-thresholds.toml"),
        "catalog/safety-thresholds.toml (shipped)",
    )?;
    let ingest = Ingest {
        store,
        reference: &reference,
        station: None,
    };
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    let (mut stored, mut linked, mut tasks, mut already, mut quarantined) = (0, 0, 0, 0, 0);
    for file in &files {
        let source = file.display().to_string();
        let now = clock::now();
        let outcome = match read_capped(file) {
            Ok(bytes) => ingest.file_bytes(&bytes, &source, now).await?,
            Err(reason) => {
                store
                    .quarantine_dose_file(&source, &reason, None, now)
                    .await?;
                Ingested::Quarantined { reason }
            }
        };
        match outcome {
            Ingested::Stored {
                link, tasks: new, ..
            } => {
                stored += 1;
                if matches!(
                    link,
                    Some(seldinger_domain::dose_link::LinkOutcome::Linked { .. })
                ) {
                    linked += 1;
                }
                tasks += new.len();
            }
            Ingested::AlreadyStored { .. } => already += 1,
            Ingested::Quarantined { reason } => {
                quarantined += 1;
                bar.println(format!("quarantined {source}: {reason}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "{} files: {stored} stored ({linked} linked to a case, {} waiting to be matched), {already} already stored, {quarantined} quarantined; {tasks} follow-up tasks created",
        files.len(),
        stored - linked
    );
    Ok(())
}
