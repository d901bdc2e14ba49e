//! The transmitter's metadata (SSF §7, CAEP interoperability profile) and its key set.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::Transmitter;

#[tokio::test]
async fn metadata_names_every_endpoint_the_caep_profile_requires() {
    let t = Transmitter::spawn().await;
    let resp = t
        .http
        .get(format!("{}/.well-known/ssf-configuration", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let m: Value = resp.json().await.unwrap();
    assert_eq!(m["spec_version"], "1_0");
    assert_eq!(m["issuer"], t.url.as_str());
    assert_eq!(m["jwks_uri"], format!("{}/jwks", t.url));
    assert_eq!(
        m["delivery_methods_supported"],
        serde_json::json!(["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"])
    );
    for endpoint in [
        "configuration_endpoint",
        "status_endpoint",
        "add_subject_endpoint",
        "remove_subject_endpoint",
        "verification_endpoint",
    ] {
        let url = m[endpoint]
            .as_str()
            .unwrap_or_else(|| panic!("{endpoint}: {m}"));
        assert!(url.starts_with(&t.url), "{endpoint} = {url}");
    }
    assert!(
        m["authorization_schemes"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"spec_urn": "urn:ietf:rfc:6749"}))
    );
    assert_eq!(m["default_subjects"], "ALL");
    let events: Vec<&str> = m["events_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for name in [
        "session-revoked",
        "credential-change",
        "token-claims-change",
        "assurance-level-change",
    ] {
        assert!(
            events.contains(
                &format!("https://schemas.openid.net/secevent/caep/event-type/{name}").as_str()
            ),
            "{name} missing from {events:?}"
        );
    }
    // Empty arrays are left out (SSF §7.1).
    assert!(m.get("critical_subject_members").is_none());
    // Only the issuer's own path is served.
    let other = t
        .http
        .get(format!("{}/.well-known/ssf-configuration/tenant2", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_key_set_holds_one_rs256_key_of_at_least_2048_bits() {
    let t = Transmitter::spawn().await;
    let jwks: Value = t
        .http
        .get(format!("{}/jwks", t.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["alg"], "RS256");
    assert_eq!(k["use"], "sig");
    assert!(k["kid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(k.get("d").is_none(), "no private member is published");
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(k["n"].as_str().unwrap())
        .unwrap();
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    assert!(bits >= 2048, "modulus has {bits} bits");
}
