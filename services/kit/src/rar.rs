//! RFC 9396 `authorization_details`: the catalogue of what this platform can authorize, strict
//! validation, the canonical fingerprint, plain-words summaries, and the coverage rule that makes
//! authority only narrow along a delegation chain.
//!
//! Every business entry has the shape
//! `{"type": "urn:smt:agent:banking", "operationDetails": {"action": "transfer_funds", ...fields}}`.
//! Resource access entries (`vault:path_access`) say which credential paths a token may read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

pub const BANKING: &str = "urn:smt:agent:banking";
pub const IAM: &str = "urn:smt:agent:iam";
pub const ENTRA: &str = "urn:smt:agent:entra";
/// Which credential paths of the issuer a token may read (`locations`, `actions: ["read"]`).
pub const VAULT_PATH_ACCESS: &str = "vault:path_access";

/// One entry of `authorization_details`. Unknown members are refused (RFC 9396 §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationDetail {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(
        rename = "operationDetails",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub operation_details: Option<Map<String, Value>>,
}

/// Why a request's `authorization_details` were refused (`invalid_authorization_details`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RarError {
    #[error("authorization_details must be a JSON array of objects: {0}")]
    Syntax(String),
    #[error("authorization_details must not be empty")]
    Empty,
    #[error("unknown authorization_details type {0}")]
    UnknownType(String),
    #[error("unknown action {action} for type {kind}")]
    UnknownAction { kind: String, action: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Email,
    Account,
    AccountKind,
    Amount,
    Group,
    Text,
}

#[derive(Debug)]
struct ActionSpec {
    action: &'static str,
    required: &'static [(&'static str, FieldKind)],
    optional: &'static [(&'static str, FieldKind)],
}

#[derive(Debug)]
struct TypeSpec {
    kind: &'static str,
    actions: &'static [ActionSpec],
}

use FieldKind as F;

const OWNER: (&str, FieldKind) = ("owner", F::Email);

/// The catalogue: every type and action the platform can authorize, with its fields.
static CATALOGUE: &[TypeSpec] = &[
    TypeSpec {
        kind: BANKING,
        actions: &[
            ActionSpec {
                action: "get_balance",
                required: &[],
                optional: &[("account", F::Account), OWNER],
            },
            ActionSpec {
                action: "list_accounts",
                required: &[],
                optional: &[OWNER],
            },
            ActionSpec {
                action: "open_account",
                required: &[("kind", F::AccountKind)],
                optional: &[OWNER],
            },
            ActionSpec {
                action: "transfer_funds",
                required: &[
                    ("amount", F::Amount),
                    ("source", F::Account),
                    ("destination", F::Account),
                ],
                optional: &[OWNER],
            },
        ],
    },
    TypeSpec {
        kind: IAM,
        actions: &[
            ActionSpec {
                action: "list_users",
                required: &[],
                optional: &[],
            },
            ActionSpec {
                action: "get_user",
                required: &[("email", F::Email)],
                optional: &[],
            },
            ActionSpec {
                action: "create_user",
                required: &[("email", F::Email)],
                optional: &[("display_name", F::Text)],
            },
            ActionSpec {
                action: "add_user_to_group",
                required: &[("email", F::Email), ("group", F::Group)],
                optional: &[],
            },
            ActionSpec {
                action: "deactivate_user",
                required: &[("email", F::Email)],
                optional: &[],
            },
            ActionSpec {
                action: "revoke_user_sessions",
                required: &[("email", F::Email)],
                optional: &[],
            },
            ActionSpec {
                action: "delete_user",
                required: &[("email", F::Email)],
                optional: &[],
            },
            ActionSpec {
                action: "grant_admin_role",
                required: &[("email", F::Email)],
                optional: &[],
            },
        ],
    },
    TypeSpec {
        kind: ENTRA,
        actions: &[
            ActionSpec {
                action: "graph_user_list",
                required: &[],
                optional: &[],
            },
            ActionSpec {
                action: "graph_user_get",
                required: &[("email", F::Email)],
                optional: &[],
            },
            ActionSpec {
                action: "graph_user_create",
                required: &[("email", F::Email)],
                optional: &[("display_name", F::Text)],
            },
        ],
    },
];

/// The types this platform understands (for `authorization_details_types_supported`).
pub fn supported_types() -> Vec<&'static str> {
    let mut v: Vec<&str> = CATALOGUE.iter().map(|t| t.kind).collect();
    v.push(VAULT_PATH_ACCESS);
    v
}

/// The actions the catalogue knows for `kind` (empty for unknown types).
pub fn actions_of(kind: &str) -> Vec<&'static str> {
    CATALOGUE
        .iter()
        .find(|t| t.kind == kind)
        .map(|t| t.actions.iter().map(|a| a.action).collect())
        .unwrap_or_default()
}

/// The A2A agent-card extension (an entry of `capabilities.extensions`) through which a
/// specialist publishes the JSON Schema of each skill's arguments. Its `params` map skill id →
/// schema. Skill ids are RAR actions and arguments are `operationDetails` fields, so the schemas
/// come from this catalogue and a planner (a model) can call the skills as tools.
pub const TOOL_SCHEMAS_EXTENSION: &str = "urn:smt:a2a:tool-schemas";

/// The JSON Schema (draft 2020-12 subset that OpenAI-style tool calling accepts) of the arguments
/// of `action` on `kind`: its `operationDetails` fields minus `action`. `None` when the catalogue
/// does not know the action. Validation stays [`AuthorizationDetail::validated`]; the schema is
/// the same rule written down for a caller.
pub fn arguments_schema(kind: &str, action: &str) -> Option<Value> {
    let spec = CATALOGUE
        .iter()
        .find(|t| t.kind == kind)?
        .actions
        .iter()
        .find(|a| a.action == action)?;
    let properties: Map<String, Value> = spec
        .required
        .iter()
        .chain(spec.optional)
        .map(|(name, kind)| ((*name).to_owned(), field_schema(name, *kind)))
        .collect();
    let required: Vec<&str> = spec.required.iter().map(|(n, _)| *n).collect();
    Some(serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    }))
}

/// The [`TOOL_SCHEMAS_EXTENSION`] entry for a specialist whose skills are the actions of `kind`.
pub fn tool_schemas_extension(kind: &str) -> Value {
    let params: Map<String, Value> = actions_of(kind)
        .into_iter()
        .filter_map(|a| Some((a.to_owned(), arguments_schema(kind, a)?)))
        .collect();
    serde_json::json!({
        "uri": TOOL_SCHEMAS_EXTENSION,
        "description": "JSON Schema of each skill's arguments (skill id -> schema); the arguments are the RFC 9396 operationDetails of the call",
        "required": false,
        "params": params,
    })
}

fn field_schema(name: &str, kind: FieldKind) -> Value {
    use serde_json::json;
    const NAME: &str = "^[a-z][a-z0-9_-]{0,31}$";
    let mut schema = match kind {
        F::Email => json!({"type": "string", "format": "email", "maxLength": 254}),
        F::Account | F::Group => json!({"type": "string", "pattern": NAME}),
        F::AccountKind => json!({"type": "string", "enum": ["checking", "savings", "trading"]}),
        F::Amount => json!({
            "type": "object",
            "properties": {
                "value": {"type": "string", "pattern": "^[0-9]{1,10}(\\.[0-9]{1,2})?$", "description": "a positive decimal string with at most two places, e.g. \"1000.00\""},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code, e.g. USD"},
            },
            "required": ["value", "currency"],
            "additionalProperties": false,
        }),
        F::Text => json!({"type": "string", "minLength": 1, "maxLength": 200}),
    };
    let description = match name {
        "owner" => "email of the accounts' owner; omit it for the signed-in user's own accounts",
        "account" => "account name (checking, savings, trading, ...); omit it for every account",
        "source" => "account name to take the money from",
        "destination" => "account name to put the money into",
        "kind" => "kind of account to open",
        "amount" => "amount of money",
        "email" => "the user's email address",
        "display_name" => "the user's full name",
        "group" => "group name (lower-case)",
        _ => "",
    };
    if !description.is_empty() {
        schema["description"] = Value::String(description.into());
    }
    schema
}

/// An amount of money in integer minor units (cents), never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub cents: i64,
    pub currency: [u8; 3],
}

impl Amount {
    pub fn currency(&self) -> &str {
        std::str::from_utf8(&self.currency).unwrap_or("???")
    }

    /// Parses `{"value": "1000.00", "currency": "USD"}`.
    pub fn from_json(v: &Value) -> Result<Self, RarError> {
        let bad = |why: &str| RarError::Invalid(format!("amount {why}"));
        let obj = v
            .as_object()
            .ok_or_else(|| bad("must be an object with value and currency"))?;
        if obj.keys().any(|k| k != "value" && k != "currency") || obj.len() != 2 {
            return Err(bad("must have exactly value and currency"));
        }
        let value = obj
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("value must be a decimal string"))?;
        let currency = obj
            .get("currency")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("currency must be a string"))?;
        let cur: [u8; 3] = currency
            .as_bytes()
            .try_into()
            .ok()
            .filter(|c: &[u8; 3]| c.iter().all(u8::is_ascii_uppercase))
            .ok_or_else(|| bad("currency must be three upper-case letters"))?;
        Ok(Self {
            cents: parse_cents(value)
                .ok_or_else(|| bad("value must be a positive decimal with at most two places"))?,
            currency: cur,
        })
    }

    pub fn to_json(self) -> Value {
        serde_json::json!({"value": format!("{}.{:02}", self.cents / 100, self.cents % 100), "currency": self.currency()})
    }

    /// `$1,000.00` for dollars, `1,000.00 EUR` otherwise.
    pub fn display(&self) -> String {
        let whole = group_thousands(self.cents / 100);
        let s = format!("{whole}.{:02}", self.cents % 100);
        if self.currency() == "USD" {
            format!("${s}")
        } else {
            format!("{s} {}", self.currency())
        }
    }
}

/// Strict decimal parsing into cents: digits, optionally `.` and one or two digits; positive;
/// at most 10^12 cents. No exponents, no signs, no whitespace.
pub fn parse_cents(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || whole.len() > 10 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (s.contains('.') && frac.is_empty())
    {
        return None;
    }
    let w: i64 = whole.parse().ok()?;
    let f: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    let cents = w.checked_mul(100)?.checked_add(f)?;
    (cents > 0).then_some(cents)
}

fn group_thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._+-".contains(c))
        && !domain.contains('@')
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn check_field(name: &str, kind: FieldKind, v: &Value) -> Result<Value, RarError> {
    let bad = |what: &str| RarError::Invalid(format!("operationDetails.{name} must be {what}"));
    if kind == F::Amount {
        return Ok(Amount::from_json(v)?.to_json());
    }
    let s = v.as_str().ok_or_else(|| bad("a string"))?;
    let ok = match kind {
        F::Email => valid_email(s),
        F::Account | F::Group => valid_name(s, 32),
        F::AccountKind => matches!(s, "checking" | "savings" | "trading"),
        F::Text => !s.is_empty() && s.chars().count() <= 200 && !s.chars().any(char::is_control),
        F::Amount => true,
    };
    if !ok {
        return Err(bad(match kind {
            F::Email => "an email address",
            F::Account => "an account name (lower-case letters, digits, _ or -)",
            F::Group => "a group name (lower-case letters, digits, _ or -)",
            F::AccountKind => "checking, savings or trading",
            _ => "short printable text",
        }));
    }
    // Emails compare case-insensitively everywhere; store them lower-cased.
    Ok(Value::String(if kind == F::Email {
        s.to_ascii_lowercase()
    } else {
        s.to_owned()
    }))
}

fn valid_vault_path(p: &str) -> bool {
    let mut parts = p.split('/');
    matches!((parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(m), Some("creds"), Some(r), None) if valid_name(m, 64) && valid_name(r, 64))
}

impl AuthorizationDetail {
    /// A business entry `{type, operationDetails: {action, ...fields}}`.
    pub fn operation(
        kind: &str,
        action: &str,
        fields: impl IntoIterator<Item = (&'static str, Value)>,
    ) -> Self {
        let mut od = Map::new();
        od.insert("action".into(), Value::String(action.into()));
        for (k, v) in fields {
            od.insert(k.into(), v);
        }
        Self {
            kind: kind.into(),
            locations: None,
            actions: None,
            identifier: None,
            operation_details: Some(od),
        }
    }

    /// A `vault:path_access` entry allowing `read` of `path` (e.g. `verify-rar/creds/banking-transfers`).
    pub fn vault_read(path: &str) -> Self {
        Self {
            kind: VAULT_PATH_ACCESS.into(),
            locations: Some(vec![path.into()]),
            actions: Some(vec!["read".into()]),
            identifier: None,
            operation_details: None,
        }
    }

    /// `operationDetails.action`, for business entries.
    pub fn action(&self) -> Option<&str> {
        self.operation_details.as_ref()?.get("action")?.as_str()
    }

    /// A string field of `operationDetails`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.operation_details.as_ref()?.get(name)?.as_str()
    }

    pub fn amount(&self) -> Option<Amount> {
        Amount::from_json(self.operation_details.as_ref()?.get("amount")?).ok()
    }

    pub fn is_resource_access(&self) -> bool {
        self.kind == VAULT_PATH_ACCESS
    }

    /// Checks the entry against the catalogue and returns its normalized form (emails
    /// lower-cased, amounts as `"1000.00"`), which is what tokens carry and fingerprints cover.
    pub fn validated(&self) -> Result<Self, RarError> {
        if self.kind == VAULT_PATH_ACCESS {
            let locs = self.locations.as_deref().unwrap_or(&[]);
            if locs.is_empty() || !locs.iter().all(|l| valid_vault_path(l)) {
                return Err(RarError::Invalid(
                    "vault:path_access needs locations like <mount>/creds/<role>".into(),
                ));
            }
            if self.actions.as_deref() != Some(&["read".to_owned()]) {
                return Err(RarError::Invalid(
                    "vault:path_access actions must be [\"read\"]".into(),
                ));
            }
            if self.operation_details.is_some() || self.identifier.is_some() {
                return Err(RarError::Invalid(
                    "vault:path_access takes only locations and actions".into(),
                ));
            }
            return Ok(self.clone());
        }
        let spec = CATALOGUE
            .iter()
            .find(|t| t.kind == self.kind)
            .ok_or_else(|| RarError::UnknownType(self.kind.clone()))?;
        let od = self
            .operation_details
            .as_ref()
            .ok_or_else(|| RarError::Invalid(format!("{} needs operationDetails", self.kind)))?;
        let action = od
            .get("action")
            .and_then(Value::as_str)
            .ok_or_else(|| RarError::Invalid("operationDetails.action must be a string".into()))?;
        let aspec = spec
            .actions
            .iter()
            .find(|a| a.action == action)
            .ok_or_else(|| RarError::UnknownAction {
                kind: self.kind.clone(),
                action: action.into(),
            })?;
        let mut out = Map::new();
        out.insert("action".into(), Value::String(action.into()));
        for (name, v) in od {
            if name == "action" {
                continue;
            }
            let kind = aspec
                .required
                .iter()
                .chain(aspec.optional)
                .find(|(n, _)| n == name)
                .map(|(_, k)| *k)
                .ok_or_else(|| {
                    RarError::Invalid(format!(
                        "unknown field operationDetails.{name} for {action}"
                    ))
                })?;
            out.insert(name.clone(), check_field(name, kind, v)?);
        }
        if let Some((missing, _)) = aspec.required.iter().find(|(n, _)| !out.contains_key(*n)) {
            return Err(RarError::Invalid(format!(
                "operationDetails.{missing} is required for {action}"
            )));
        }
        if let Some(actions) = &self.actions
            && actions.iter().any(|a| a != action)
        {
            return Err(RarError::Invalid(
                "actions must match operationDetails.action".into(),
            ));
        }
        if self
            .locations
            .as_ref()
            .is_some_and(|l| l.iter().any(|s| s.is_empty() || s.len() > 512))
        {
            return Err(RarError::Invalid(
                "locations must be non-empty strings".into(),
            ));
        }
        Ok(Self {
            operation_details: Some(out),
            ..self.clone()
        })
    }

    /// The entry in plain words: "Transfer $1,000.00 from checking to savings".
    pub fn summary(&self) -> String {
        if self.kind == VAULT_PATH_ACCESS {
            return format!(
                "Read credentials at {}",
                self.locations.as_deref().unwrap_or(&[]).join(", ")
            );
        }
        let f = |n: &str| self.field(n).unwrap_or("?").to_owned();
        let owner = self
            .field("owner")
            .map(|o| format!(" for {o}"))
            .unwrap_or_default();
        match (self.kind.as_str(), self.action().unwrap_or("")) {
            (BANKING, "transfer_funds") => format!(
                "Transfer {} from {} to {}{owner}",
                self.amount()
                    .map(|a| a.display())
                    .unwrap_or_else(|| "?".into()),
                f("source"),
                f("destination")
            ),
            (BANKING, "get_balance") => match self.field("account") {
                Some(a) => format!("Read the balance of {a}{owner}"),
                None => format!("Read account balances{owner}"),
            },
            (BANKING, "list_accounts") => format!("List accounts{owner}"),
            (BANKING, "open_account") => format!("Open a {} account{owner}", f("kind")),
            (IAM, "list_users") => "List users".into(),
            (IAM, "get_user") => format!("Read user {}", f("email")),
            (IAM, "create_user") => format!("Create user {}", f("email")),
            (IAM, "add_user_to_group") => format!("Add {} to group {}", f("email"), f("group")),
            (IAM, "deactivate_user") => format!("Deactivate user {}", f("email")),
            (IAM, "revoke_user_sessions") => format!("Revoke every session of {}", f("email")),
            (IAM, "delete_user") => format!("Delete user {} permanently", f("email")),
            (IAM, "grant_admin_role") => format!("Grant the admin role to {}", f("email")),
            (ENTRA, "graph_user_list") => "List Entra users".into(),
            (ENTRA, "graph_user_get") => format!("Read Entra user {}", f("email")),
            (ENTRA, "graph_user_create") => format!("Create Entra user {}", f("email")),
            (kind, action) => format!("{action} on {kind}"),
        }
    }
}

/// Parses the form parameter `authorization_details` (a JSON string) and validates every entry.
pub fn parse(json: &str) -> Result<Vec<AuthorizationDetail>, RarError> {
    let raw: Vec<Value> =
        serde_json::from_str(json).map_err(|e| RarError::Syntax(e.to_string()))?;
    if raw.is_empty() {
        return Err(RarError::Empty);
    }
    raw.into_iter()
        .map(|v| {
            if !v.is_object() {
                return Err(RarError::Syntax("each entry must be an object".into()));
            }
            let kind = v.get("type").and_then(Value::as_str).map(str::to_owned);
            let d: AuthorizationDetail = serde_json::from_value(v).map_err(|e| match kind {
                Some(k) if !supported_types().contains(&k.as_str()) => RarError::UnknownType(k),
                _ => RarError::Invalid(e.to_string()),
            })?;
            d.validated()
        })
        .collect()
}

/// SHA-256 (lower-case hex) over the canonical JSON of `details`: object keys sorted, no
/// insignificant whitespace, entries in order. The same grant always has the same fingerprint,
/// in every service.
pub fn fingerprint(details: &[AuthorizationDetail]) -> String {
    let canonical = canonical_json(&serde_json::to_value(details).unwrap_or(Value::Null));
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Canonical JSON text: keys sorted at every depth (serde_json's map is ordered), compact.
pub fn canonical_json(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), sort(v)))
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// The entries in plain words, business entries first, joined with "; ".
pub fn summarize(details: &[AuthorizationDetail]) -> String {
    let business: Vec<String> = details
        .iter()
        .filter(|d| !d.is_resource_access())
        .map(AuthorizationDetail::summary)
        .collect();
    if business.is_empty() {
        details
            .iter()
            .map(AuthorizationDetail::summary)
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        business.join("; ")
    }
}

/// Does `granted` cover `requested`? Same type and action, the same fields with the same values,
/// except an amount, which may only shrink (same currency). Top-level `locations` and `actions`
/// may only shrink. `Err` says what widened.
pub fn covers(
    granted: &AuthorizationDetail,
    requested: &AuthorizationDetail,
) -> Result<(), String> {
    if granted.kind != requested.kind {
        return Err(format!("type {} was not granted", requested.kind));
    }
    let subset = |g: &Option<Vec<String>>, r: &Option<Vec<String>>, what: &str| match (g, r) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(format!("{what} would widen to any")),
        (Some(g), Some(r)) => match r.iter().find(|x| !g.contains(x)) {
            Some(x) => Err(format!("{what} {x} was not granted")),
            None => Ok(()),
        },
    };
    subset(&granted.locations, &requested.locations, "location")?;
    subset(&granted.actions, &requested.actions, "action")?;
    if granted.identifier.is_some() && granted.identifier != requested.identifier {
        return Err("identifier differs from the grant".into());
    }
    let empty = Map::new();
    let g = granted.operation_details.as_ref().unwrap_or(&empty);
    let r = requested.operation_details.as_ref().unwrap_or(&empty);
    if granted.action() != requested.action() {
        return Err(format!(
            "action {} was not granted",
            requested.action().unwrap_or("?")
        ));
    }
    for key in g.keys().chain(r.keys()) {
        let (gv, rv) = (g.get(key), r.get(key));
        if key == "amount" {
            let (Some(gv), Some(rv)) = (gv, rv) else {
                return Err("amount differs from the grant".into());
            };
            let (ga, ra) = (
                Amount::from_json(gv).map_err(|e| e.to_string())?,
                Amount::from_json(rv).map_err(|e| e.to_string())?,
            );
            if ga.currency != ra.currency {
                return Err(format!(
                    "currency {} differs from the granted {}",
                    ra.currency(),
                    ga.currency()
                ));
            }
            if ra.cents > ga.cents {
                return Err(format!(
                    "amount {} exceeds the granted {}",
                    ra.display(),
                    ga.display()
                ));
            }
        } else if gv != rv {
            return Err(format!("{key} differs from the grant"));
        }
    }
    Ok(())
}

/// `requested` is covered by at least one of `granted`; otherwise the reason from the closest
/// candidate (same type and action) is returned.
pub fn covered_by_any(
    granted: &[AuthorizationDetail],
    requested: &AuthorizationDetail,
) -> Result<(), String> {
    let mut closest: Option<String> = None;
    for g in granted {
        match covers(g, requested) {
            Ok(()) => return Ok(()),
            Err(why) => {
                if g.kind == requested.kind && g.action() == requested.action() {
                    closest = Some(why);
                }
            }
        }
    }
    Err(closest.unwrap_or_else(|| {
        format!(
            "{} {} was not granted upstream",
            requested.kind,
            requested.action().unwrap_or("access")
        )
    }))
}

/// One entry of an agent's ceiling: the types and actions (or, for `vault:path_access`, the
/// locations) it can ever be granted, whatever a user approves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeilingEntry {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub locations: Vec<String>,
}

/// Is `requested` within `ceiling`? `Err` says why not.
pub fn within_ceiling(
    ceiling: &[CeilingEntry],
    requested: &AuthorizationDetail,
) -> Result<(), String> {
    let fits = |c: &CeilingEntry| {
        if c.kind != requested.kind {
            return false;
        }
        if requested.is_resource_access() {
            let locs = requested.locations.as_deref().unwrap_or(&[]);
            locs.iter().all(|l| c.locations.iter().any(|cl| cl == l))
        } else {
            let action = requested.action().unwrap_or("");
            c.actions.iter().any(|a| a == "*" || a == action)
        }
    };
    if ceiling.iter().any(fits) {
        Ok(())
    } else if requested.is_resource_access() {
        Err(format!(
            "{} is beyond the agent's ceiling",
            requested.locations.as_deref().unwrap_or(&[]).join(", ")
        ))
    } else {
        Err(format!(
            "{} {} is beyond the agent's ceiling",
            requested.kind,
            requested.action().unwrap_or("?")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transfer(value: &str, src: &str, dst: &str) -> AuthorizationDetail {
        AuthorizationDetail::operation(
            BANKING,
            "transfer_funds",
            [
                ("amount", json!({"value": value, "currency": "USD"})),
                ("source", json!(src)),
                ("destination", json!(dst)),
            ],
        )
        .validated()
        .unwrap()
    }

    #[test]
    fn argument_schemas_follow_the_catalogue() {
        let s = arguments_schema(BANKING, "transfer_funds").unwrap();
        assert_eq!(s["required"], json!(["amount", "source", "destination"]));
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(
            s["properties"]["amount"]["required"],
            json!(["value", "currency"])
        );
        assert!(s["properties"]["owner"].is_object());
        assert!(arguments_schema(BANKING, "steal").is_none());
        assert!(arguments_schema("urn:x", "get_user").is_none());
        let ext = tool_schemas_extension(IAM);
        assert_eq!(ext["uri"], TOOL_SCHEMAS_EXTENSION);
        let params = ext["params"].as_object().unwrap();
        assert_eq!(params.len(), actions_of(IAM).len());
        assert_eq!(params["delete_user"]["required"], json!(["email"]));
        assert_eq!(params["list_users"]["properties"], json!({}));
    }

    #[test]
    fn summary_reads_in_plain_words() {
        assert_eq!(
            transfer("1000", "checking", "savings").summary(),
            "Transfer $1,000.00 from checking to savings"
        );
        assert_eq!(
            transfer("1234567.5", "a", "b").summary(),
            "Transfer $1,234,567.50 from a to b"
        );
    }

    #[test]
    fn amounts_are_strict_decimals() {
        assert_eq!(parse_cents("1000"), Some(100_000));
        assert_eq!(parse_cents("0.5"), Some(50));
        for bad in [
            "",
            "-1",
            "1e3",
            "1.234",
            " 1",
            "1.",
            ".5",
            "0",
            "0.00",
            "99999999999",
        ] {
            assert_eq!(parse_cents(bad), None, "{bad}");
        }
    }

    #[test]
    fn fingerprint_is_canonical_and_normalized() {
        let a = parse(r#"[{"type":"urn:smt:agent:banking","operationDetails":{"action":"transfer_funds","amount":{"value":"1000","currency":"USD"},"source":"checking","destination":"savings"}}]"#).unwrap();
        let b = parse(r#"[{"operationDetails":{"destination":"savings","source":"checking","amount":{"currency":"USD","value":"1000.00"},"action":"transfer_funds"},"type":"urn:smt:agent:banking"}]"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 64);
        assert_ne!(
            fingerprint(&a),
            fingerprint(&[transfer("999", "checking", "savings")])
        );
    }

    #[test]
    fn validation_refuses_unknown_types_fields_and_bad_values() {
        assert!(matches!(
            parse(r#"[{"type":"urn:x"}]"#),
            Err(RarError::UnknownType(_))
        ));
        assert!(matches!(parse("[]"), Err(RarError::Empty)));
        assert!(matches!(parse("{}"), Err(RarError::Syntax(_))));
        assert!(matches!(
            parse(r#"[{"type":"urn:smt:agent:banking","operationDetails":{"action":"steal"}}]"#),
            Err(RarError::UnknownAction { .. })
        ));
        assert!(parse(r#"[{"type":"urn:smt:agent:iam","operationDetails":{"action":"get_user","email":"x@y.z","extra":1}}]"#).is_err());
        assert!(
            parse(r#"[{"type":"urn:smt:agent:iam","operationDetails":{"action":"get_user"}}]"#)
                .is_err()
        );
        assert!(parse(r#"[{"type":"urn:smt:agent:iam","bogus":1,"operationDetails":{"action":"list_users"}}]"#).is_err());
        assert!(parse(r#"[{"type":"urn:smt:agent:banking","operationDetails":{"action":"transfer_funds","amount":{"value":1000,"currency":"USD"},"source":"checking","destination":"savings"}}]"#).is_err());
        assert!(
            parse(r#"[{"type":"vault:path_access","locations":["../etc"],"actions":["read"]}]"#)
                .is_err()
        );
        assert!(parse(r#"[{"type":"vault:path_access","locations":["verify-rar/creds/banking-transfers"],"actions":["read"]}]"#).is_ok());
    }

    #[test]
    fn authority_only_narrows() {
        let granted = transfer("1000", "checking", "savings");
        assert!(covers(&granted, &transfer("1000", "checking", "savings")).is_ok());
        assert!(covers(&granted, &transfer("500", "checking", "savings")).is_ok());
        assert!(
            covers(&granted, &transfer("1000.01", "checking", "savings"))
                .unwrap_err()
                .contains("exceeds")
        );
        assert!(covers(&granted, &transfer("1000", "checking", "trading")).is_err());
        let mut other_owner = transfer("10", "checking", "savings");
        if let Some(od) = other_owner.operation_details.as_mut() {
            od.insert("owner".into(), json!("bob@example.com"));
        }
        assert!(covers(&granted, &other_owner).is_err());
        let delete =
            AuthorizationDetail::operation(IAM, "delete_user", [("email", json!("a@b.c"))]);
        assert!(covered_by_any(&[granted], &delete).is_err());
    }

    #[test]
    fn ceiling_bounds_types_actions_and_paths() {
        let ceiling = vec![
            CeilingEntry {
                kind: BANKING.into(),
                actions: vec!["transfer_funds".into()],
                locations: vec![],
            },
            CeilingEntry {
                kind: VAULT_PATH_ACCESS.into(),
                actions: vec![],
                locations: vec!["verify-rar/creds/banking-transfers".into()],
            },
        ];
        assert!(within_ceiling(&ceiling, &transfer("1", "a", "b")).is_ok());
        assert!(
            within_ceiling(
                &ceiling,
                &AuthorizationDetail::vault_read("verify-rar/creds/banking-transfers")
            )
            .is_ok()
        );
        assert!(
            within_ceiling(
                &ceiling,
                &AuthorizationDetail::vault_read("verify-rar/creds/other")
            )
            .is_err()
        );
        assert!(
            within_ceiling(
                &ceiling,
                &AuthorizationDetail::operation(
                    BANKING,
                    "open_account",
                    [("kind", json!("trading"))]
                )
            )
            .is_err()
        );
    }
}
