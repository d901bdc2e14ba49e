//! SCIM 2.0 storage: users as SCIM resources (with the groups they are in), groups with their
//! members. The role `admin` is membership of [`ADMINS`]; there is no second place to look.

use serde::Deserialize;
use tokio_postgres::{Client, Row};

/// The group whose members are administrators. Adding to it is `grant_admin_role`, never
/// `add_user_to_group`.
pub const ADMINS: &str = "admins";

/// One page of a list: the rows asked for and how many matched in all.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub total: i64,
    pub items: Vec<T>,
}

/// A reference to another resource: a user's group (`name` = its displayName), or a group's
/// member (`name` = the user's email).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Ref {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct ScimUser {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub active: bool,
    /// RFC 3339, UTC.
    pub created: String,
    pub last_modified: String,
    pub groups: Vec<Ref>,
}

impl ScimUser {
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g.name == ADMINS)
    }
}

#[derive(Debug, Clone)]
pub struct ScimGroup {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_modified: String,
    pub members: Vec<Ref>,
}

/// What a new user is made of. Users created here have no password: they cannot use the login
/// form until an administrator sets one.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub given_name: Option<&'a str>,
    pub family_name: Option<&'a str>,
    pub active: bool,
}

const USER_SELECT: &str = r#"SELECT u.id, u.email, u.display_name, u.given_name, u.family_name, u.active,
        to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created,
        to_char(u.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS last_modified,
        COALESCE((SELECT jsonb_agg(jsonb_build_object('id', g.id, 'name', g.display_name) ORDER BY g.display_name)
                  FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = u.id), '[]') AS refs
    FROM users u"#;

const GROUP_SELECT: &str = r#"SELECT g.id, g.display_name,
        to_char(g.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created,
        to_char(g.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS last_modified,
        COALESCE((SELECT jsonb_agg(jsonb_build_object('id', u.id, 'name', u.email) ORDER BY u.email)
                  FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = g.id), '[]') AS refs
    FROM groups g"#;

fn refs(r: &Row) -> anyhow::Result<Vec<Ref>> {
    Ok(serde_json::from_value(r.try_get("refs")?)?)
}

fn user_from_row(r: &Row) -> anyhow::Result<ScimUser> {
    Ok(ScimUser {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        given_name: r.try_get("given_name")?,
        family_name: r.try_get("family_name")?,
        active: r.try_get("active")?,
        created: r.try_get("created")?,
        last_modified: r.try_get("last_modified")?,
        groups: refs(r)?,
    })
}

fn group_from_row(r: &Row) -> anyhow::Result<ScimGroup> {
    Ok(ScimGroup {
        id: r.try_get("id")?,
        name: r.try_get("display_name")?,
        created: r.try_get("created")?,
        last_modified: r.try_get("last_modified")?,
        members: refs(r)?,
    })
}

/// Users in creation order, optionally only the one with `email`; `offset` rows skipped.
pub async fn list_users(
    client: &Client,
    email: Option<&str>,
    offset: i64,
    limit: i64,
) -> anyhow::Result<Page<ScimUser>> {
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM users WHERE $1::text IS NULL OR email = lower($1)",
            &[&email],
        )
        .await?
        .get(0);
    let rows = client
        .query(
            &format!(
                "{USER_SELECT} WHERE $1::text IS NULL OR u.email = lower($1)
                 ORDER BY u.created_at, u.id OFFSET $2 LIMIT $3"
            ),
            &[&email, &offset, &limit],
        )
        .await?;
    Ok(Page {
        total,
        items: rows.iter().map(user_from_row).collect::<Result<_, _>>()?,
    })
}

pub async fn get_user(client: &Client, id: &str) -> anyhow::Result<Option<ScimUser>> {
    client
        .query_opt(&format!("{USER_SELECT} WHERE u.id = $1"), &[&id])
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

/// Creates the user. `Ok(None)` when the email is taken (checked by the unique index, so two
/// replicas creating the same user at once cannot both succeed).
pub async fn create_user(client: &Client, new: &NewUser<'_>) -> anyhow::Result<Option<ScimUser>> {
    let id = format!("usr_{}", kit::random_id(12));
    let inserted = client
        .query_opt(
            "INSERT INTO users (id, email, display_name, given_name, family_name, active)
             VALUES ($1, lower($2), $3, $4, $5, $6)
             ON CONFLICT (email) DO NOTHING RETURNING id",
            &[
                &id,
                &new.email,
                &new.display_name,
                &new.given_name,
                &new.family_name,
                &new.active,
            ],
        )
        .await?;
    match inserted {
        Some(_) => get_user(client, &id).await,
        None => Ok(None),
    }
}

/// Sets `active`. `Ok(false)` if there is no such user. Sign-in refuses inactive users; ending
/// their sessions is the caller's job (see [`super::sessions::revoke`]).
pub async fn set_active(client: &Client, id: &str, active: bool) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "UPDATE users SET active = $2, updated_at = now() WHERE id = $1",
            &[&id, &active],
        )
        .await?;
    Ok(n == 1)
}

/// The ids of the user's sessions that have not been revoked yet.
pub async fn unrevoked_sessions(client: &Client, user_id: &str) -> anyhow::Result<Vec<String>> {
    Ok(client
        .query(
            "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at",
            &[&user_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Deletes the user and everything that hangs off them (sessions, codes, refresh tokens,
/// approvals, memberships) in one transaction. Security events are kept: they are the record.
/// `Ok(false)` if there is no such user.
pub async fn delete_user(client: &mut Client, id: &str) -> anyhow::Result<bool> {
    let tx = client.transaction().await?;
    tx.execute(
        "DELETE FROM session_write_grants WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
        &[&id],
    )
    .await?;
    for table in ["approvals", "refresh_tokens", "auth_codes", "sessions"] {
        // `table` is one of the literals above, never input.
        tx.execute(&format!("DELETE FROM {table} WHERE user_id = $1"), &[&id])
            .await?;
    }
    let n = tx
        .execute("DELETE FROM users WHERE id = $1", &[&id])
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Groups in creation order, optionally only the one named `name`.
pub async fn list_groups(
    client: &Client,
    name: Option<&str>,
    offset: i64,
    limit: i64,
) -> anyhow::Result<Page<ScimGroup>> {
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM groups WHERE $1::text IS NULL OR display_name = $1",
            &[&name],
        )
        .await?
        .get(0);
    let rows = client
        .query(
            &format!(
                "{GROUP_SELECT} WHERE $1::text IS NULL OR g.display_name = $1
                 ORDER BY g.created_at, g.id OFFSET $2 LIMIT $3"
            ),
            &[&name, &offset, &limit],
        )
        .await?;
    Ok(Page {
        total,
        items: rows.iter().map(group_from_row).collect::<Result<_, _>>()?,
    })
}

pub async fn get_group(client: &Client, id: &str) -> anyhow::Result<Option<ScimGroup>> {
    client
        .query_opt(&format!("{GROUP_SELECT} WHERE g.id = $1"), &[&id])
        .await?
        .as_ref()
        .map(group_from_row)
        .transpose()
}

pub async fn find_group_by_name(client: &Client, name: &str) -> anyhow::Result<Option<ScimGroup>> {
    client
        .query_opt(
            &format!("{GROUP_SELECT} WHERE g.display_name = $1"),
            &[&name],
        )
        .await?
        .as_ref()
        .map(group_from_row)
        .transpose()
}

/// Creates the group with its first members. `Ok(None)` when the name is taken.
pub async fn create_group(
    client: &mut Client,
    name: &str,
    member_ids: &[String],
) -> anyhow::Result<Option<ScimGroup>> {
    let id = format!("grp_{}", kit::random_id(12));
    let tx = client.transaction().await?;
    let inserted = tx
        .query_opt(
            "INSERT INTO groups (id, display_name) VALUES ($1, $2)
             ON CONFLICT (display_name) DO NOTHING RETURNING id",
            &[&id, &name],
        )
        .await?;
    if inserted.is_none() {
        return Ok(None);
    }
    add_members_in(&tx, &id, member_ids).await?;
    tx.commit().await?;
    get_group(client, &id).await
}

/// Adds users to a group; members already in it stay as they are.
pub async fn add_members(
    client: &mut Client,
    group_id: &str,
    user_ids: &[String],
) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    add_members_in(&tx, group_id, user_ids).await?;
    tx.commit().await?;
    Ok(())
}

async fn add_members_in(
    tx: &tokio_postgres::Transaction<'_>,
    group_id: &str,
    user_ids: &[String],
) -> anyhow::Result<()> {
    if user_ids.is_empty() {
        return Ok(());
    }
    let added = tx
        .execute(
            "INSERT INTO group_members (group_id, user_id) SELECT $1, unnest($2::text[])
             ON CONFLICT DO NOTHING",
            &[&group_id, &user_ids],
        )
        .await?;
    if added > 0 {
        // Membership is part of both resources, so both were modified.
        tx.execute(
            "UPDATE groups SET updated_at = now() WHERE id = $1",
            &[&group_id],
        )
        .await?;
        tx.execute(
            "UPDATE users SET updated_at = now() WHERE id = ANY($1)",
            &[&user_ids],
        )
        .await?;
    }
    Ok(())
}
