//! Policy as code: Cedar policies from `infra/policy/*.cedar`, validated against
//! `infra/policy/schema.cedarschema`, reloaded when the files change, with no restart.
//!
//! Every `authorization_details` entry is one Cedar request: principal = the user, action = the
//! RAR action, resource = the RAR type, context = the RAR fields (amounts in cents), where the
//! token is going (`target`: `agent` or `resource`), the actor chain and the session's `acr`.
//! The tier comes from the `@tier` annotation of the deciding policies (the highest wins); a
//! refusal's reason from the deciding `forbid`'s `@reason`.

use std::{
    path::{Path, PathBuf},
    str::FromStr as _,
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityUid, PolicySet, Request,
    Schema, ValidationMode, Validator,
};

/// The outcome of one request, before approvals are considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// 1 read, 2 write (approve once per session), 3 sensitive (approve every time), 4 blocked.
    pub tier: u8,
    /// For a refusal: the deciding policy's `@reason`, or why no policy applied.
    pub reason: Option<String>,
    /// The deciding policies, by `@id` annotation where they have one.
    pub policies: Vec<String>,
}

struct Loaded {
    policies: PolicySet,
    schema: Schema,
    signature: String,
}

/// The current policy set, swapped atomically on reload; requests in flight keep the set they
/// started with.
pub struct PolicyEngine {
    dir: PathBuf,
    current: RwLock<Arc<Loaded>>,
    authorizer: Authorizer,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Loads and validates the directory; any error stops start-up.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let loaded = load_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            current: RwLock::new(Arc::new(loaded)),
            authorizer: Authorizer::new(),
        })
    }

    fn snapshot(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads if any file changed. `Ok(true)` when a new set is in force. A set that does not
    /// parse or validate is refused and the previous one stays in force.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let sig = signature(&self.dir)?;
        if sig == self.snapshot().signature {
            return Ok(false);
        }
        let loaded = load_dir(&self.dir);
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match loaded {
            Ok(l) => {
                *guard = Arc::new(l);
                Ok(true)
            }
            Err(e) => {
                // Remember the bad signature so the same broken files are reported once.
                let old = guard.clone();
                *guard = Arc::new(Loaded {
                    policies: old.policies.clone(),
                    schema: old.schema.clone(),
                    signature: sig,
                });
                Err(e)
            }
        }
    }

    /// Checks the directory every `every` and reloads; `report` hears each reload or refusal.
    pub fn watch(
        self: Arc<Self>,
        every: Duration,
        report: impl Fn(anyhow::Result<()>) + Send + 'static,
    ) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match self.reload_if_changed() {
                    Ok(true) => report(Ok(())),
                    Ok(false) => {}
                    Err(e) => report(Err(e)),
                }
            }
        });
    }

    /// Decides one request. `context` must fit the schema's context type for `action`.
    pub fn decide(
        &self,
        user: &str,
        action: &str,
        rar_type: &str,
        context: serde_json::Value,
    ) -> Decision {
        let loaded = self.snapshot();
        let deny = |reason: String| Decision {
            allowed: false,
            tier: 4,
            reason: Some(reason),
            policies: vec![],
        };
        let uid = |t: &str, id: &str| {
            EntityUid::from_str(&format!("{t}::{}", serde_json::Value::from(id)))
        };
        let (Ok(principal), Ok(action_uid), Ok(resource)) = (
            uid("User", user),
            uid("Action", action),
            uid("RarType", rar_type),
        ) else {
            return deny("request names cannot be expressed in policy".into());
        };
        let context = match Context::from_json_value(context, Some((&loaded.schema, &action_uid))) {
            Ok(c) => c,
            Err(e) => {
                return deny(format!(
                    "action {action} is not covered by the policy schema: {e}"
                ));
            }
        };
        let request = match Request::new(
            principal,
            action_uid,
            resource,
            context,
            Some(&loaded.schema),
        ) {
            Ok(r) => r,
            Err(e) => return deny(format!("request does not fit the policy schema: {e}")),
        };
        let response =
            self.authorizer
                .is_authorized(&request, &loaded.policies, &Entities::empty());
        let deciding: Vec<_> = response.diagnostics().reason().cloned().collect();
        let names: Vec<String> = deciding
            .iter()
            .map(|id| {
                loaded
                    .policies
                    .annotation(id, "id")
                    .map(str::to_owned)
                    .unwrap_or_else(|| id.to_string())
            })
            .collect();
        let tier_of = |default: u8| {
            deciding
                .iter()
                .filter_map(|id| loaded.policies.annotation(id, "tier")?.parse::<u8>().ok())
                .max()
                .unwrap_or(default)
        };
        match response.decision() {
            CedarDecision::Allow => Decision {
                allowed: true,
                tier: tier_of(1),
                reason: None,
                policies: names,
            },
            CedarDecision::Deny if deciding.is_empty() => {
                let errors: Vec<String> = response
                    .diagnostics()
                    .errors()
                    .map(ToString::to_string)
                    .collect();
                let why = if errors.is_empty() {
                    format!("no policy permits {action} on {rar_type} here")
                } else {
                    format!("policy evaluation failed: {}", errors.join("; "))
                };
                deny(why)
            }
            CedarDecision::Deny => {
                let reason = deciding
                    .iter()
                    .find_map(|id| loaded.policies.annotation(id, "reason").map(str::to_owned))
                    .unwrap_or_else(|| format!("forbidden by policy {}", names.join(", ")));
                Decision {
                    allowed: false,
                    tier: tier_of(4),
                    reason: Some(reason),
                    policies: names,
                }
            }
        }
    }
}

fn load_dir(dir: &Path) -> anyhow::Result<Loaded> {
    let signature = signature(dir)?;
    let schema_path = dir.join("schema.cedarschema");
    let schema_text = std::fs::read_to_string(&schema_path)
        .with_context(|| format!("reading {}", schema_path.display()))?;
    let (schema, _) = Schema::from_cedarschema_str(&schema_text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", schema_path.display()))?;
    let mut text = String::new();
    for path in policy_files(dir)? {
        text.push_str(&std::fs::read_to_string(&path)?);
        text.push('\n');
    }
    let policies = PolicySet::from_str(&text).map_err(|e| anyhow::anyhow!("policy syntax: {e}"))?;
    let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
    if !result.validation_passed() {
        let errors: Vec<String> = result
            .validation_errors()
            .map(ToString::to_string)
            .collect();
        anyhow::bail!(
            "policies do not validate against the schema: {}",
            errors.join("; ")
        );
    }
    for p in policies.policies() {
        if let Some(t) = p.annotation("tier") {
            anyhow::ensure!(
                matches!(t, "1" | "2" | "3" | "4"),
                "policy {} has @tier({t}); tiers are 1 to 4",
                p.id()
            );
        }
    }
    Ok(Loaded {
        policies,
        schema,
        signature,
    })
}

fn policy_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .collect();
    files.sort();
    Ok(files)
}

/// Names, sizes and modification times of the directory's files: cheap to compute, changes
/// whenever an editor saves.
fn signature(dir: &Path) -> anyhow::Result<String> {
    let mut parts = vec![];
    let mut files = policy_files(dir)?;
    files.push(dir.join("schema.cedarschema"));
    for p in files {
        let m = std::fs::metadata(&p)?;
        let t = m
            .modified()
            .unwrap_or(SystemTime::UNIX_EPOCH)
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        parts.push(format!("{}:{}:{}", p.display(), m.len(), t.as_nanos()));
    }
    Ok(parts.join("|"))
}
