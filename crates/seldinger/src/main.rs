//! `seldinger`: run the IR department service, the demo department, or the migrations.

mod accounts;
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
    /// Manage users: add, list, disable, enable, reset-password.
    User {
        #[command(flatten)]
        storage: config::StorageArgs,
        #[command(subcommand)]
        command: accounts::UserCommand,
    },
    /// Manage API tokens for scripts and interfaces: create, list, revoke.
    Token {
        #[command(flatten)]
        storage: config::StorageArgs,
        #[command(subcommand)]
        command: accounts::TokenCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    config::init_logging();
    match Cli::parse().command {
        Command::Serve(args) => {
            let settings = Settings::from_args(&args)?;
            let store = settings.open_store(false).await?;
            accounts::ensure_first_administrator(&store).await?;
            run(settings, store).await
        }
        Command::Demo { serve, seed } => {
            let settings = Settings::from_args(&serve.with_default_data_dir("data/demo"))?;
            let store = settings.open_store(true).await?;
            let today = chrono::Utc::now().date_naive();
            let summary = demo::seed(&store, &settings.catalogue, seed, today)
                .await
                .context("seeding the demo department")?;
            accounts::create_demo_users(&store).await?;
            tracing::info!(seed, %today, patients = summary.patients, cases = summary.cases, "demo department ready");
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
        Command::Migrate(args) => {
            let settings = Settings::from_storage_args(&args)?;
            settings.open_store(false).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::User { storage, command } => {
            let store = Settings::from_storage_args(&storage)?
                .open_store(false)
                .await?;
            accounts::user(&store, command).await
        }
        Command::Token { storage, command } => {
            let settings = Settings::from_storage_args(&storage)?;
            let store = settings.open_store(false).await?;
            let state = seldinger_web::AppState::new(
                store,
                settings.catalogue,
                settings.safety,
                Arc::new(seldinger_web::SystemClock),
                seldinger_web::AuthPolicy::default(),
            );
            accounts::token(&state, command).await
        }
    }
}

async fn run(settings: Settings, store: seldinger_store::Store) -> anyhow::Result<()> {
    if !settings.listen.ip().is_loopback() && settings.tls.is_none() && !settings.allow_plain_http {
        anyhow::bail!(
            "refusing to serve plain HTTP on {} (not loopback): patient data and passwords would cross the network in clear. \
             Give --tls-cert and --tls-key, or put a TLS-terminating proxy in front and pass --allow-plain-http, or listen on 127.0.0.1",
            settings.listen
        );
    }
    let listener = std::net::TcpListener::bind(settings.listen).with_context(|| {
        format!(
            "cannot listen on {} (is another server using it? try --listen)",
            settings.listen
        )
    })?;
    let address = listener.local_addr()?;
    let policy = seldinger_web::AuthPolicy {
        secure_cookies: settings.tls.is_some(),
        ..Default::default()
    };
    let state = seldinger_web::AppState::new(
        store,
        settings.catalogue,
        settings.safety,
        Arc::new(seldinger_web::SystemClock),
        policy,
    );
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
    tracing::info!("stopped cleanly");
    Ok(())
}
