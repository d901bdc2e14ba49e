//! Malformed input at every public endpoint of the running platform: wrong content types,
//! invalid JSON, missing, extra and mistyped fields, oversized bodies and unicode edge cases.
//! Each must be answered in its protocol's own error shape: never a 5xx, never a panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

use e2e::Platform;
use reqwest::Method;
use serde_json::{Value, json};

/// The error shape a protocol promises.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// RFC 6749 §5.2: `{"error": "<code>", ...}`.
    OAuth,
    /// Our APIs: `{"error": {"code", "message"}}`.
    Api,
    /// RFC 7644 §3.12, `application/scim+json`.
    Scim,
    /// Microsoft Graph: `{"error": {"code", "message", "innerError"}}`.
    Graph,
    /// Vault: `{"errors": [...]}` with `Content-Type: application/json` exactly.
    Vault,
    /// JSON-RPC 2.0: `{"jsonrpc": "2.0", "error": {"code", "message"}}`.
    JsonRpc,
}

struct Case {
    what: String,
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    shape: Shape,
}

fn case(what: &str, method: Method, url: String, shape: Shape) -> Case {
    Case {
        what: what.into(),
        method,
        url,
        headers: vec![],
        body: vec![],
        shape,
    }
}

impl Case {
    fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers.push(("content-type", content_type.into()));
        self.body = body.into();
        self
    }
}

const FORM: &str = "application/x-www-form-urlencoded";
/// Bodies past every service's limit.
const OVERSIZED: usize = 1024 * 1024;
const JSON: &str = "application/json";

async fn check(http: &reqwest::Client, c: Case) {
    let mut req = http.request(c.method.clone(), &c.url).body(c.body.clone());
    for (k, v) in &c.headers {
        req = req.header(*k, v);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        // A server may refuse an oversized body without reading it and close the connection
        // while the client is still sending: the client then sees a broken pipe instead of the
        // error. That is a refusal too; every service's health is checked once all cases ran.
        Err(_) if c.body.len() > OVERSIZED => return,
        Err(e) => panic!("{}: no answer: {e}", c.what),
    };
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.unwrap();
    assert!(!status.is_server_error(), "{}: {status} {text}", c.what);
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{}: {status} is not JSON: {text:?}", c.what));
    let ok = match c.shape {
        Shape::OAuth => status.is_client_error() && body["error"].is_string(),
        Shape::Api => {
            status.is_client_error()
                && body["error"]["code"].is_string()
                && body["error"]["message"].is_string()
        }
        Shape::Scim => {
            status.is_client_error()
                && content_type.starts_with("application/scim+json")
                && body["schemas"] == json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        }
        Shape::Graph => {
            status.is_client_error()
                && body["error"]["code"].is_string()
                && body["error"]["message"].is_string()
        }
        Shape::Vault => {
            status.is_client_error()
                && content_type == "application/json"
                && body["errors"].is_array()
        }
        Shape::JsonRpc => {
            body["jsonrpc"] == "2.0"
                && body["error"]["code"].is_i64()
                && body["error"]["message"].is_string()
        }
    };
    assert!(
        ok,
        "{}: expected the {:?} error shape, got {status} {content_type} {text}",
        c.what, c.shape
    );
}

#[tokio::test]
async fn every_public_endpoint_answers_malformed_input_in_its_protocols_error_shape() {
    let p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let urls = p.stack.urls.clone();
    let idp = urls.idp.clone();
    let admin = p.stack.admin_token.clone();
    let huge = vec![b'a'; 3 * 1024 * 1024];
    let invalid_utf8: Vec<u8> = vec![b'{', 0xff, 0xfe, b'}'];
    let rtl = "alice\u{202e}@example.com\u{0}";
    let basic = |id: &str, secret: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    use Method as M;
    use Shape::*;
    let cases = vec![
        // ---- OAuth: token, introspection, revocation, CIBA ----
        case("token: JSON instead of a form", M::POST, format!("{idp}/token"), OAuth).body(JSON, r#"{"grant_type":"refresh_token"}"#),
        case("token: no content type", M::POST, format!("{idp}/token"), OAuth).body("", "grant_type=refresh_token"),
        case("token: invalid UTF-8", M::POST, format!("{idp}/token"), OAuth).body(FORM, invalid_utf8.clone()),
        case("token: 3 MB body", M::POST, format!("{idp}/token"), OAuth).body(FORM, huge.clone()),
        case("token: repeated grant_type", M::POST, format!("{idp}/token"), OAuth).body(FORM, "grant_type=a&grant_type=b"),
        case("token: exchange with garbage tokens", M::POST, format!("{idp}/token"), OAuth).body(
            FORM,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=%00%E2%80%AE&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&actor_token=x.y.z&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&audience=banking&authorization_details=%5B%7B%7D%5D",
        ),
        case("token: exchange with authorization_details of the wrong type", M::POST, format!("{idp}/token"), OAuth).body(
            FORM,
            format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&actor_token=x&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&audience=x&authorization_details=%7B%22type%22%3A5%7D",
                alice.access_token
            ),
        ),
        case("introspect: no client authentication", M::POST, format!("{idp}/introspect"), OAuth).body(FORM, "token=abc"),
        case("introspect: JSON body", M::POST, format!("{idp}/introspect"), OAuth)
            .header("authorization", basic("verify-rar", "verify-rar-dev-secret"))
            .body(JSON, r#"{"token":"abc"}"#),
        case("revoke: missing token", M::POST, format!("{idp}/revoke"), OAuth).header("authorization", basic("web", e2e::WEB_SECRET)).body(FORM, "x=1"),
        case("CIBA: no login_hint", M::POST, format!("{idp}/bc-authorize"), OAuth)
            .header("authorization", basic("ciba-demo", "ciba-demo-dev-secret"))
            .body(FORM, "scope=openid"),
        case("CIBA: authorization_details not JSON", M::POST, format!("{idp}/bc-authorize"), OAuth)
            .header("authorization", basic("ciba-demo", "ciba-demo-dev-secret"))
            .body(FORM, "scope=openid&login_hint=alice%40example.com&authorization_details=%5Bnope"),
        case("CIBA: unicode login_hint", M::POST, format!("{idp}/bc-authorize"), OAuth)
            .header("authorization", basic("ciba-demo", "ciba-demo-dev-secret"))
            .body(FORM, format!("scope=openid&login_hint={}", url::form_urlencoded::byte_serialize(rtl.as_bytes()).collect::<String>())),
        // ---- our APIs: approvals, sessions, registry, events ----
        case("approvals: garbage bearer", M::GET, format!("{idp}/api/approvals"), Api).header("authorization", "Bearer \u{1F600}"),
        case("approve: unknown id", M::POST, format!("{idp}/api/approvals/%00nope/approve"), Api).header("authorization", format!("Bearer {}", alice.device_token)),
        case("sessions: invalid JSON body", M::POST, format!("{idp}/api/sessions/{}/revoke", alice.sid), Api)
            .header("authorization", format!("Bearer {admin}"))
            .body(JSON, "{\"reason\":"),
        case("registry: wrong types", M::PUT, format!("{idp}/admin/agents/x"), Api)
            .header("authorization", format!("Bearer {admin}"))
            .body(JSON, r#"{"name": 5, "spiffe_id": []}"#),
        case("registry: not JSON", M::PUT, format!("{idp}/admin/agents/x"), Api).header("authorization", format!("Bearer {admin}")).body(JSON, invalid_utf8.clone()),
        case("session: NUL in the id", M::POST, format!("{idp}/api/sessions/%00/revoke"), Api).header("authorization", format!("Bearer {admin}")),
        case("registry: NUL in the name", M::GET, format!("{idp}/admin/agents/a%00b"), Api).header("authorization", format!("Bearer {admin}")),
        case("events: limit not a number", M::GET, format!("{idp}/api/events?limit=ten"), Api).header("authorization", format!("Bearer {admin}")),
        case("events: unknown filter", M::GET, format!("{idp}/api/events?user=x"), Api).header("authorization", format!("Bearer {admin}")),
        case("unknown idp endpoint", M::GET, format!("{idp}/nope"), Api),
        // ---- SCIM ----
        case("SCIM: no token", M::POST, format!("{idp}/scim/v2/Users"), Scim).body("application/scim+json", "{"),
        case("SCIM: the user's own token", M::POST, format!("{idp}/scim/v2/Users"), Scim)
            .header("authorization", format!("Bearer {}", alice.access_token))
            .body("application/scim+json", r#"{"userName": 7}"#),
        case("SCIM: 3 MB body", M::POST, format!("{idp}/scim/v2/Users"), Scim).body("application/scim+json", huge.clone()),
        // ---- Graph ----
        case("Graph: no token", M::POST, format!("{}/v1.0/users", urls.graph), Graph).body(JSON, "{}"),
        case("Graph: garbage token, invalid JSON", M::POST, format!("{}/v1.0/users", urls.graph), Graph).header("authorization", "Bearer x").body(JSON, invalid_utf8.clone()),
        case("Graph: 3 MB body", M::POST, format!("{}/v1.0/users", urls.graph), Graph).body(JSON, huge.clone()),
        case("Graph: unknown query option", M::GET, format!("{}/v1.0/users?$expand=manager", urls.graph), Graph).header("authorization", format!("Bearer {}", alice.access_token)),
        // ---- Vault API ----
        case("Vault login: invalid JSON", M::POST, format!("{}/v1/auth/jwt/login", urls.verify_rar), Vault).body(JSON, "{\"jwt\":"),
        case("Vault login: wrong types", M::POST, format!("{}/v1/auth/jwt/login", urls.verify_rar), Vault).body(JSON, r#"{"jwt": 5, "role": []}"#),
        case("Vault login: unicode jwt", M::POST, format!("{}/v1/auth/jwt/login", urls.verify_rar), Vault).body(JSON, json!({"jwt": rtl}).to_string()),
        case("Vault login: 3 MB body", M::POST, format!("{}/v1/auth/jwt/login", urls.verify_rar), Vault).body(JSON, huge.clone()),
        case("Vault creds: NUL in the role", M::GET, format!("{}/v1/verify-rar/creds/a%00b", urls.verify_rar), Vault).header("x-vault-token", "x"),
        case("Vault creds: no token", M::GET, format!("{}/v1/verify-rar/creds/banking-transfers", urls.verify_rar), Vault),
        case("Vault revoke: no token", M::PUT, format!("{}/v1/sys/leases/revoke", urls.verify_rar), Vault).body(JSON, r#"{"lease_id": null}"#),
        case("Vault lookup: wrong types", M::PUT, format!("{}/v1/sys/leases/lookup", urls.verify_rar), Vault).header("x-vault-token", "nope").body(JSON, r#"{"lease_id": 1}"#),
        // ---- A2A JSON-RPC ----
        case("A2A: not JSON", M::POST, format!("{}/a2a", urls.concierge), JsonRpc).body(JSON, invalid_utf8.clone()),
        case("A2A: not JSON-RPC 2.0", M::POST, format!("{}/a2a", urls.concierge), JsonRpc)
            .header("authorization", format!("Bearer {}", alice.access_token))
            .body(JSON, r#"{"jsonrpc":"1.0","id":1,"method":"SendMessage"}"#),
        case("A2A: id is an object", M::POST, format!("{}/a2a", urls.concierge), JsonRpc)
            .header("authorization", format!("Bearer {}", alice.access_token))
            .body(JSON, r#"{"jsonrpc":"2.0","id":{},"method":"GetTask"}"#),
        case("A2A: no token", M::POST, format!("{}/a2a", urls.concierge), JsonRpc).body(JSON, r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}"#),
        case("A2A: params of the wrong types", M::POST, format!("{}/a2a", urls.concierge), JsonRpc)
            .header("authorization", format!("Bearer {}", alice.access_token))
            .body(JSON, r#"{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_NOPE","parts":7}}}"#),
        case("A2A: unknown method", M::POST, format!("{}/a2a", urls.concierge), JsonRpc)
            .header("authorization", format!("Bearer {}", alice.access_token))
            .body(JSON, r#"{"jsonrpc":"2.0","id":2,"method":"message/send","params":{}}"#),
        case("A2A: 3 MB body", M::POST, format!("{}/a2a", urls.concierge), JsonRpc).body(JSON, huge.clone()),
        case("A2A: a token for another agent", M::POST, format!("{}/a2a", urls.banking), JsonRpc)
            .header("authorization", format!("Bearer {}", alice.access_token))
            .body(JSON, r#"{"jsonrpc":"2.0","id":3,"method":"GetTask","params":{"id":"x"}}"#),
    ];
    // A server may close a connection after refusing a body it did not read; fresh connections
    // keep one refusal from turning into the next case's transport error.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for c in cases {
        check(&http, c).await;
    }
    // Nothing above took a service down.
    for health in [
        format!("{idp}/health"),
        format!("{}/v1/sys/health", urls.verify_rar),
        format!("{}/health", urls.graph),
        format!("{}/health", urls.concierge),
    ] {
        assert!(
            p.http
                .get(&health)
                .send()
                .await
                .unwrap()
                .status()
                .is_success(),
            "{health} still healthy"
        );
    }
    for agent in [&urls.banking, &urls.iam, &urls.entra] {
        assert!(
            p.http
                .get(format!("{agent}/.well-known/agent-card.json"))
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
    }
}
