//! `spawn_app`: the real API on a loopback port over a fresh ledger (SQLite or PostgreSQL),
//! trusting an RSA and an EC test key generated at run time, plus token and request helpers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ledger::{Ledger, LedgerSettings, MoneyRules};
use online_api::auth::{JwksSource, Verifier, VerifierSettings};
use online_api::{Limits, app};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

pub const ISSUER: &str = "https://idp.example.test/";
pub const AUDIENCE: &str = "recaudo-api";
pub const ALL_SCOPES: &str = "sales:write sales:read payments:write balances:read cards:write settlements:read exceptions:read \
    exceptions:write webhooks:write";

pub struct Keys {
    pub rsa_private_pem: String,
    pub rsa_public_pem: String,
    pub ec_pkcs8: Vec<u8>,
    pub jwks: JwkSet,
}

/// Test keys, made once per test binary: none is ever committed.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand::thread_rng();
        let rsa = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
        let public = rsa.to_public_key();
        let ec_pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap()
                .as_ref()
                .to_vec();
        let ec = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &ec_pkcs8,
            &SystemRandom::new(),
        )
        .unwrap();
        let point = ec.public_key().as_ref();
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let jwks = serde_json::from_value(json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
             "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())},
            {"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256",
             "x": b64(&point[1..33]), "y": b64(&point[33..65])},
        ]}))
        .unwrap();
        Keys {
            rsa_private_pem: rsa.to_pkcs1_pem(LineEnding::LF).unwrap().to_string(),
            rsa_public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
            ec_pkcs8,
            jwks,
        }
    })
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Valid claims for `operator`, to be bent by each test.
pub fn claims(operator: &str, scope: &str) -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": format!("client-{operator}"),
        "operator_id": operator, "scope": scope,
        "iat": now(), "exp": now() + 600,
    })
}

pub fn rs256(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(keys().rsa_private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub fn es256(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&keys().ec_pkcs8)).unwrap()
}

pub fn token(operator: &str) -> String {
    rs256(&claims(operator, ALL_SCOPES))
}

pub struct TestApp {
    pub base: String,
    pub ledger: Arc<dyn Ledger>,
    pub http: reqwest::Client,
    _db: testbed::TestLedger,
}

pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn limits() -> Limits {
    Limits {
        body_bytes: 16 * 1024,
        page_size_max: 500,
        request_timeout: std::time::Duration::from_secs(10),
        rate_per_second: 1_000,
        rate_burst: 1_000,
    }
}

/// The API on a random loopback port with operators OPA and OPB registered; `None` when
/// PostgreSQL is not reachable outside CI.
pub async fn spawn_app(backend: Backend, limits: Limits) -> Option<TestApp> {
    let settings = LedgerSettings {
        max_connections: 16,
        ..LedgerSettings::default()
    };
    let db = match backend {
        Backend::Sqlite => testbed::sqlite_ledger(settings).await,
        Backend::Postgres => testbed::postgres_ledger(settings).await?,
    };
    for id in ["OPA", "OPB"] {
        db.ledger
            .add_operator(&testbed::operator(id))
            .await
            .unwrap();
    }
    let verifier = Verifier::new(VerifierSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        algorithms: vec![Algorithm::RS256, Algorithm::ES256],
        source: JwksSource::Static(keys().jwks.clone()),
    })
    .await
    .unwrap();
    let router = app(
        db.ledger.clone(),
        verifier,
        MoneyRules::new(ledger::Currency::COP),
        limits,
        events::ssrf::Policy::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Some(TestApp {
        base: format!("http://{addr}"),
        ledger: db.ledger.clone(),
        http: reqwest::Client::new(),
        _db: db,
    })
}

pub fn sale_body(reference: &str, card: &str, amount: &str) -> Value {
    json!({"operator_ref": reference, "card_id": card, "amount": amount,
           "currency": "COP", "point_of_sale": "POS-1"})
}

pub fn payment_body(reference: &str, card: &str, amount: &str) -> Value {
    json!({"payment_ref": reference, "card_id": card, "amount": amount, "currency": "COP",
           "route_id": "T13", "transport_operator_id": "TRANSMI"})
}

impl TestApp {
    pub async fn post(
        &self,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn sell(&self, operator: &str, reference: &str, card: &str, amount: &str) -> Value {
        let r = self
            .post(
                "/v1/sales",
                &token(operator),
                Some(&format!("k-{operator}-{reference}")),
                &sale_body(reference, card, amount),
            )
            .await;
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    pub async fn balance(&self, card: &str) -> String {
        let r = self
            .get(&format!("/v1/cards/{card}/balance"), &token("OPA"))
            .await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["balance"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Journal transactions so far; with `check_invariants` proving the journal sound.
    pub async fn transactions(&self) -> i64 {
        let report = self.ledger.check_invariants().await.unwrap();
        assert!(report.is_sound(), "{report:?}");
        testbed::events::assert_valid(&*self.ledger).await;
        report.transactions
    }
}

/// Defines `mod sqlite` and `mod postgres` with one test per scenario `async fn(TestApp)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let app = $crate::support::spawn_app($crate::support::Backend::Sqlite, $crate::support::limits())
                        .await.unwrap();
                    super::$scenario(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(app) = $crate::support::spawn_app($crate::support::Backend::Postgres, $crate::support::limits()).await
                    else { return };
                    super::$scenario(app).await;
                }
            )*
        }
    };
}
