//! Key rotation: keys come from the configured JWKS file, an unknown `kid` reloads it, and
//! reloads are throttled so a stream of forged kids cannot hammer the identity provider.

mod support;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use online_api::auth::{JwksSource, Verifier, VerifierSettings};
use serde_json::{Value, json};
use support::*;

fn jwks_with(kids: &[(&str, &str)]) -> Value {
    let all = serde_json::to_value(&keys().jwks).unwrap();
    let keys: Vec<Value> = kids
        .iter()
        .map(|(source, kid)| {
            let mut k = all["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == *source)
                .unwrap()
                .clone();
            k["kid"] = json!(kid);
            k
        })
        .collect();
    json!({ "keys": keys })
}

fn es256_with_kid(kid: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &claims("OPA", ALL_SCOPES),
        &EncodingKey::from_ec_der(&keys().ec_pkcs8),
    )
    .unwrap()
}

#[tokio::test]
async fn an_unknown_kid_reloads_the_jwks_at_most_once_per_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks_with(&[("rsa-1", "rsa-1")]).to_string()).unwrap();
    let verifier = Verifier::new(VerifierSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        algorithms: vec![Algorithm::RS256, Algorithm::ES256],
        source: JwksSource::File(path.clone()),
    })
    .await
    .unwrap();
    assert!(verifier.verify(&token("OPA")).await.is_ok());

    // The identity provider rotates in a new key: the first token with its kid reloads.
    std::fs::write(
        &path,
        jwks_with(&[("rsa-1", "rsa-1"), ("ec-1", "ec-new")]).to_string(),
    )
    .unwrap();
    let caller = verifier.verify(&es256_with_kid("ec-new")).await.unwrap();
    assert_eq!(caller.operator.as_str(), "OPA");

    // Another new kid right after: the reload is throttled, so it is refused for now.
    std::fs::write(
        &path,
        jwks_with(&[("rsa-1", "rsa-1"), ("ec-1", "ec-new"), ("ec-1", "ec-newer")]).to_string(),
    )
    .unwrap();
    let refused = verifier
        .verify(&es256_with_kid("ec-newer"))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 401);
    assert!(verifier.verify(&es256_with_kid("ec-new")).await.is_ok());
}

#[test]
fn a_jwks_url_must_be_https_unless_loopback() {
    assert!(JwksSource::parse("http://idp.example.test/jwks.json").is_err());
    assert!(matches!(
        JwksSource::parse("https://idp.example.test/jwks.json"),
        Ok(JwksSource::Url(_))
    ));
    assert!(matches!(
        JwksSource::parse("http://127.0.0.1:9999/jwks.json"),
        Ok(JwksSource::Url(_))
    ));
    assert!(matches!(
        JwksSource::parse("/etc/recaudo/jwks.json"),
        Ok(JwksSource::File(_))
    ));
}
