//! Configuration from flags and environment, with documented defaults (see README).

use anyhow::{bail, Context};
use clap::Args;
use seldinger_domain::discharge::DischargeTexts;
use seldinger_domain::dose_stats::ReferenceLevels;
use seldinger_domain::quality::Thresholds;
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::{DepartmentTime, ProcedureCatalogue};
use seldinger_store::{redact, Engine, Store};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The catalogue shipped with this build; `--catalog` replaces it.
const SHIPPED_CATALOGUE: &str = include_str!("../../../catalog/procedures.toml");
/// The safety thresholds shipped with this build; `--safety-thresholds` replaces them.
const SHIPPED_SAFETY: &str = include_str!("../../../catalog/safety-thresholds.toml");
/// Empty by design (clinical-rules.md §5): a template for the department's physicist.
const SHIPPED_DOSE_LEVELS: &str = include_str!("../../../catalog/dose-reference-levels.toml");
const SHIPPED_QUALITY_THRESHOLDS: &str = include_str!("../../../catalog/quality-thresholds.toml");

#[derive(Args, Clone)]
pub struct StorageArgs {
    /// Folder for the embedded SQLite database (created on first run). Ignored when DATABASE_URL is set.
    #[arg(long, env = "SELDINGER_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL for production (postgres://user:password@host/db); SQLite in --data-dir when unset.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address to serve on. Plain HTTP belongs on loopback; put TLS in front for anything else.
    #[arg(long, env = "SELDINGER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A procedure catalogue file to use instead of the one shipped in the binary.
    #[arg(long, env = "SELDINGER_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// A department's own safety-threshold table instead of the shipped one (logged at start).
    #[arg(long, env = "SELDINGER_SAFETY_THRESHOLDS")]
    pub safety_thresholds: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long, env = "SELDINGER_ALLOW_PLAIN_HTTP")]
    pub allow_plain_http: bool,
    /// The reverse proxies in front of this node, by address (comma-separated): requests from
    /// them are the client's named in X-Forwarded-For, for sign-in limits and the audit trail.
    #[arg(long, env = "SELDINGER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "SELDINGER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "SELDINGER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where the DICOM C-STORE listener for dose reports accepts associations (11112 is the
    /// IANA-registered DICOM port that needs no root).
    #[arg(
        long,
        env = "SELDINGER_DICOM_LISTEN",
        default_value = "127.0.0.1:11112"
    )]
    pub dicom_listen: SocketAddr,
    /// The listener's AE title: modalities send to this title; others are rejected.
    #[arg(long, env = "SELDINGER_DICOM_AE_TITLE", default_value = "SELDINGER", value_parser = parse_ae_title)]
    pub dicom_ae_title: String,
    /// The calling AE titles of the department's modalities, comma-separated; when given, any
    /// other caller is rejected. Empty: any caller that addresses our AE title.
    #[arg(long, env = "SELDINGER_DICOM_ALLOWED_CALLERS", value_delimiter = ',', value_parser = parse_ae_title)]
    pub dicom_allowed_callers: Vec<String>,
    /// DICOM over TLS: the listener's certificate chain (PEM); with --dicom-tls-key.
    #[arg(long, env = "SELDINGER_DICOM_TLS_CERT", requires = "dicom_tls_key")]
    pub dicom_tls_cert: Option<PathBuf>,
    /// The listener's private key (PEM); with --dicom-tls-cert.
    #[arg(long, env = "SELDINGER_DICOM_TLS_KEY", requires = "dicom_tls_cert")]
    pub dicom_tls_key: Option<PathBuf>,
    /// Require modalities to present a certificate from this CA (PEM): mutual TLS.
    #[arg(
        long,
        env = "SELDINGER_DICOM_TLS_CLIENT_CA",
        requires = "dicom_tls_cert"
    )]
    pub dicom_tls_client_ca: Option<PathBuf>,
    /// The department's diagnostic reference levels per procedure (TOML, see
    /// catalog/dose-reference-levels.toml); none are shipped (clinical-rules.md §5).
    #[arg(long, env = "SELDINGER_DOSE_REFERENCE_LEVELS")]
    pub dose_reference_levels: Option<PathBuf>,
    /// The department's thresholds on its quality measures (TOML, see
    /// catalog/quality-thresholds.toml); none are shipped (clinical-rules.md §6).
    #[arg(long, env = "SELDINGER_QUALITY_THRESHOLDS")]
    pub quality_thresholds: Option<PathBuf>,
    /// The department's discharge instruction texts (TOML like catalog/discharge-instructions.toml).
    #[arg(long, env = "SELDINGER_DISCHARGE_INSTRUCTIONS")]
    pub discharge_instructions: Option<PathBuf>,
    /// The department's table of vendor dose-unit spellings (TOML like catalog/dose-units.toml),
    /// replacing the shipped one.
    #[arg(long, env = "SELDINGER_DOSE_UNITS")]
    pub dose_units: Option<PathBuf>,
    /// Do not start the DICOM listener.
    #[arg(long, env = "SELDINGER_NO_DICOM")]
    pub no_dicom: bool,
    #[command(flatten)]
    pub hl7: Hl7Args,
    /// The department's time zone (IANA name, e.g. Europe/London): the board's day and the times
    /// people read and type on the pages. Storage and the APIs keep UTC.
    #[arg(long, env = "SELDINGER_TIME_ZONE", default_value = "UTC", value_parser = DepartmentTime::parse)]
    pub time_zone: DepartmentTime,
}

/// The HL7 v2 interface: the MLLP listener and the department's interface file.
#[derive(Args, Clone, Default)]
pub struct Hl7Args {
    /// Where the MLLP listener for HL7 v2 messages accepts connections (2575 is the port IANA
    /// registered for HL7 over MLLP).
    #[arg(long, env = "SELDINGER_HL7_LISTEN", default_value = "127.0.0.1:2575")]
    pub hl7_listen: Option<SocketAddr>,
    /// The department's interface file (TOML like catalog/hl7-interface.toml): which systems may
    /// send, from where, and how their codes map. `serve` without one refuses every message
    /// (no sender listed: every connection is closed as it is accepted); `demo` uses the shipped demo file.
    #[arg(long, env = "SELDINGER_HL7_CONFIG")]
    pub hl7_config: Option<PathBuf>,
    /// MLLP over TLS: the listener's certificate chain (PEM); with --hl7-tls-key.
    #[arg(long, env = "SELDINGER_HL7_TLS_CERT", requires = "hl7_tls_key")]
    pub hl7_tls_cert: Option<PathBuf>,
    /// The listener's private key (PEM); with --hl7-tls-cert.
    #[arg(long, env = "SELDINGER_HL7_TLS_KEY", requires = "hl7_tls_cert")]
    pub hl7_tls_key: Option<PathBuf>,
    /// Require senders to present a certificate from this CA (PEM): mutual TLS.
    #[arg(long, env = "SELDINGER_HL7_TLS_CLIENT_CA", requires = "hl7_tls_cert")]
    pub hl7_tls_client_ca: Option<PathBuf>,
    /// The largest message accepted, in bytes; a larger one is refused (AR) and kept truncated.
    #[arg(long, env = "SELDINGER_HL7_MAX_MESSAGE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub hl7_max_message_bytes: usize,
    /// Connections one address may hold open at once (an integration engine sending every
    /// feed from one host needs one per channel); more are closed as they are accepted.
    #[arg(
        long,
        env = "SELDINGER_HL7_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 32
    )]
    pub hl7_max_connections_per_address: usize,
    /// Seconds a connection may stay open before a message from an established sender arrives
    /// (listed, from its address, with its certificate); then it is closed.
    #[arg(long, env = "SELDINGER_HL7_FIRST_MESSAGE_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub hl7_first_message_timeout: u64,
    /// A system told of bookings, cancellations and reports over MLLP, as NAME=host:port
    /// (repeat for several). A name the interface file lists keeps the style it gives there
    /// (siu, order_status, omi, orm); another is sent SIU^S12/S13/S15.
    #[arg(
        long = "hl7-destination",
        env = "SELDINGER_HL7_DESTINATIONS",
        value_delimiter = ','
    )]
    pub hl7_destinations: Vec<String>,
    /// Do not start the MLLP listener (nor send to destinations).
    #[arg(long, env = "SELDINGER_NO_HL7")]
    pub no_hl7: bool,
}

impl Hl7Args {
    /// The interface file named, or for the demo the shipped one; otherwise none (every
    /// message refused until the department lists its systems).
    pub fn interface(&self, demo: bool) -> anyhow::Result<seldinger_hl7::InterfaceConfig> {
        match &self.hl7_config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read HL7 interface file {}", path.display())
                })?;
                let config =
                    seldinger_hl7::InterfaceConfig::parse(&text, &path.display().to_string())
                        .map_err(anyhow::Error::msg)?;
                tracing::info!(file = %path.display(), version = %config.version, senders = config.senders.len(), "HL7 interface file loaded");
                Ok(config)
            }
            None if demo => seldinger_hl7::InterfaceConfig::parse(
                seldinger_hl7::DEMO_INTERFACE,
                "catalog/hl7-interface.toml (shipped demo)",
            )
            .map_err(anyhow::Error::msg),
            None => Ok(seldinger_hl7::InterfaceConfig::empty()),
        }
    }
}

/// The MLLP listener: where, with which interface file, over TLS or not.
pub struct Hl7Settings {
    pub listen: SocketAddr,
    pub interface: seldinger_hl7::InterfaceConfig,
    pub listener: seldinger_hl7::mllp::ListenerConfig,
}

/// DICOM AE (PS3.5 §6.2): 1-16 characters, no backslash or control characters, not all spaces.
fn parse_ae_title(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || value.chars().count() > 16 {
        return Err(format!(
            "'{value}' is not an AE title: use 1 to 16 characters"
        ));
    }
    if value
        .chars()
        .any(|c| c == '\\' || c.is_control() || !c.is_ascii())
    {
        return Err(format!(
            "'{value}' is not an AE title: ASCII without backslash or control characters"
        ));
    }
    Ok(trimmed.to_string())
}

impl ServeArgs {
    pub fn with_default_data_dir(mut self, dir: &str) -> Self {
        self.storage
            .data_dir
            .get_or_insert_with(|| PathBuf::from(dir));
        self
    }
}

/// The DICOM listener: where, as which AE title, for which callers, and over TLS or not.
pub struct DicomSettings {
    pub listen: SocketAddr,
    pub ae_title: String,
    pub allowed_callers: Vec<String>,
    pub tls: Option<seldinger_dicom::scp::TlsSettings>,
}

pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub listen: SocketAddr,
    pub allow_plain_http: bool,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Certificate chain and key, both PEM, when serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The DICOM listener's address and AE title, unless turned off.
    pub dicom: Option<DicomSettings>,
    /// The MLLP listener, unless turned off.
    pub hl7: Option<Hl7Settings>,
    pub catalogue: ProcedureCatalogue,
    pub safety: SafetyReference,
    pub dose_levels: ReferenceLevels,
    pub quality_thresholds: Thresholds,
    /// The department's discharge texts, when they replace the shipped ones.
    pub discharge_texts: Option<DischargeTexts>,
    /// The department's threshold file, when it replaces the shipped one.
    pub safety_override: Option<PathBuf>,
    /// The vendor dose-unit spellings the dose reader accepts.
    pub dose_units: seldinger_dicom::units::UnitSpellings,
    pub time_zone: DepartmentTime,
}

impl Settings {
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Settings> {
        Settings::for_mode(args, false)
    }

    /// The demo's settings: the shipped demo interface file unless one is named.
    pub fn for_demo(args: &ServeArgs) -> anyhow::Result<Settings> {
        Settings::for_mode(args, true)
    }

    fn for_mode(args: &ServeArgs, demo: bool) -> anyhow::Result<Settings> {
        let catalogue = match &args.catalog {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read catalogue {}", path.display()))?;
                ProcedureCatalogue::parse(&text, &path.display().to_string())?
            }
            None => {
                ProcedureCatalogue::parse(SHIPPED_CATALOGUE, "catalog/procedures.toml (shipped)")?
            }
        };
        tracing::info!(version = %catalogue.version, procedures = catalogue.procedures.len(), "procedure catalogue loaded");
        let safety = match &args.safety_thresholds {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read safety thresholds {}", path.display()))?;
                let reference = SafetyReference::parse(&text, &path.display().to_string())?;
                // A department override of clinical thresholds must be visible in the logs.
                tracing::warn!(file = %path.display(), version = %reference.version, "safety thresholds overridden by the department");
                reference
            }
            None => {
                SafetyReference::parse(SHIPPED_SAFETY, "catalog/safety-thresholds.toml (shipped)")?
            }
        };
        let dose_levels = match &args.dose_reference_levels {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read dose reference levels {}", path.display())
                })?;
                let levels = ReferenceLevels::parse(&text, &path.display().to_string())
                    .map_err(anyhow::Error::msg)?;
                for level in &levels.levels {
                    if catalogue.get(&level.procedure).is_none() {
                        anyhow::bail!(
                            "{}: procedure '{}' is not in the catalogue",
                            path.display(),
                            level.procedure.as_str()
                        );
                    }
                }
                tracing::info!(file = %path.display(), levels = levels.levels.len(), "dose reference levels loaded");
                levels
            }
            None => ReferenceLevels::parse(
                SHIPPED_DOSE_LEVELS,
                "catalog/dose-reference-levels.toml (shipped)",
            )
            .map_err(anyhow::Error::msg)?,
        };
        let quality_thresholds = match &args.quality_thresholds {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read quality thresholds {}", path.display())
                })?;
                let thresholds = Thresholds::parse(&text, &path.display().to_string())
                    .map_err(anyhow::Error::msg)?;
                for t in &thresholds.thresholds {
                    if let Some(procedure) = &t.procedure {
                        if catalogue.get(procedure).is_none() {
                            anyhow::bail!(
                                "{}: procedure '{}' is not in the catalogue",
                                path.display(),
                                procedure.as_str()
                            );
                        }
                    }
                }
                tracing::info!(file = %path.display(), thresholds = thresholds.thresholds.len(), "quality thresholds loaded");
                thresholds
            }
            None => Thresholds::parse(
                SHIPPED_QUALITY_THRESHOLDS,
                "catalog/quality-thresholds.toml (shipped)",
            )
            .map_err(anyhow::Error::msg)?,
        };
        let dose_units = match &args.dose_units {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read dose unit spellings {}", path.display())
                })?;
                let table = seldinger_dicom::units::UnitSpellings::parse(
                    &text,
                    &path.display().to_string(),
                )
                .map_err(anyhow::Error::msg)?;
                tracing::info!(file = %path.display(), version = %table.version, spellings = table.len(), "dose unit spellings loaded");
                table
            }
            None => seldinger_dicom::units::UnitSpellings::parse(
                seldinger_dicom::units::SHIPPED,
                "catalog/dose-units.toml (shipped)",
            )
            .map_err(anyhow::Error::msg)?,
        };
        let discharge_texts = match &args.discharge_instructions {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read discharge instructions {}", path.display())
                })?;
                let texts = DischargeTexts::parse(&text, &path.display().to_string())
                    .map_err(anyhow::Error::msg)?;
                tracing::info!(file = %path.display(), version = %texts.version, "discharge instructions loaded");
                Some(texts)
            }
            None => None,
        };
        let dicom = if args.no_dicom {
            None
        } else {
            let tls = match (&args.dicom_tls_cert, &args.dicom_tls_key) {
                (Some(cert), Some(key)) => Some(
                    seldinger_dicom::scp::tls_config(
                        cert,
                        key,
                        args.dicom_tls_client_ca.as_deref(),
                    )
                    .map_err(anyhow::Error::msg)?,
                ),
                _ => None,
            };
            // As HTTP refuses plain text off loopback: a listener on the network must be able
            // to tell who is calling (the worklist holds names, MRNs, allergies and pregnancy).
            if !args.dicom_listen.ip().is_loopback()
                && args.dicom_allowed_callers.is_empty()
                && args.dicom_tls_client_ca.is_none()
            {
                bail!(
                    "refusing to start the DICOM listener on {} (not loopback) with no way to tell who is calling: any host could read the worklist and send dose reports. \
                     List the department's modalities with --dicom-allowed-callers, or require their certificates with --dicom-tls-client-ca (with --dicom-tls-cert and --dicom-tls-key), or listen on 127.0.0.1, or --no-dicom",
                    args.dicom_listen
                );
            }
            Some(DicomSettings {
                listen: args.dicom_listen,
                ae_title: args.dicom_ae_title.clone(),
                allowed_callers: args.dicom_allowed_callers.clone(),
                tls,
            })
        };
        let hl7 = match (args.hl7.no_hl7, args.hl7.hl7_listen) {
            (false, Some(listen)) => {
                let tls = match (&args.hl7.hl7_tls_cert, &args.hl7.hl7_tls_key) {
                    (Some(cert), Some(key)) => Some(
                        seldinger_dicom::scp::tls_config(
                            cert,
                            key,
                            args.hl7.hl7_tls_client_ca.as_deref(),
                        )
                        .map_err(anyhow::Error::msg)?,
                    ),
                    _ => None,
                };
                let mut interface = args.hl7.interface(demo)?;
                // Mutual TLS proves only that a certificate chains to the hospital's CA; which
                // sender it may speak as is the interface file's to say, for every sender.
                let unbound = interface.senders_without_certificate();
                if args.hl7.hl7_tls_client_ca.is_some() && !unbound.is_empty() {
                    bail!(
                        "the HL7 listener asks senders for certificates (--hl7-tls-client-ca), but the interface file binds none to {}: any certificate of that CA could speak as them. Give each sender certificate = {{ subject = \"…\" }} (or dns_name, or sha256)",
                        unbound.join(", ")
                    );
                }
                for spec in &args.hl7.hl7_destinations {
                    interface
                        .address_destination(spec)
                        .map_err(anyhow::Error::msg)?;
                }
                let unaddressed = interface.unaddressed();
                if !unaddressed.is_empty() {
                    bail!(
                        "the HL7 interface file lists destinations with no address: {}; give each --hl7-destination NAME=host:port",
                        unaddressed.join(", ")
                    );
                }
                let unknown = interface.unknown_procedures(&catalogue);
                if !unknown.is_empty() {
                    bail!(
                        "the HL7 interface file maps order codes to procedures the catalogue does not hold: {}",
                        unknown.join(", ")
                    );
                }
                Some(Hl7Settings {
                    listen,
                    interface,
                    listener: seldinger_hl7::mllp::ListenerConfig {
                        max_message_bytes: args.hl7.hl7_max_message_bytes,
                        max_connections_per_address: args.hl7.hl7_max_connections_per_address,
                        first_message_timeout: std::time::Duration::from_secs(
                            args.hl7.hl7_first_message_timeout,
                        ),
                        tls,
                        ..Default::default()
                    },
                })
            }
            _ => None,
        };
        Ok(Settings {
            data_dir: args
                .storage
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("data")),
            database_url: args.storage.database_url.clone().filter(|u| !u.is_empty()),
            listen: args.listen,
            allow_plain_http: args.allow_plain_http,
            trusted_proxies: args.trusted_proxies.clone(),
            tls: args.tls_cert.clone().zip(args.tls_key.clone()),
            dicom,
            hl7,
            catalogue,
            safety,
            dose_levels,
            quality_thresholds,
            discharge_texts,
            dose_units,
            safety_override: args.safety_thresholds.clone(),
            time_zone: args.time_zone,
        })
    }

    pub fn from_storage_args(args: &StorageArgs) -> anyhow::Result<Settings> {
        let serve = ServeArgs {
            storage: args.clone(),
            listen: ([127, 0, 0, 1], 0).into(),
            catalog: None,
            allow_plain_http: false,
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
            safety_thresholds: None,
            dicom_listen: ([127, 0, 0, 1], 0).into(),
            dicom_ae_title: "SELDINGER".into(),
            dicom_allowed_callers: Vec::new(),
            dicom_tls_cert: None,
            dicom_tls_key: None,
            dicom_tls_client_ca: None,
            no_dicom: true,
            hl7: Hl7Args {
                no_hl7: true,
                ..Hl7Args::default()
            },
            dose_reference_levels: None,
            quality_thresholds: None,
            discharge_instructions: None,
            dose_units: None,
            time_zone: DepartmentTime::default(),
        };
        Settings::from_args(&serve)
    }

    /// Opens and migrates the database. `fresh_demo` starts the demo's SQLite file anew, and
    /// refuses to put demo data into a PostgreSQL database that already holds records.
    pub async fn open_store(&self, fresh_demo: bool) -> anyhow::Result<Store> {
        let store = match &self.database_url {
            Some(url) => {
                tracing::info!(database = %redact(url), "using PostgreSQL");
                Store::connect(url).await?
            }
            None => {
                if fresh_demo {
                    remove_sqlite_files(&self.data_dir)?;
                }
                tracing::info!(data_dir = %self.data_dir.display(), "using SQLite");
                Store::open_data_dir(&self.data_dir).await?
            }
        };
        store.migrate().await?;
        if let Some(path) = &self.safety_override {
            // clinical-rules.md: every threshold override is audited.
            store
                .append_audit(&seldinger_store::AuditEntry::system(
                    crate::clock::now(),
                    format!("safety_thresholds_override version {}", self.safety.version),
                    "configuration",
                    Some(path.display().to_string()),
                ))
                .await?;
        }
        if fresh_demo && store.engine() == Engine::Postgres && store.has_patients().await? {
            bail!("the demo seeds an empty database; the PostgreSQL database in DATABASE_URL already holds patients");
        }
        Ok(store)
    }
}

fn remove_sqlite_files(dir: &std::path::Path) -> anyhow::Result<()> {
    for name in ["seldinger.db", "seldinger.db-wal", "seldinger.db-shm"] {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot reset demo database {}", path.display()))?;
        }
    }
    Ok(())
}

/// Logs as text, or as JSON lines with SELDINGER_LOG_FORMAT=json; RUST_LOG filters.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    // On stderr: a command's output on stdout (`dose inspect --json`, `generate`'s summary) stays
    // its own.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("SELDINGER_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on Ctrl-C or SIGTERM: the server then finishes in-flight requests before exiting.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

/// This machine's host name (Linux's, else `HOSTNAME`), to tell nodes apart.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
