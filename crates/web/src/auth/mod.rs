//! Who is calling, and may they: authentication (session cookie or bearer token), the endpoint
//! access table enforced by one middleware (fail-closed), CSRF for cookie sessions, referrer
//! scope with break-glass, and the audit trail of every look at patient data.

pub mod credentials;
pub mod endpoints;
pub mod login;

use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use credentials::constant_time_eq;
use endpoints::{rule_for, Rule};
use seldinger_app::Presented;
pub use seldinger_app::{Audit, Credential, Principal};
use seldinger_domain::access::{grant, Role};
use seldinger_store::AuditEntry;
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "seldinger_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const BREAK_GLASS_HEADER: &str = "x-break-glass-reason";
/// Sent (`background`) by a page's own periodic refresh: it does not count as activity.
pub const BACKGROUND_HEADER: &str = "x-seldinger-refresh";

/// Security policy defaults (not clinical rules); configurable per deployment.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// A session ends this long after sign-in, whatever happens.
    pub session_absolute: Duration,
    /// ...or after this long without a request.
    pub session_idle: Duration,
    /// Consecutive failed sign-ins for one account from one address before attempts are slowed...
    pub lockout_after: u32,
    /// ...first by this long, doubling with each further failure...
    pub throttle_base: Duration,
    /// ...up to this long; a quiet period this long after the last failure starts the count anew.
    pub lockout_for: Duration,
    /// Sign-in attempts allowed from one address per minute.
    pub login_attempts_per_minute: u32,
    /// Failed sign-ins for one account from all addresses together before its sign-in is slowed
    /// from addresses it has never signed in from (guessing spread over many addresses); its
    /// known addresses and its sessions are not affected.
    pub account_lockout_after: u32,
    /// Mark cookies `Secure` (true whenever served over TLS).
    pub secure_cookies: bool,
    /// The reverse proxies in front (their addresses): a request from one is the client's named
    /// in `X-Forwarded-For`, so sign-in limits and the audit trail see people, not the proxy.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            session_absolute: Duration::hours(12),
            session_idle: Duration::minutes(30),
            lockout_after: 5,
            throttle_base: Duration::seconds(30),
            lockout_for: Duration::minutes(15),
            login_attempts_per_minute: 20,
            account_lockout_after: 20,
            secure_cookies: false,
            trusted_proxies: Vec::new(),
        }
    }
}

/// An authenticated caller: the principal the application layer acts for, and how they proved it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub credential: Credential,
}

impl std::ops::Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Only the middleware puts a Caller here; an endpoint without a rule never reaches a handler.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(ApiError::unauthenticated)
    }
}

impl AppState {
    /// Records an access in the audit log. Called before data is returned: if the trail cannot
    /// be written, nothing is shown.
    pub async fn audit(&self, caller: &Caller, audit: Audit<'_>) -> Result<(), ApiError> {
        self.audit_all(caller, vec![audit]).await
    }

    /// Records several accesses (the rows of a list) in one commit.
    pub async fn audit_all(&self, caller: &Caller, audits: Vec<Audit<'_>>) -> Result<(), ApiError> {
        Ok(self.app.audit_reads(caller, audits).await?)
    }

    /// Records something that happened without an authenticated caller (failed sign-ins).
    pub async fn audit_anonymous(
        &self,
        username: &str,
        action: &str,
        client_addr: &str,
        outcome: &str,
    ) -> Result<(), ApiError> {
        self.store
            .append_audit(&AuditEntry {
                seq: 0,
                at: self.clock.now(),
                username: username.chars().take(64).collect(),
                role: String::new(),
                action: action.into(),
                resource_type: "session".into(),
                resource_id: None,
                patient_id: None,
                client_addr: client_addr.into(),
                outcome: outcome.into(),
                break_glass_reason: None,
                via_message: None,
                via_claim: None,
            })
            .await
            .map_err(ApiError::from)
    }
}

pub fn client_addr(extensions: &axum::http::Extensions) -> String {
    if let Some(ClientAddr(forwarded)) = extensions.get::<ClientAddr>() {
        return forwarded.to_string();
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The client's address as a trusted proxy forwarded it.
#[derive(Debug, Clone, Copy)]
struct ClientAddr(std::net::IpAddr);

/// Behind trusted proxies, the client is the last address in `X-Forwarded-For` that is not one
/// of them (each proxy appends the address it was reached from; what a client wrote itself
/// comes before and is not believed). From anyone else the header is ignored.
pub async fn forwarded_client(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let trusted = &state.auth_policy.trusted_proxies;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match peer.filter(|p| trusted.contains(p)) {
        Some(peer) => {
            let hops: Vec<&str> = request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .collect();
            let client = forwarded_for(peer, trusted, &hops);
            request.extensions_mut().insert(ClientAddr(client));
            // Every adapter behind this layer (the FHIR server among them) reads the client
            // from the connection: it is the client now, not the proxy.
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, 0)));
        }
        // Only a trusted proxy says the client came over HTTPS; anyone else's word is dropped.
        None => {
            request.headers_mut().remove("x-forwarded-proto");
        }
    }
    next.run(request).await
}

/// Whether the client reached us over HTTPS through a trusted, TLS-terminating proxy
/// (`X-Forwarded-Proto: https`; [`forwarded_client`] drops the header from anyone else).
pub fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The client a trusted `peer` forwards, from the `X-Forwarded-For` entries in order: walking
/// back from the right past trusted proxies, the first other address. An entry that is not an
/// address (with or without a port) ends the walk: what lies left of it was not written by a
/// proxy we know, so the nearest trusted hop stands.
fn forwarded_for(
    peer: std::net::IpAddr,
    trusted: &[std::net::IpAddr],
    hops: &[&str],
) -> std::net::IpAddr {
    let mut client = peer;
    for hop in hops.iter().rev() {
        let hop = hop.trim();
        let address = hop
            .parse::<std::net::IpAddr>()
            .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()))
            .or_else(|_| {
                hop.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
            });
        match address {
            Ok(address) => {
                client = address;
                if !trusted.contains(&address) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// The one gate every API request passes: finds the endpoint's rule, authenticates, checks the
/// role and (for cookie sessions) CSRF, and hands the handler a [`Caller`].
pub async fn gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    match admit(&state, &mut request).await {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn admit(state: &AppState, request: &mut Request) -> Result<(), ApiError> {
    let Some(path) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
    else {
        return Ok(()); // unrouted: the fallback answers 404
    };
    // HEAD is GET without the body (axum answers it from the GET route).
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let Some(rule) = rule_for(&method, &path) else {
        let allowed = endpoints::methods_of(&path);
        if allowed.is_empty() {
            // Routed but missing from the table: a programming error, refused closed.
            tracing::error!(method = %request.method(), %path, "endpoint has no access rule; refusing");
            return Err(ApiError::internal());
        }
        return Err(ApiError::method_not_allowed(&allowed));
    };
    // Signed in: one's own session, whatever the role holds (a monitoring account holds no
    // reference data, and still has a session).
    let permission = match rule {
        Rule::Public => return Ok(()),
        Rule::SignedIn => None,
        Rule::Requires(p) => Some(p),
    };
    let now = state.clock.now();
    let (user, credential, token_role) = authenticate(state, request.headers()).await?;
    let role = token_role.unwrap_or(user.role);
    if let Credential::Session { csrf_token, .. } = &credential {
        let safe = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        let sent = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !safe && !constant_time_eq(sent, csrf_token) {
            return Err(ApiError::csrf());
        }
    }
    if let Some(permission) = permission.filter(|p| grant(role, *p).is_none()) {
        // Refusals are on the trail too: a pattern of them is what a reviewer looks for.
        let attempted = format!("{} {path}", request.method());
        state
            .store
            .append_audit(&refusal_entry(
                now,
                &user.username,
                role,
                attempted,
                "endpoint",
                client_addr(request.extensions()),
            ))
            .await?;
        return Err(ApiError::forbidden(role, permission));
    }
    let break_glass_reason = match request.headers().get(BREAK_GLASS_HEADER) {
        None => None,
        Some(v) => {
            let reason = v.to_str().map(str::trim).unwrap_or_default();
            if reason.chars().count() < 10 || reason.chars().count() > 500 {
                return Err(ApiError::bad_request(
                    BREAK_GLASS_HEADER,
                    "give the clinical reason in 10-500 printable characters",
                ));
            }
            Some(reason.to_string())
        }
    };
    let caller = Caller {
        principal: Principal {
            username: user.username,
            role,
            client_addr: client_addr(request.extensions()),
            break_glass_reason,
            via_message: None,
            via_claim: None,
        },
        credential,
    };
    request.extensions_mut().insert(caller);
    Ok(())
}

/// The audit row of a refusal for the caller's role: a pattern of them is what a reviewer looks
/// for, whether the door was an endpoint or a page.
pub(crate) fn refusal_entry(
    at: chrono::DateTime<chrono::Utc>,
    username: &str,
    role: Role,
    attempted: String,
    resource_type: &str,
    client_addr: String,
) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at,
        username: username.to_string(),
        role: role.as_str().to_string(),
        action: attempted,
        resource_type: resource_type.into(),
        resource_id: None,
        patient_id: None,
        client_addr,
        outcome: "denied".into(),
        break_glass_reason: None,
        via_message: None,
        via_claim: None,
    }
}

/// The user behind a bearer token or session cookie, if it is live. A token may carry a
/// narrower role than its user.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(seldinger_store::User, Credential, Option<Role>), ApiError> {
    let bearer;
    let cookie;
    let presented = if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        bearer = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthenticated)?;
        Presented::Bearer(bearer)
    } else {
        cookie = session_cookie(headers).ok_or_else(ApiError::unauthenticated)?;
        // A screen refreshing itself is not someone at it.
        let background = headers
            .get(BACKGROUND_HEADER)
            .is_some_and(|v| v.as_bytes() == b"background");
        Presented::Session {
            cookie: &cookie,
            background,
        }
    };
    let known = state
        .app
        .authenticate(presented, state.auth_policy.session_idle)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    if known.limits.is_some() {
        // Its scopes are FHIR's: on this API they would mean nothing, so it opens nothing here.
        return Err(ApiError::scoped_token());
    }
    let token_role = match known.credential {
        Credential::ApiToken { .. } => Some(known.role),
        Credential::Session { .. } => None,
    };
    Ok((known.user, known.credential, token_role))
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
}

/// A cookie's value from the request's Cookie headers.
pub(crate) fn cookie_value(headers: &HeaderMap, cookie_name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie_name)
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
mod forwarded_tests {
    use super::forwarded_for;
    use std::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn the_client_is_the_rightmost_address_no_trusted_proxy_wrote() {
        let proxy = ip("10.0.0.1");
        let trusted = [proxy, ip("10.0.0.2")];
        let client = |hops: &[&str]| forwarded_for(proxy, &trusted, hops);
        assert_eq!(client(&["203.0.113.7"]), ip("203.0.113.7"));
        // What the client wrote itself, left of the real hop, is not believed.
        assert_eq!(client(&["198.51.100.1", "203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(
            client(&["198.51.100.1", "203.0.113.7", "10.0.0.2"]),
            ip("203.0.113.7")
        );
        // Proxies that append address:port, IPv4 or IPv6.
        assert_eq!(
            client(&["198.51.100.1", "203.0.113.7:51234"]),
            ip("203.0.113.7")
        );
        assert_eq!(client(&["[2001:db8::7]:443"]), ip("2001:db8::7"));
        assert_eq!(client(&["[2001:db8::7]"]), ip("2001:db8::7"));
        // An entry that is no address ends the walk: nothing left of it is believed.
        assert_eq!(client(&["198.51.100.1", "unknown"]), proxy);
        assert_eq!(
            client(&["198.51.100.1", "_hidden", "10.0.0.2"]),
            ip("10.0.0.2")
        );
        assert_eq!(client(&["198.51.100.1", ""]), proxy);
        // No header, or only trusted proxies: the nearest of them.
        assert_eq!(client(&[]), proxy);
        assert_eq!(client(&["10.0.0.2"]), ip("10.0.0.2"));
    }
}
