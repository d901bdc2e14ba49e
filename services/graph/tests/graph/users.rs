//! The happy paths: an agent acting for alice creates sarah, reads her back, lists users.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{claims_of, entra, new_user, spawn_app};

const SARAH: &str = "sarah.smith@example.com";

#[tokio::test]
async fn create_sarah_then_read_her_back_by_upn_and_id() {
    let mut app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;

    // A create is tier 2: the helper approves it on alice's phone.
    let create = app
        .idp
        .graph_token(&alice, &entra("graph_user_create", Some(SARAH)))
        .await;
    let created_claims = claims_of(&create);
    assert!(
        created_claims.approval_id.is_some(),
        "the token was minted under an approval"
    );
    let resp = app.create(&create, &new_user(SARAH, "Sarah Smith")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let user: Value = resp.json().await.unwrap();
    let id = user["id"].as_str().unwrap().to_owned();
    assert!(uuid_like(&id), "{id} should be a GUID");
    assert_eq!(location, format!("{}/v1.0/users/{id}", app.url));
    assert_eq!(user["userPrincipalName"], SARAH);
    assert_eq!(user["displayName"], "Sarah Smith");
    assert_eq!(user["mail"], SARAH);
    assert_eq!(user["accountEnabled"], true);
    assert!(user["createdDateTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        user["@odata.context"],
        format!("{}/v1.0/$metadata#users/$entity", app.url)
    );
    assert!(
        user.get("passwordProfile").is_none(),
        "no password is ever returned"
    );

    // The event names the whole chain and joins the row by jti.
    let e = app.next_event().await;
    assert_eq!(e["type"], "graph_user_create");
    assert_eq!(e["outcome"], "allowed");
    assert_eq!(e["user"], "alice@example.com");
    assert_eq!(e["session"], alice.sid.as_str());
    assert_eq!(
        e["actor_chain"],
        serde_json::json!(["entra", "concierge", "alice@example.com"])
    );
    assert_eq!(e["tool"], "graph_user_create");
    assert_eq!(e["jti"], created_claims.jti.as_str());
    assert_eq!(
        e["approval_id"].as_str(),
        created_claims.approval_id.as_deref()
    );
    assert_eq!(e["rar_summary"], format!("Create Entra user {SARAH}"));
    assert_eq!(
        app.created_by_jti(SARAH).await.as_deref(),
        Some(created_claims.jti.as_str())
    );

    // Reads are tier 1: no approval. By UPN, in any case, and by id.
    let read = app
        .idp
        .graph_token(&alice, &entra("graph_user_get", Some(SARAH)))
        .await;
    assert!(claims_of(&read).approval_id.is_none());
    for key in [SARAH.to_owned(), SARAH.to_uppercase(), id.clone()] {
        let resp = app.get(&format!("/v1.0/users/{key}"), Some(&read)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{key}");
        let got: Value = resp.json().await.unwrap();
        assert_eq!(got["id"], id.as_str());
        assert_eq!(got["userPrincipalName"], SARAH);
        let e = app.next_event().await;
        assert_eq!(
            (&e["type"], &e["outcome"]),
            (&"graph_user_get".into(), &"allowed".into())
        );
    }
}

#[tokio::test]
async fn list_pages_and_filters_by_upn() {
    let mut app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;
    for (upn, name) in [
        (SARAH, "Sarah Smith"),
        ("adele.vance@example.com", "Adele Vance"),
    ] {
        // The first write of the session is approved; the second rides on that approval.
        let t = app
            .idp
            .graph_token(&alice, &entra("graph_user_create", Some(upn)))
            .await;
        assert_eq!(
            app.create(&t, &new_user(upn, name)).await.status(),
            StatusCode::CREATED
        );
        app.next_event().await;
    }
    let list = app
        .idp
        .graph_token(&alice, &entra("graph_user_list", None))
        .await;

    let all: Value = app
        .get("/v1.0/users", Some(&list))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        all["@odata.context"],
        format!("{}/v1.0/$metadata#users", app.url)
    );
    let upns: Vec<&str> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap())
        .collect();
    assert_eq!(upns, ["adele.vance@example.com", SARAH]);
    assert!(all.get("@odata.nextLink").is_none());
    let e = app.next_event().await;
    assert_eq!(
        (&e["type"], &e["outcome"]),
        (&"graph_user_list".into(), &"allowed".into())
    );
    assert_eq!(e["actor_chain"][0], "entra");

    // One a page: the next link leads to the rest.
    let first: Value = app
        .get("/v1.0/users?$top=1", Some(&list))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        first["value"][0]["userPrincipalName"],
        "adele.vance@example.com"
    );
    let next = first["@odata.nextLink"].as_str().unwrap();
    let path = next.strip_prefix(app.url.as_str()).unwrap();
    let second: Value = app.get(path, Some(&list)).await.json().await.unwrap();
    assert_eq!(second["value"][0]["userPrincipalName"], SARAH);
    assert!(second.get("@odata.nextLink").is_none());

    // Graph's filter on the UPN, any case; an unknown UPN is an empty page, not an error.
    let filtered: Value = app
        .get(
            "/v1.0/users?$filter=userPrincipalName%20eq%20'SARAH.smith@example.com'",
            Some(&list),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["value"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["value"][0]["displayName"], "Sarah Smith");
    let none: Value = app
        .get(
            "/v1.0/users?$filter=userPrincipalName eq 'nobody@example.com'",
            Some(&list),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["value"], serde_json::json!([]));
}

#[tokio::test]
async fn health_is_open_and_every_answer_has_a_request_id() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(format!("{}/health", app.url))
        .header("client-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("request-id"));
    assert_eq!(resp.headers()["client-request-id"], "trace-42");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

fn uuid_like(s: &str) -> bool {
    let parts: Vec<usize> = s.split('-').map(str::len).collect();
    parts == [8, 4, 4, 4, 12] && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}
