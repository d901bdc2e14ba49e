//! The keys a deployment mounts (`infra/k8s/dev-keys.sh`, made with openssl outside the pods so
//! every replica loads the same ones) are the keys the services load, in their exact format.

use std::process::Command;

use kit::jwt::SigningKey;
use serde_json::Value;

#[test]
fn keys_made_for_a_deployment_load_as_the_services_load_them() {
    let dir = std::env::temp_dir().join(format!("dev-keys-{}", kit::random_id(6)));
    let out = Command::new("bash")
        .arg(e2e::workspace_root().join("infra/k8s/dev-keys.sh"))
        .arg("dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for agent in stack::launch::AGENTS {
        let key = SigningKey::load_or_generate(&dir, agent).unwrap();
        let written: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{agent}.jwk.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            written,
            serde_json::to_value(key.public_jwk()).unwrap(),
            "{agent}: the registry's JWK is the key's own, kid = its thumbprint"
        );
    }
    // The idp's key loads as it is (not regenerated), and so does the transmitter's.
    let pem = std::fs::read_to_string(dir.join("idp.key")).unwrap();
    assert_eq!(
        SigningKey::load_or_generate(&dir, "idp")
            .unwrap()
            .to_pem()
            .trim(),
        pem.trim()
    );
    let set = kit::ssf::RsaSigningKey::load_or_generate(&dir, "ssf-set").unwrap();
    assert!(set.modulus_bits() >= 2048);
    std::fs::remove_dir_all(&dir).ok();
}
