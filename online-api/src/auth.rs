//! Bearer-token authentication: JWT verification against a JWKS (a file or an https URL),
//! with a pinned set of algorithms and required claims. The operator id and scopes come
//! only from a verified token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ledger::OperatorId;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::problem::Problem;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// An unknown `kid` refreshes the key set at most this often.
const REFRESH_THROTTLE: Duration = Duration::from_secs(30);
/// Keys fetched from a URL are refreshed after this long.
const URL_KEYS_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    SalesWrite,
    SalesRead,
    PaymentsWrite,
    BalancesRead,
    CardsWrite,
    SettlementsRead,
    ExceptionsRead,
    ExceptionsWrite,
    WebhooksWrite,
}

impl Scope {
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::SalesWrite => "sales:write",
            Scope::SalesRead => "sales:read",
            Scope::PaymentsWrite => "payments:write",
            Scope::BalancesRead => "balances:read",
            Scope::CardsWrite => "cards:write",
            Scope::SettlementsRead => "settlements:read",
            Scope::ExceptionsRead => "exceptions:read",
            Scope::ExceptionsWrite => "exceptions:write",
            Scope::WebhooksWrite => "webhooks:write",
        }
    }
}

/// The authenticated operator of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub operator: OperatorId,
    /// The token's `sub`: who at the operator acts, recorded where a person's action is.
    pub subject: String,
    scopes: Vec<String>,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.scopes.iter().any(|s| s == scope.as_str()) {
            Ok(())
        } else {
            Err(Problem::insufficient_scope(scope.as_str()))
        }
    }
}

/// The claims recaudo reads. Identity providers write scopes two ways: OAuth's `scope`, one
/// space-delimited string (RFC 8693 §4.2), and a JSON array (`scp` in Okta and Entra ID,
/// `scope` in some others); every form is taken.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    operator_id: String,
    #[serde(default)]
    scope: Option<Scopes>,
    #[serde(default)]
    scp: Option<Scopes>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scopes {
    Delimited(String),
    List(Vec<String>),
}

impl Scopes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Scopes::Delimited(s) => s.split_whitespace().map(str::to_string).collect(),
            Scopes::List(v) => v,
        }
    }
}

/// Where the public keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    File(PathBuf),
    Url(reqwest::Url),
    /// Fixed keys (the development key pair, tests).
    Static(JwkSet),
}

impl JwksSource {
    /// A file path, or an https URL (plain http only for loopback addresses).
    pub fn parse(text: &str) -> Result<JwksSource, String> {
        if text.starts_with("https://") || text.starts_with("http://") {
            let url = reqwest::Url::parse(text).map_err(|e| format!("RECAUDO_JWT_JWKS: {e}"))?;
            let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            if url.scheme() != "https" && !loopback {
                return Err("RECAUDO_JWT_JWKS must be an https URL".into());
            }
            return Ok(JwksSource::Url(url));
        }
        Ok(JwksSource::File(PathBuf::from(text)))
    }
}

struct KeySet {
    keys: HashMap<String, (DecodingKey, KeyFamily)>,
    fetched_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFamily {
    Rsa,
    P256,
    Other,
}

fn family_of(alg: Algorithm) -> KeyFamily {
    match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => KeyFamily::Rsa,
        Algorithm::ES256 => KeyFamily::P256,
        _ => KeyFamily::Other,
    }
}

/// The settings tokens are checked against.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    pub issuer: String,
    pub audience: String,
    pub algorithms: Vec<Algorithm>,
    pub source: JwksSource,
}

pub struct Verifier {
    settings: VerifierSettings,
    keys: RwLock<KeySet>,
    last_refresh_attempt: Mutex<Option<Instant>>,
    client: reqwest::Client,
}

/// Parses `RS256,ES256`; only asymmetric algorithms are accepted.
pub fn parse_algorithms(text: &str) -> Result<Vec<Algorithm>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "RS256" => Ok(Algorithm::RS256),
            "ES256" => Ok(Algorithm::ES256),
            other => Err(format!(
                "RECAUDO_JWT_ALGORITHMS: {other} is not supported (RS256, ES256)"
            )),
        })
        .collect()
}

impl Verifier {
    pub async fn new(settings: VerifierSettings) -> anyhow::Result<Verifier> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let keys = load(&settings.source, &client).await?;
        anyhow::ensure!(!keys.is_empty(), "the JWKS has no usable keys");
        Ok(Verifier {
            settings,
            keys: RwLock::new(KeySet {
                keys,
                fetched_at: Instant::now(),
            }),
            last_refresh_attempt: Mutex::new(None),
            client,
        })
    }

    /// Verifies a bearer token; the error is the 401 to answer with.
    pub async fn verify(&self, token: &str) -> Result<Caller, Problem> {
        if token.len() > 8192 {
            return Err(Problem::unauthorized("the token is too long"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Problem::unauthorized("the token is malformed"))?;
        if !self.settings.algorithms.contains(&header.alg) {
            return Err(Problem::unauthorized(
                "the token's algorithm is not accepted",
            ));
        }
        let kid = header.kid.ok_or_else(|| {
            Problem::unauthorized(
                "the token's header has no key id (kid): the verifying key is chosen by it",
            )
        })?;
        let key = self
            .key(&kid)
            .await
            .ok_or_else(|| Problem::unauthorized("the token's key id is unknown"))?;
        if key.1 != family_of(header.alg) {
            return Err(Problem::unauthorized(
                "the token's algorithm does not match its key",
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.0, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            Problem::unauthorized(match e.kind() {
                K::ExpiredSignature => "the token has expired",
                K::ImmatureSignature => "the token is not valid yet",
                K::InvalidAudience => "the token is for another audience",
                K::InvalidIssuer => "the token is from another issuer",
                K::InvalidSignature => "the token's signature is not valid",
                K::MissingRequiredClaim(claim) => {
                    return Problem::unauthorized(&format!(
                        "the token lacks the required claim {claim:?}"
                    ));
                }
                // The claims did not have the types recaudo needs.
                K::Json(e) => {
                    let text = e.to_string();
                    if let Some(claim) = text
                        .strip_prefix("missing field `")
                        .and_then(|rest| rest.split('`').next())
                    {
                        return Problem::unauthorized(&format!(
                            "the token lacks the required claim {claim:?}"
                        ));
                    }
                    return Problem::unauthorized(&format!(
                        "the token's claims are not as required ({}): operator_id and sub are \
                         strings, scope a space-delimited string or an array of strings",
                        text.split(" at line").next().unwrap_or_default()
                    ));
                }
                _ => "the token is not valid",
            })
        })?;
        let operator = OperatorId::parse(&data.claims.operator_id)
            .map_err(|_| Problem::unauthorized("the token's operator_id is not valid"))?;
        Ok(Caller {
            operator,
            subject: data.claims.sub.clone(),
            scopes: data
                .claims
                .scope
                .into_iter()
                .chain(data.claims.scp)
                .flat_map(Scopes::into_vec)
                .collect(),
        })
    }

    async fn key(&self, kid: &str) -> Option<(DecodingKey, KeyFamily)> {
        {
            let set = self.keys.read().await;
            let fresh = !matches!(self.settings.source, JwksSource::Url(_))
                || set.fetched_at.elapsed() < URL_KEYS_TTL;
            if let Some(k) = set.keys.get(kid)
                && fresh
            {
                return Some(k.clone());
            }
        }
        self.refresh().await;
        self.keys.read().await.keys.get(kid).cloned()
    }

    /// Reloads the key set, at most once per throttle period; failures keep the old keys.
    async fn refresh(&self) {
        let mut last = self.last_refresh_attempt.lock().await;
        if last.is_some_and(|t| t.elapsed() < REFRESH_THROTTLE) {
            return;
        }
        *last = Some(Instant::now());
        match load(&self.settings.source, &self.client).await {
            Ok(keys) if !keys.is_empty() => {
                *self.keys.write().await = KeySet {
                    keys,
                    fetched_at: Instant::now(),
                };
            }
            Ok(_) => tracing::warn!("the refreshed JWKS has no usable keys; keeping the old ones"),
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the JWKS; keeping the old keys")
            }
        }
    }
}

async fn load(
    source: &JwksSource,
    client: &reqwest::Client,
) -> anyhow::Result<HashMap<String, (DecodingKey, KeyFamily)>> {
    let set: JwkSet = match source {
        JwksSource::File(path) => serde_json::from_slice(&tokio::fs::read(path).await?)?,
        JwksSource::Url(url) => {
            client
                .get(url.clone())
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?
        }
        JwksSource::Static(set) => set.clone(),
    };
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyFamily::Rsa,
            AlgorithmParameters::EllipticCurve(ec)
                if ec.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
            {
                KeyFamily::P256
            }
            _ => continue,
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid, (key, family));
        }
    }
    Ok(keys)
}
