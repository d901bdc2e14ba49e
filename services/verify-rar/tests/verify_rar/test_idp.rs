//! Stand-in for the identity provider (to be swapped for the real idp once it is ready): real
//! ES256 keys, `/jwks` and RFC 7662 `/introspect` on a port-0 listener, T2-shaped delegated
//! tokens, and a switch that marks a session revoked. Only this module knows it is not the idp.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use kit::{
    claims::{AccessClaims, Actor, Audience, TYP_ACCESS},
    jwt::SigningKey,
};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "verify-rar";
pub const CLIENT_SECRET: &str = "verify-rar-dev-secret";
const BANKING: &str = "spiffe://demo.local/agent/banking";
const CONCIERGE: &str = "spiffe://demo.local/agent/concierge";

#[derive(Clone)]
pub struct TestIdp {
    pub url: String,
    key: SigningKey,
    revoked: Arc<Mutex<HashSet<String>>>,
}

impl TestIdp {
    pub async fn start() -> Self {
        let key = SigningKey::generate(format!("test-{}", kit::random_id(4))).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let idp = Self {
            url,
            key,
            revoked: Arc::default(),
        };
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/introspect", post(introspect))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        idp
    }

    /// Ends a session: introspection answers `active: false` for its tokens from now on.
    pub fn revoke_session(&self, sid: &str) {
        self.revoked.lock().unwrap().insert(sid.to_owned());
    }

    /// The claims of a T2 token for `email` in session `sid` carrying `rar`.
    pub fn claims(&self, email: &str, sid: &str, rar: Value) -> AccessClaims {
        let now = kit::now_secs();
        AccessClaims {
            iss: self.url.clone(),
            sub: format!("user-{email}"),
            aud: Audience::one("verify-rar"),
            exp: now + 300,
            iat: now,
            jti: kit::random_id(12),
            sid: Some(sid.to_owned()),
            client_id: None,
            scope: None,
            email: Some(email.to_owned()),
            acr: None,
            auth_time: Some(now),
            act: Some(Actor::nest(BANKING, Some(&Actor::nest(CONCIERGE, None)))),
            may_act: None,
            authorization_details: Some(serde_json::from_value(rar).unwrap()),
            approval_id: Some(format!("appr-{}", kit::random_id(6))),
        }
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        self.key.sign(TYP_ACCESS, claims).unwrap()
    }

    /// A T2 token for `email` whose RAR is `business` plus read access to `creds/<role>`.
    pub fn t2(
        &self,
        email: &str,
        sid: &str,
        business: Value,
        role: &str,
    ) -> (String, AccessClaims) {
        let rar = json!([business, {"type": "vault:path_access", "locations": [format!("verify-rar/creds/{role}")], "actions": ["read"]}]);
        let claims = self.claims(email, sid, rar);
        (self.sign(&claims), claims)
    }
}

pub fn transfer_rar(value: &str, source: &str, destination: &str) -> Value {
    json!({"type": "urn:smt:agent:banking", "operationDetails": {
        "action": "transfer_funds", "amount": {"value": value, "currency": "USD"},
        "source": source, "destination": destination}})
}

async fn jwks(State(idp): State<TestIdp>) -> Json<Value> {
    Json(serde_json::to_value(kit::jwks::publish([&idp.key])).unwrap())
}

async fn introspect(
    State(idp): State<TestIdp>,
    headers: HeaderMap,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, StatusCode> {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let token = form.get("token").ok_or(StatusCode::BAD_REQUEST)?;
    let Ok((_, claims)) = kit::jwt::decode_unverified(token) else {
        return Ok(Json(json!({"active": false})));
    };
    let sid = claims["sid"].as_str().unwrap_or_default();
    let live = !idp.revoked.lock().unwrap().contains(sid)
        && claims["exp"].as_i64().unwrap_or(0) > kit::now_secs();
    if !live {
        return Ok(Json(json!({"active": false})));
    }
    Ok(Json(json!({
        "active": true, "sid": sid, "sub": claims["sub"], "act": claims["act"],
        "authorization_details": claims["authorization_details"], "exp": claims["exp"],
    })))
}
