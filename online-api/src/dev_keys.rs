//! The development key pair: with no identity provider configured, the API signs and
//! verifies its own ES256 tokens with a key kept under `var/dev-jwt/`. Never used when
//! `RECAUDO_JWT_JWKS` is set.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::Serialize;

pub const DEV_ISSUER: &str = "recaudo-dev";
pub const DEV_AUDIENCE: &str = "recaudo-api";
pub const DEV_KID: &str = "recaudo-dev";

pub struct DevKeys {
    pkcs8: Vec<u8>,
    pub jwks: JwkSet,
}

fn dir() -> PathBuf {
    PathBuf::from("var/dev-jwt")
}

impl DevKeys {
    /// Loads the key pair under `var/dev-jwt/`, creating it on first use.
    pub fn load_or_create() -> anyhow::Result<DevKeys> {
        Self::load_or_create_in(&dir())
    }

    pub fn load_or_create_in(dir: &Path) -> anyhow::Result<DevKeys> {
        let key_path = dir.join("signing-key.pkcs8.b64");
        let pkcs8 = if key_path.exists() {
            STANDARD.decode(std::fs::read_to_string(&key_path)?.trim())?
        } else {
            let doc = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|_| anyhow::anyhow!("could not generate a key pair"))?;
            std::fs::create_dir_all(dir)?;
            write_private(&key_path, STANDARD.encode(doc.as_ref()).as_bytes())?;
            doc.as_ref().to_vec()
        };
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|_| {
            anyhow::anyhow!("the development key in {} is not valid", key_path.display())
        })?;
        let point = pair.public_key().as_ref();
        let jwks: JwkSet = serde_json::from_value(serde_json::json!({
            "keys": [{
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": DEV_KID,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }]
        }))?;
        std::fs::write(dir.join("jwks.json"), serde_json::to_vec_pretty(&jwks)?)?;
        Ok(DevKeys { pkcs8, jwks })
    }

    /// A token for `operator` with `scopes`, valid for `ttl_secs`.
    pub fn mint(&self, operator: &str, scopes: &str, ttl_secs: i64) -> anyhow::Result<String> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            aud: &'a str,
            sub: String,
            operator_id: &'a str,
            scope: &'a str,
            iat: i64,
            exp: i64,
        }
        let now = chrono::Utc::now().timestamp();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(DEV_KID.into());
        Ok(jsonwebtoken::encode(
            &header,
            &Claims {
                iss: DEV_ISSUER,
                aud: DEV_AUDIENCE,
                sub: format!("dev:{operator}"),
                operator_id: operator,
                scope: scopes,
                iat: now,
                exp: now + ttl_secs,
            },
            &EncodingKey::from_ec_der(&self.pkcs8),
        )?)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(bytes)
}
