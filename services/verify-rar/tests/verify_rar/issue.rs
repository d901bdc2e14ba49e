//! The happy path through `vaultrs`, and the credential's binding to the approved transfer.

use banking::{LedgerError, Transfer};
use rustify::endpoint::Endpoint as _;
use vaultrs::{
    api::database::{requests::GenerateCredentialsRequest, responses::GenerateCredentialsResponse},
    client::{Client as _, VaultClient, VaultClientSettingsBuilder},
};

use crate::{harness::spawn_app, idp::transfer_rar};

const ALICE: &str = "alice@example.com";

#[tokio::test]
async fn vaultrs_logs_in_reads_creds_and_the_credential_transfers_the_approved_amount_once() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    // Over $500: tier 3, approved on alice's phone.
    let (jwt, claims) = app
        .idp
        .t2(
            &alice,
            transfer_rar("1000.00", "checking", "savings"),
            "banking-transfers",
        )
        .await;

    let mut client = VaultClient::new(
        VaultClientSettingsBuilder::default()
            .address(&app.addr)
            .build()
            .unwrap(),
    )
    .unwrap();
    let health = vaultrs::sys::health(&client).await.unwrap();
    assert!(health.initialized && !health.sealed);
    let auth = vaultrs::auth::oidc::login(&client, "jwt", &jwt, Some("banking".into()))
        .await
        .unwrap();
    client.set_token(&auth.client_token);
    let me = vaultrs::token::lookup_self(&client).await.unwrap();
    assert_eq!(me.display_name, "jwt-alice@example.com");

    // vaultrs' `creds` drops the lease id; the same endpoint, executed directly, keeps it.
    let endpoint = GenerateCredentialsRequest::builder()
        .mount("verify-rar")
        .name("banking-transfers")
        .build()
        .unwrap();
    let result = endpoint
        .with_middleware(client.middle())
        .exec(client.http())
        .await
        .unwrap()
        .wrap::<vaultrs::api::EndpointResult<GenerateCredentialsResponse>>()
        .unwrap();
    assert!(
        result
            .lease_id
            .starts_with("verify-rar/creds/banking-transfers/"),
        "{}",
        result.lease_id
    );
    assert!(result.renewable && result.lease_duration == 300);
    let creds = result.data.unwrap();
    assert!(creds.username.starts_with("v-banking-transfers-"));

    // The lease is recorded with the token's jti and the RAR fingerprint.
    let row = app
        .admin
        .query_one(
            "SELECT jti, fingerprint, state FROM verify_rar.leases WHERE lease_id = $1",
            &[&result.lease_id],
        )
        .await
        .unwrap();
    let fingerprint = kit::rar::fingerprint(claims.rar());
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2)
        ),
        (claims.jti.clone(), fingerprint.clone(), "active".into())
    );

    // Real password authentication; the approved transfer goes through.
    let mut db = app
        .connect_as(&creds.username, &creds.password)
        .await
        .unwrap();
    let approved = Transfer {
        owner: ALICE,
        source: "checking",
        destination: "savings",
        amount_cents: 100_000,
    };
    let receipt = banking::transfer(&mut db, &approved).await.unwrap();
    assert_eq!(
        (
            receipt.pg_user.as_str(),
            receipt.jti.as_str(),
            receipt.rar_fingerprint.as_str()
        ),
        (
            creds.username.as_str(),
            claims.jti.as_str(),
            fingerprint.as_str()
        )
    );
    let grant: uuid::Uuid = app
        .admin
        .query_one(
            "SELECT grant_id FROM verify_rar.leases WHERE lease_id = $1",
            &[&result.lease_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(receipt.grant_id, grant);
    assert_eq!(
        (
            app.balance(ALICE, "checking").await,
            app.balance(ALICE, "savings").await
        ),
        (400_000, 1_100_000)
    );

    // The same credential: not again, not another amount, not another account.
    let refused =
        |r: Result<banking::Receipt, LedgerError>| matches!(r, Err(LedgerError::Refused(_)));
    assert!(refused(banking::transfer(&mut db, &approved).await));
    assert!(refused(
        banking::transfer(
            &mut db,
            &Transfer {
                amount_cents: 5_000,
                ..approved.clone()
            }
        )
        .await
    ));
    app.admin
        .execute(
            "INSERT INTO banking.accounts (owner, name, kind) VALUES ($1, 'trading', 'trading')",
            &[&ALICE],
        )
        .await
        .unwrap();
    assert!(refused(
        banking::transfer(
            &mut db,
            &Transfer {
                destination: "trading",
                ..approved.clone()
            }
        )
        .await
    ));
    let bob = Transfer {
        owner: "bob@example.com",
        ..approved.clone()
    };
    assert!(matches!(
        banking::transfer(&mut db, &bob).await,
        Err(LedgerError::AccountNotFound(_))
    ));
    assert_eq!(
        (
            app.balance(ALICE, "checking").await,
            app.balance(ALICE, "savings").await
        ),
        (400_000, 1_100_000)
    );
    assert_eq!(app.balance("bob@example.com", "checking").await, 500_000);
}

#[tokio::test]
async fn a_leaked_credential_cannot_move_a_different_amount_first() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    let (jwt, _) = app
        .idp
        .t2(
            &alice,
            transfer_rar("10.00", "checking", "savings"),
            "banking-transfers",
        )
        .await;
    let token = app.login(&jwt).await;
    let (_, user, password) = app.creds(&token, "banking-transfers").await;
    let mut db = app.connect_as(&user, &password).await.unwrap();
    let big = Transfer {
        owner: ALICE,
        source: "checking",
        destination: "savings",
        amount_cents: 400_000,
    };
    assert!(matches!(
        banking::transfer(&mut db, &big).await,
        Err(LedgerError::Refused(_))
    ));
    let reversed = Transfer {
        owner: ALICE,
        source: "savings",
        destination: "checking",
        amount_cents: 1_000,
    };
    assert!(matches!(
        banking::transfer(&mut db, &reversed).await,
        Err(LedgerError::Refused(_))
    ));
    assert_eq!(app.balance(ALICE, "checking").await, 500_000);
}

#[tokio::test]
async fn reader_and_accounts_roles_bind_their_operations() {
    let app = spawn_app().await;
    let bob = app.idp.sign_in("bob@example.com").await;
    let list = serde_json::json!({"type": "urn:smt:agent:banking", "operationDetails": {"action": "list_accounts"}});
    let (jwt, _) = app.idp.t2(&bob, list, "banking-reader").await;
    let token = app.login(&jwt).await;
    let (_, user, password) = app.creds(&token, "banking-reader").await;
    let db = app.connect_as(&user, &password).await.unwrap();
    let seen = banking::balances(&db).await.unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|a| a.owner == "bob@example.com"));

    let open = serde_json::json!({"type": "urn:smt:agent:banking", "operationDetails": {"action": "open_account", "kind": "trading"}});
    let (jwt, _) = app.idp.t2(&bob, open, "banking-accounts").await;
    let token = app.login(&jwt).await;
    let (_, user, password) = app.creds(&token, "banking-accounts").await;
    let db = app.connect_as(&user, &password).await.unwrap();
    assert_eq!(
        banking::open_account(&db, "trading").await.unwrap().name,
        "trading"
    );
    assert!(banking::open_account(&db, "trading").await.is_err());
}
