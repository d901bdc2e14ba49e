//! Integration tests of the launcher: the embedded cluster really starts, authenticates with
//! passwords, logs modifications, and hands each test its own database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

#[tokio::test]
async fn fresh_databases_are_separate_and_password_protected() {
    let a = stack::testing::fresh_database().await.unwrap();
    let b = stack::testing::fresh_database().await.unwrap();
    assert_ne!(a, b);
    let (client, conn) = tokio_postgres::connect(&a, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT current_setting('log_statement')", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "mod");
    let wrong = a.replacen("postgres:", "postgres:wrong", 1);
    assert!(
        tokio_postgres::connect(&wrong, tokio_postgres::NoTls)
            .await
            .is_err()
    );
}
