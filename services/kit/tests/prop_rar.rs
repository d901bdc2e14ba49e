//! Property tests of `kit::rar`, the `authorization_details` parser every token request and token
//! passes through: arbitrary input never panics, what is accepted is a normalized fixed point, the
//! fingerprint depends on the grant and not its spelling, and authority only narrows.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of a test fail loudly where they stand, like the test"
)]

mod common;

use proptest::{prelude::*, sample::Index};
use serde_json::{Map, Value, json};

use kit::rar::{
    self, AuthorizationDetail, CeilingEntry, VAULT_PATH_ACCESS, canonical_json, covered_by_any,
    covers, fingerprint, parse, parse_cents, within_ceiling,
};

// ---- the catalogue, as a client reads it from the docs -----------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum F {
    Email,
    Account,
    AccountKind,
    Amount,
    Group,
    Text,
}

type Fields = &'static [(&'static str, F)];

/// (type, action, required fields, optional fields).
const CATALOGUE: &[(&str, &str, Fields, Fields)] = &[
    (
        rar::BANKING,
        "get_balance",
        &[],
        &[("account", F::Account), ("owner", F::Email)],
    ),
    (rar::BANKING, "list_accounts", &[], &[("owner", F::Email)]),
    (
        rar::BANKING,
        "open_account",
        &[("kind", F::AccountKind)],
        &[("owner", F::Email)],
    ),
    (
        rar::BANKING,
        "transfer_funds",
        &[
            ("amount", F::Amount),
            ("source", F::Account),
            ("destination", F::Account),
        ],
        &[("owner", F::Email)],
    ),
    (rar::IAM, "list_users", &[], &[]),
    (rar::IAM, "get_user", &[("email", F::Email)], &[]),
    (
        rar::IAM,
        "create_user",
        &[("email", F::Email)],
        &[("display_name", F::Text)],
    ),
    (
        rar::IAM,
        "add_user_to_group",
        &[("email", F::Email), ("group", F::Group)],
        &[],
    ),
    (rar::IAM, "deactivate_user", &[("email", F::Email)], &[]),
    (
        rar::IAM,
        "revoke_user_sessions",
        &[("email", F::Email)],
        &[],
    ),
    (rar::IAM, "delete_user", &[("email", F::Email)], &[]),
    (rar::IAM, "grant_admin_role", &[("email", F::Email)], &[]),
    (rar::ENTRA, "graph_user_list", &[], &[]),
    (rar::ENTRA, "graph_user_get", &[("email", F::Email)], &[]),
    (
        rar::ENTRA,
        "graph_user_create",
        &[("email", F::Email)],
        &[("display_name", F::Text)],
    ),
];

fn field_kind(name: &str) -> F {
    match name {
        "email" | "owner" => F::Email,
        "account" | "source" | "destination" => F::Account,
        "group" => F::Group,
        "kind" => F::AccountKind,
        "amount" => F::Amount,
        _ => F::Text,
    }
}

const MAX_CENTS: i64 = 999_999_999_999;

// ---- generators ------------------------------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,31}"
}

fn email() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._+-]{1,12}@[a-zA-Z0-9-]{1,10}\\.[a-zA-Z]{2,6}"
}

/// The ways a client may spell `cents` (all mean the same amount).
fn spellings(cents: i64) -> Vec<String> {
    let (w, f) = (cents / 100, cents % 100);
    let mut out = vec![format!("{w}.{f:02}")];
    if f % 10 == 0 {
        out.push(format!("{w}.{}", f / 10));
    }
    if f == 0 {
        out.push(format!("{w}"));
    }
    if w < 1_000_000_000 {
        out.push(format!("0{w}.{f:02}"));
    }
    out
}

fn amount_json(cents: i64, currency: &str, spelling: Index) -> Value {
    let s = spellings(cents);
    json!({"value": s[spelling.index(s.len())], "currency": currency})
}

fn amount() -> impl Strategy<Value = Value> {
    (1..=MAX_CENTS, "[A-Z]{3}", any::<Index>()).prop_map(|(c, cur, i)| amount_json(c, &cur, i))
}

fn field(kind: F) -> BoxedStrategy<Value> {
    match kind {
        F::Email => email().prop_map(Value::from).boxed(),
        F::Account | F::Group => name().prop_map(Value::from).boxed(),
        F::AccountKind => prop::sample::select(vec!["checking", "savings", "trading"])
            .prop_map(Value::from)
            .boxed(),
        F::Amount => amount().boxed(),
        F::Text => "[^\\p{Cc}]{1,40}".prop_map(Value::from).boxed(),
    }
}

/// A valid business entry as a client would send it.
fn business() -> impl Strategy<Value = Value> {
    (0..CATALOGUE.len()).prop_flat_map(|i| {
        let (kind, action, required, optional) = CATALOGUE[i];
        let required: Vec<BoxedStrategy<(String, Value)>> = required
            .iter()
            .map(|(n, f)| field(*f).prop_map(move |v| ((*n).to_owned(), v)).boxed())
            .collect();
        let optional: Vec<BoxedStrategy<Option<(String, Value)>>> = optional
            .iter()
            .map(|(n, f)| {
                prop::option::of(field(*f).prop_map(move |v| ((*n).to_owned(), v))).boxed()
            })
            .collect();
        let top = (
            any::<bool>(),
            prop::option::of(prop::collection::vec("[^\\p{Cc}]{1,20}", 0..3)),
            prop::option::of(".{0,20}"),
        );
        (required, optional, top).prop_map(move |(r, o, (actions, locations, identifier))| {
            let mut od = Map::new();
            od.insert("action".into(), action.into());
            od.extend(r);
            od.extend(o.into_iter().flatten());
            let mut d = json!({"type": kind, "operationDetails": od});
            if actions {
                d["actions"] = json!([action]);
            }
            if let Some(l) = locations {
                d["locations"] = json!(l);
            }
            if let Some(i) = identifier {
                d["identifier"] = json!(i);
            }
            d
        })
    })
}

fn vault_path() -> impl Strategy<Value = String> {
    ("[a-z][a-z0-9_-]{0,20}", "[a-z][a-z0-9_-]{0,20}").prop_map(|(m, r)| format!("{m}/creds/{r}"))
}

/// A valid `vault:path_access` entry.
fn vault() -> impl Strategy<Value = Value> {
    prop::collection::vec(vault_path(), 1..4)
        .prop_map(|l| json!({"type": VAULT_PATH_ACCESS, "locations": l, "actions": ["read"]}))
}

/// A valid `authorization_details` array, as JSON.
fn raw_details() -> impl Strategy<Value = Value> {
    prop::collection::vec(prop_oneof![3 => business(), 1 => vault()], 1..4).prop_map(Value::Array)
}

/// Object keys the parser looks for.
const KEYS: &[&str] = &[
    "type",
    "operationDetails",
    "action",
    "actions",
    "locations",
    "identifier",
    "amount",
    "value",
    "currency",
    "email",
    "owner",
    "source",
    "destination",
    "kind",
];

fn json_key() -> impl Strategy<Value = String> {
    common::json_key(KEYS)
}

/// Any JSON value, a few levels deep, with keys that the parser looks for.
fn json_value() -> impl Strategy<Value = Value> {
    json_value_with(true)
}

/// Any JSON value; `floats: false` leaves floats out where a property compares a value with its
/// text read back (serde_json without `float_roundtrip` may misread a float's last bit).
fn json_value_with(floats: bool) -> impl Strategy<Value = Value> {
    const WORDS: &[&str] = &[
        rar::BANKING,
        rar::IAM,
        VAULT_PATH_ACCESS,
        "transfer_funds",
        "read",
        "1000.00",
        "USD",
        "a@b.co",
        "checking",
    ];
    common::json_tree(WORDS, KEYS, floats)
}

// ---- helpers ---------------------------------------------------------------------------------

/// One random edit of `v`: a node replaced, removed, or given a new member.
fn mutate(v: &mut Value, at: Index, op: u8, key: String, new: Value) {
    let mut all = vec![];
    common::pointers(v, String::new(), &mut all);
    let target = all[at.index(all.len())].clone();
    match op {
        0 => {
            if let Some(node) = v.pointer_mut(&target) {
                *node = new;
            }
        }
        1 => {
            let (parent, last) = target.rsplit_once('/').unwrap_or(("", ""));
            let last = last.replace("~1", "/").replace("~0", "~");
            match v.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(&last);
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = last.parse::<usize>()
                        && i < a.len()
                    {
                        a.remove(i);
                    }
                }
                _ => {}
            }
        }
        _ => match v.pointer_mut(&target) {
            Some(Value::Object(m)) => {
                m.insert(key, new);
            }
            Some(Value::Array(a)) => a.push(new),
            _ => {}
        },
    }
}

/// A tiny deterministic generator, so one proptest seed drives a whole rendering.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// JSON text for `v` with keys in a random order, random insignificant whitespace, and ASCII
/// characters of strings randomly written as `\u` escapes.
fn render(v: &Value, dice: &mut Dice, out: &mut String) {
    const WS: [&str; 5] = ["", " ", "\n", "\t", "\r\n  "];
    out.push_str(WS[dice.roll(WS.len())]);
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            for i in (1..entries.len()).rev() {
                entries.swap(i, dice.roll(i + 1));
            }
            out.push('{');
            for (n, (k, c)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                render_str(k, dice, out);
                out.push_str(WS[dice.roll(WS.len())]);
                out.push(':');
                render(c, dice, out);
            }
            out.push_str(WS[dice.roll(WS.len())]);
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (n, c) in a.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                render(c, dice, out);
            }
            out.push_str(WS[dice.roll(WS.len())]);
            out.push(']');
        }
        Value::String(s) => render_str(s, dice, out),
        other => out.push_str(&other.to_string()),
    }
    out.push_str(WS[dice.roll(WS.len())]);
}

fn render_str(s: &str, dice: &mut Dice, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if c.is_ascii_alphanumeric() && dice.roll(4) == 0 {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            let quoted = serde_json::to_string(&c.to_string()).unwrap();
            out.push_str(&quoted[1..quoted.len() - 1]);
        }
    }
    out.push('"');
}

/// The same grant spelled differently: emails in another case, amounts written another way.
fn respell(v: &mut Value, dice: &mut Dice) {
    match v {
        Value::Object(m) => {
            for (k, c) in m.iter_mut() {
                match (k.as_str(), &mut *c) {
                    ("email" | "owner", Value::String(s)) => {
                        *s = s
                            .chars()
                            .map(|ch| {
                                if dice.roll(2) == 0 {
                                    ch.to_ascii_uppercase()
                                } else {
                                    ch
                                }
                            })
                            .collect();
                    }
                    ("amount", Value::Object(a)) => {
                        let cents = parse_cents(a["value"].as_str().unwrap()).unwrap();
                        let s = spellings(cents);
                        a["value"] = json!(s[dice.roll(s.len())]);
                    }
                    _ => respell(c, dice),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| respell(c, dice)),
        _ => {}
    }
}

/// What an accepted grant must be: its own normalized form, re-read identically from the JSON a
/// token carries, with the same fingerprint, covering itself, readable in plain words.
fn assert_fixed_point(parsed: &[AuthorizationDetail]) -> Result<(), TestCaseError> {
    prop_assert!(!parsed.is_empty());
    for d in parsed {
        prop_assert_eq!(&d.validated().unwrap(), d);
        prop_assert!(covers(d, d).is_ok(), "{:?}", covers(d, d));
        prop_assert!(!d.summary().is_empty());
    }
    let wire = serde_json::to_string(parsed).unwrap();
    let reparsed = parse(&wire).unwrap();
    prop_assert_eq!(&reparsed, &parsed.to_vec());
    let fp = fingerprint(parsed);
    prop_assert_eq!(fingerprint(&reparsed), fp.clone());
    prop_assert!(
        fp.len() == 64
            && fp
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let _ = rar::summarize(parsed);
    Ok(())
}

/// What changed in [`change_one_value`], which decides what coverage must say about it.
#[derive(Debug, PartialEq)]
enum Change {
    AmountUp,
    IdentifierAdded,
    VaultLocation,
    Other,
}

/// `d` with exactly one value changed to another valid one.
fn change_one_value(d: &AuthorizationDetail, which: Index) -> (AuthorizationDetail, Change) {
    let mut out = d.clone();
    if d.is_resource_access() {
        let locs = out.locations.as_mut().unwrap();
        let i = which.index(locs.len());
        let fresh = (0..)
            .map(|n| format!("changed/creds/role{n}"))
            .find(|p| !locs.contains(p))
            .unwrap();
        locs[i] = fresh;
        return (out, Change::VaultLocation);
    }
    let od = out.operation_details.as_mut().unwrap();
    let names: Vec<String> = od.keys().filter(|k| *k != "action").cloned().collect();
    if names.is_empty() {
        return match &out.identifier {
            None => {
                out.identifier = Some("changed".into());
                (out, Change::IdentifierAdded)
            }
            Some(i) => {
                out.identifier = Some(format!("{i}x"));
                (out, Change::Other)
            }
        };
    }
    let name = &names[which.index(names.len())];
    let v = od.get_mut(name).unwrap();
    let s = v.as_str().map(str::to_owned).unwrap_or_default();
    let mut change = Change::Other;
    *v = match field_kind(name) {
        F::Email => json!(format!("x{s}")),
        F::Account | F::Group if s.len() < 32 => json!(format!("{s}x")),
        F::Account | F::Group => json!("a"),
        F::AccountKind => json!(match s.as_str() {
            "checking" => "savings",
            "savings" => "trading",
            _ => "checking",
        }),
        F::Text if s.chars().count() < 200 => json!(format!("{s}x")),
        F::Text => json!("a"),
        F::Amount => {
            let a = rar::Amount::from_json(v).unwrap();
            let cents = if a.cents < MAX_CENTS {
                change = Change::AmountUp;
                a.cents + 1
            } else {
                a.cents - 1
            };
            rar::Amount { cents, ..a }.to_json()
        }
    };
    (out.validated().unwrap(), change)
}

fn ceiling_for(d: &AuthorizationDetail) -> CeilingEntry {
    if d.is_resource_access() {
        CeilingEntry {
            kind: d.kind.clone(),
            actions: vec![],
            locations: d.locations.clone().unwrap_or_default(),
        }
    } else {
        CeilingEntry {
            kind: d.kind.clone(),
            actions: vec![d.action().unwrap().to_owned()],
            locations: vec![],
        }
    }
}

fn transfer(
    cents: i64,
    currency: &str,
    spelling: Index,
    owner: Option<&str>,
) -> AuthorizationDetail {
    let mut od = json!({
        "action": "transfer_funds",
        "amount": amount_json(cents, currency, spelling),
        "source": "checking",
        "destination": "savings",
    });
    if let Some(o) = owner {
        od["owner"] = json!(o);
    }
    let raw = json!([{"type": rar::BANKING, "operationDetails": od}]);
    parse(&raw.to_string()).unwrap().remove(0)
}

// ---- properties ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary text and arbitrary JSON never panic the parser; what is not an array of
    /// objects is a syntax error, and whatever is accepted is a normalized fixed point.
    #[test]
    fn arbitrary_input_never_panics(text in any::<String>(), v in json_value()) {
        if let Ok(parsed) = parse(&text) {
            assert_fixed_point(&parsed)?;
        }
        match (&v, parse(&v.to_string())) {
            (_, Ok(parsed)) => assert_fixed_point(&parsed)?,
            (Value::Array(a), Err(e)) if a.is_empty() => prop_assert_eq!(e, rar::RarError::Empty),
            (Value::Array(_), Err(_)) => {}
            (_, Err(e)) => prop_assert!(matches!(e, rar::RarError::Syntax(_)), "{e:?}"),
        }
        let _ = canonical_json(&v);
    }

    /// Every well-formed request parses, entry for entry, to a normalized fixed point.
    #[test]
    fn valid_details_parse_to_a_fixed_point(raw in raw_details()) {
        let parsed = parse(&raw.to_string()).unwrap();
        prop_assert_eq!(parsed.len(), raw.as_array().unwrap().len());
        assert_fixed_point(&parsed)?;
    }

    /// A well-formed request with one random edit (a value replaced by any JSON, a member
    /// removed or added) never panics, and if it is still accepted it is a fixed point.
    #[test]
    fn edited_details_never_panic(
        raw in raw_details(),
        at in any::<Index>(),
        op in 0..3u8,
        key in json_key(),
        new in json_value(),
    ) {
        let mut v = raw;
        mutate(&mut v, at, op, key, new);
        if let Ok(parsed) = parse(&v.to_string()) {
            assert_fixed_point(&parsed)?;
        }
    }

    /// The fingerprint is of the grant, not of its spelling: member order, whitespace, string
    /// escapes, email case and the way an amount is written do not change it.
    #[test]
    fn fingerprint_ignores_order_whitespace_and_spelling(raw in raw_details(), seed in 1..u64::MAX) {
        let plain = parse(&raw.to_string()).unwrap();
        let mut dice = Dice(seed);
        let mut respelled = raw.clone();
        respell(&mut respelled, &mut dice);
        let mut text = String::new();
        render(&respelled, &mut dice, &mut text);
        let fancy = parse(&text).unwrap();
        prop_assert_eq!(&fancy, &plain);
        prop_assert_eq!(fingerprint(&fancy), fingerprint(&plain));
        let as_json = |d: &[AuthorizationDetail]| canonical_json(&serde_json::to_value(d).unwrap());
        prop_assert_eq!(as_json(&fancy), as_json(&plain));
    }

    /// Changing any one value of a grant changes its fingerprint.
    #[test]
    fn fingerprint_changes_with_any_value(raw in raw_details(), entry in any::<Index>(), which in any::<Index>()) {
        let parsed = parse(&raw.to_string()).unwrap();
        let i = entry.index(parsed.len());
        let (changed, _) = change_one_value(&parsed[i], which);
        let mut other = parsed.clone();
        other[i] = changed;
        prop_assert_ne!(&other, &parsed);
        prop_assert_ne!(fingerprint(&other), fingerprint(&parsed));
    }

    /// Canonical JSON reads back as the same value, is its own canonical form, and tells two
    /// values apart exactly when they differ. Without floats: validated details never hold one,
    /// and a float may not survive serde_json's best-effort reading of its text.
    #[test]
    fn canonical_json_is_faithful(v in json_value_with(false), w in json_value_with(false)) {
        let c = canonical_json(&v);
        let back: Value = serde_json::from_str(&c).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(canonical_json(&back), c.clone());
        prop_assert_eq!(c == canonical_json(&w), v == w);
    }

    /// A grant covers itself and is within a ceiling made from it; a ceiling without its
    /// action, type or one of its locations does not hold it.
    #[test]
    fn coverage_and_ceilings_are_reflexive_and_tight(raw in raw_details()) {
        let parsed = parse(&raw.to_string()).unwrap();
        for d in &parsed {
            prop_assert!(covers(d, d).is_ok());
            prop_assert!(covered_by_any(&parsed, d).is_ok());
            let own = ceiling_for(d);
            prop_assert!(within_ceiling(std::slice::from_ref(&own), d).is_ok());
            let others: Vec<CeilingEntry> = rar::supported_types()
                .into_iter()
                .filter(|t| *t != d.kind)
                .map(|t| CeilingEntry { kind: t.into(), actions: vec!["*".into()], locations: own.locations.clone() })
                .collect();
            prop_assert!(within_ceiling(&others, d).is_err());
            if d.is_resource_access() {
                for l in &own.locations {
                    let mut narrower = own.clone();
                    narrower.locations.retain(|x| x != l);
                    prop_assert!(within_ceiling(&[narrower], d).is_err());
                }
            } else {
                let any_action = CeilingEntry { actions: vec!["*".into()], ..own.clone() };
                prop_assert!(within_ceiling(&[any_action], d).is_ok());
                let mut rest = own.clone();
                rest.actions = rar::actions_of(&d.kind)
                    .into_iter()
                    .filter(|a| Some(*a) != d.action())
                    .map(str::to_owned)
                    .collect();
                prop_assert!(within_ceiling(&[rest], d).is_err());
            }
        }
    }

    /// An amount only shrinks along a delegation: a request is covered exactly when it is the
    /// same currency and no larger, however either amount is written.
    #[test]
    fn an_amount_only_shrinks(
        granted in 1..=MAX_CENTS,
        requested in prop_oneof![1..=MAX_CENTS, 1..1000i64],
        currencies in ("[A-Z]{3}", "[A-Z]{3}"),
        same_currency in any::<bool>(),
        spellings in any::<(Index, Index)>(),
    ) {
        let (gc, rc) = currencies;
        let rc = if same_currency { gc.clone() } else { rc };
        let g = transfer(granted, &gc, spellings.0, None);
        let r = transfer(requested, &rc, spellings.1, None);
        let covered = covers(&g, &r);
        prop_assert_eq!(covered.is_ok(), requested <= granted && gc == rc, "{:?}", covered);
        if requested > granted {
            prop_assert!(covers(&g, &r).unwrap_err().contains("exceeds") || gc != rc);
        }
        // Naming an owner the grant did not name is never covered, whatever the amount.
        let owned = transfer(requested.min(granted), &gc, spellings.1, Some("bob@example.com"));
        prop_assert!(covers(&g, &owned).is_err());
    }

    /// Any other change of a value is not covered by the original grant: only an amount may
    /// shrink, and only a grant without an identifier admits one.
    #[test]
    fn any_other_change_is_not_covered(raw in raw_details(), entry in any::<Index>(), which in any::<Index>()) {
        let parsed = parse(&raw.to_string()).unwrap();
        let d = &parsed[entry.index(parsed.len())];
        let (changed, how) = change_one_value(d, which);
        match how {
            Change::AmountUp => {
                prop_assert!(covers(d, &changed).is_err());
                prop_assert!(covers(&changed, d).is_ok());
            }
            Change::IdentifierAdded => {
                prop_assert!(covers(d, &changed).is_ok());
                prop_assert!(covers(&changed, d).is_err());
            }
            Change::VaultLocation => prop_assert!(covers(d, &changed).is_err()),
            Change::Other => {
                prop_assert!(covers(d, &changed).is_err());
                prop_assert!(covers(&changed, d).is_err());
            }
        }
    }
}
