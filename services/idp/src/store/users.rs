//! Users: the demo tenant's seed and password checks (argon2).

use argon2::{
    Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _, password_hash::SaltString,
};
use tokio_postgres::Client;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub active: bool,
}

fn from_row(r: &tokio_postgres::Row) -> User {
    User {
        id: r.get("id"),
        email: r.get("email"),
        display_name: r.get("display_name"),
        active: r.get("active"),
    }
}

/// The demo tenant: alice and bob, with the demo password. Idempotent.
pub async fn seed_demo(client: &Client, password: &str) -> anyhow::Result<()> {
    for (email, name) in [
        ("alice@example.com", "Alice Example"),
        ("bob@example.com", "Bob Example"),
    ] {
        if find_by_email(client, email).await?.is_some() {
            continue;
        }
        create(client, email, name, Some(password)).await?;
    }
    Ok(())
}

pub async fn create(
    client: &Client,
    email: &str,
    display_name: &str,
    password: Option<&str>,
) -> anyhow::Result<User> {
    let hash = password.map(hash_password).transpose()?;
    let id = format!("usr_{}", kit::random_id(12));
    let row = client
        .query_one(
            "INSERT INTO users (id, email, display_name, password_hash) VALUES ($1, lower($2), $3, $4) RETURNING *",
            &[&id, &email, &display_name, &hash],
        )
        .await?;
    Ok(from_row(&row))
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))
}

pub async fn find_by_email(client: &Client, email: &str) -> anyhow::Result<Option<User>> {
    Ok(client
        .query_opt("SELECT * FROM users WHERE email = lower($1)", &[&email])
        .await?
        .as_ref()
        .map(from_row))
}

pub async fn find(client: &Client, id: &str) -> anyhow::Result<Option<User>> {
    Ok(client
        .query_opt("SELECT * FROM users WHERE id = $1", &[&id])
        .await?
        .as_ref()
        .map(from_row))
}

/// The user, if the email exists, the account is active and the password matches. A missing
/// user still costs one hash, so timing does not tell which emails exist.
pub async fn check_password(
    client: &Client,
    email: &str,
    password: &str,
) -> anyhow::Result<Option<User>> {
    let row = client
        .query_opt(
            "SELECT *, password_hash FROM users WHERE email = lower($1)",
            &[&email],
        )
        .await?;
    let stored: Option<String> = row.as_ref().and_then(|r| r.get("password_hash"));
    let hash = stored.unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = PasswordHash::new(&hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    });
    Ok(row
        .filter(|_| ok)
        .map(|r| from_row(&r))
        .filter(|u| u.active))
}

// A hash of a random string nobody knows, verified against when the email does not exist.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&kit::random_id(16)).unwrap_or_default());
