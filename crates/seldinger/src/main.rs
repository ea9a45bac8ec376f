//! `seldinger`: run the IR department service, the demo department, or the migrations.

mod config;
mod demo;

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
    },
    /// Apply database migrations and exit.
    Migrate(config::StorageArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    config::init_logging();
    match Cli::parse().command {
        Command::Serve(args) => {
            let settings = Settings::from_args(&args)?;
            let store = settings.open_store(false).await?;
            run(settings, store).await
        }
        Command::Demo { serve, seed } => {
            let settings = Settings::from_args(&serve.with_default_data_dir("data/demo"))?;
            let store = settings.open_store(true).await?;
            let today = chrono::Utc::now().date_naive();
            let summary = demo::seed(&store, &settings.catalogue, seed, today)
                .await
                .context("seeding the demo department")?;
            tracing::info!(seed, %today, patients = summary.patients, cases = summary.cases, "demo department ready");
            run(settings, store).await
        }
        Command::Migrate(args) => {
            let settings = Settings::from_storage_args(&args)?;
            settings.open_store(false).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}

async fn run(settings: Settings, store: seldinger_store::Store) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another server using it? try --listen)",
                settings.listen
            )
        })?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "Seldinger is serving: http://{address}/api/v1/health");
    let state = seldinger_web::AppState {
        store,
        catalogue: Arc::new(settings.catalogue),
        clock: Arc::new(seldinger_web::SystemClock),
    };
    seldinger_web::serve(listener, state, config::shutdown_signal()).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}
