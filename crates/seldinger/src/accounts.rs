//! Accounts from the command line: the first administrator, `seldinger user …` and
//! `seldinger token …`, and the demo department's users.

use anyhow::{bail, Context};
use clap::Subcommand;
use seldinger_domain::access::Role;
use seldinger_store::Store;
use seldinger_web::auth::credentials::{check_password_policy, hash_password, new_secret};
use seldinger_web::{parse_username, AppState};
use std::io::BufRead;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from SELDINGER_NEW_PASSWORD or standard input, or a
    /// random one is printed once.
    Add {
        username: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List users and their roles.
    List,
    /// Disable a user: their sessions end and their API tokens are revoked.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Set a new password (same sources as `add`); ends the user's sessions and clears a lock-out.
    ResetPassword { username: String },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; it is printed once (only a hash is stored).
    Create {
        #[arg(long)]
        user: String,
        /// Scope the token to this role (default: the user's role).
        #[arg(long)]
        role: Option<String>,
        #[arg(long, default_value = "command line")]
        name: String,
        /// Days until it expires (1-365; default 90).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Limit it to SMART on FHIR scopes (space-separated, e.g. "patient/*.read"): it then
        /// serves /fhir/r4 only.
        #[arg(long)]
        scopes: Option<String>,
        /// The one patient (id) a token with patient/ scopes may reach.
        #[arg(long)]
        patient: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: uuid::Uuid },
}

/// A password from SELDINGER_NEW_PASSWORD, else one line of standard input when it is not a
/// terminal, else a random one that is printed once.
fn new_password() -> anyhow::Result<(String, bool)> {
    if let Ok(p) = std::env::var("SELDINGER_NEW_PASSWORD") {
        return Ok((p, false));
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if !line.is_empty() {
            return Ok((line, false));
        }
    }
    Ok((new_secret()[..24].to_string(), true))
}

/// The audit row of a change made from the command line (or at first start), committed with it.
fn system_audit(action: &str, resource_type: &str, id: &str) -> seldinger_store::AuditEntry {
    seldinger_store::AuditEntry::system(crate::clock::now(), action, resource_type, Some(id.into()))
}

pub async fn user(store: &Store, command: UserCommand) -> anyhow::Result<()> {
    let now = crate::clock::now();
    match command {
        UserCommand::Add {
            username,
            role,
            display_name,
        } => {
            let username = parse_username(&username).map_err(anyhow::Error::msg)?;
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let (password, generated) = new_password()?;
            check_password_policy(&password).map_err(|e| anyhow::anyhow!("password {e}"))?;
            let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
            let display = display_name.unwrap_or_else(|| username.clone());
            let audit = system_audit("create", "user", &username);
            store
                .create_user(&username, &display, role, &hash, now, &[audit])
                .await?;
            println!("added {username} ({role})");
            if generated {
                println!("password (shown once): {password}");
            }
        }
        UserCommand::List => {
            for u in store.users().await? {
                let state = if u.disabled { "disabled" } else { "active" };
                println!(
                    "{:<24} {:<20} {:<8} {}",
                    u.username, u.role, state, u.display_name
                );
            }
        }
        UserCommand::Disable { username } => {
            let audit = system_audit("disable", "user", &username);
            store
                .set_user_disabled(&username, true, now, &[audit])
                .await?;
            println!("disabled {username}; sessions ended, tokens revoked");
        }
        UserCommand::Enable { username } => {
            let audit = system_audit("enable", "user", &username);
            store
                .set_user_disabled(&username, false, now, &[audit])
                .await?;
            println!("enabled {username}");
        }
        UserCommand::ResetPassword { username } => {
            let (password, generated) = new_password()?;
            check_password_policy(&password).map_err(|e| anyhow::anyhow!("password {e}"))?;
            let audit = system_audit("reset_password", "user", &username);
            store
                .set_password(
                    &username,
                    &hash_password(&password).map_err(anyhow::Error::msg)?,
                    now,
                    &[audit],
                )
                .await?;
            println!("password set for {username}; their sessions ended");
            if generated {
                println!("password (shown once): {password}");
            }
        }
    }
    Ok(())
}

pub async fn token(state: &AppState, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            user,
            role,
            name,
            expires_in_days,
            scopes,
            patient,
        } => {
            let asked = seldinger_web::routes::admin::NewToken {
                username: user.clone(),
                role,
                name,
                expires_in_days,
                scopes,
                patient_id: patient,
            };
            let created = seldinger_web::issue_token(state, None, &asked)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let until = created
                .expires_at
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            println!(
                "token {} for {user} as {}, expires {until} (shown once):\n{}",
                created.id, created.role, created.token
            );
        }
        TokenCommand::List => {
            for t in state.store.api_tokens().await? {
                let status = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "live"
                };
                println!("{}  {:<20} {:<8} {}", t.id, t.role, status, t.name);
            }
        }
        TokenCommand::Revoke { id } => {
            let audit = system_audit("revoke", "api_token", &id.to_string());
            if !state
                .store
                .revoke_api_token(id, crate::clock::now(), &[audit])
                .await?
            {
                bail!("no live token {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// On a database with no users, creates `admin` with SELDINGER_ADMIN_PASSWORD or a random
/// password printed once.
pub async fn ensure_first_administrator(store: &Store) -> anyhow::Result<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match std::env::var("SELDINGER_ADMIN_PASSWORD") {
        Ok(p) => (p, false),
        Err(_) => (new_secret()[..24].to_string(), true),
    };
    check_password_policy(&password)
        .map_err(|e| anyhow::anyhow!("SELDINGER_ADMIN_PASSWORD {e}"))?;
    let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
    store
        .create_user(
            "admin",
            "Administrator",
            Role::Administrator,
            &hash,
            crate::clock::now(),
            &[system_audit("create", "user", "admin")],
        )
        .await
        .context("creating the first administrator")?;
    if generated {
        // Printed, not logged: log files outlive this moment.
        println!(
            "First start: created user 'admin' (administrator). Password (shown once): {password}"
        );
    } else {
        tracing::info!("first start: created user 'admin' with SELDINGER_ADMIN_PASSWORD");
    }
    Ok(())
}

/// The demo's password for every demo user (documented in the README; synthetic data only).
pub const DEMO_PASSWORD: &str = "seldinger-demo";

/// One user per role, named as the demo's events name them.
pub const DEMO_USERS: &[(&str, &str, Role)] = &[
    ("dr.okafor", "Dr N. Okafor", Role::IrPhysician),
    ("nurse.lindqvist", "S. Lindqvist RN", Role::IrNurse),
    ("rad.tanaka", "K. Tanaka", Role::Radiographer),
    ("sched.moreau", "C. Moreau", Role::Scheduler),
    ("dr.anand", "Dr P. Anand", Role::ReferringClinician),
    ("phys.mendez", "A. Mendez", Role::MedicalPhysicist),
    ("qa.singh", "R. Singh", Role::QualityLead),
    ("admin", "Administrator", Role::Administrator),
];

pub async fn create_demo_users(store: &Store) -> anyhow::Result<()> {
    // One hash for all: the password is the same and hashing is deliberately slow.
    let hash = hash_password(DEMO_PASSWORD).map_err(anyhow::Error::msg)?;
    for (username, display, role) in DEMO_USERS {
        store
            .create_user(username, display, *role, &hash, crate::clock::now(), &[])
            .await?;
    }
    Ok(())
}
