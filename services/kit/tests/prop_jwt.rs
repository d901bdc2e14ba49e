//! Property tests of the token parsers that face attackers: `kit::jwt` (the header peek, pinned
//! ES256 verification, unverified decoding) and `kit::jwks` (the key-set client, its lookup by
//! `kid`, and whatever document an issuer's JWKS URL answers), against arbitrary and mutated input.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of a test fail loudly where they stand, like the test"
)]

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::b64;
use kit::{
    jwks::{self, JwksClient},
    jwt::{self, Expect, LEEWAY_SECS, SigningKey, TokenError},
};
use proptest::{prelude::*, sample::Index};
use serde_json::{Value, json};

const ISS: &str = "https://idp.test";
const AUD: &str = "spiffe://demo.local/agent/banking";
const EXPECT: Expect<'static> = Expect {
    issuer: Some(ISS),
    audience: Some(AUD),
};

/// The issuer's key: every token that should verify is signed by it.
static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate("idp-key-1").unwrap());

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

// ---- generators ------------------------------------------------------------------------------

/// Any JSON value, a few levels deep, with keys a JOSE parser looks at.
fn json_value() -> impl Strategy<Value = Value> {
    const KEYS: &[&str] = &[
        "alg", "kid", "typ", "crit", "jku", "x5u", "iss", "sub", "aud", "exp", "nbf", "iat",
        "keys", "kty", "crv", "x", "y", "k", "n", "e", "use",
    ];
    common::json_tree(&["ES256", "none", "HS256", "at+jwt"], KEYS, true)
}

/// Text shaped like a compact JWS: base64url-ish characters and dots, plus some that are not.
fn jws_shaped() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_=+/. -]{0,120}",
        (
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(any::<u8>(), 0..80),
        )
            .prop_map(|(h, c, s)| format!("{}.{}.{}", b64(h), b64(c), b64(s))),
    ]
}

/// Algorithms that are not ES256, including near misses in spelling.
fn other_alg() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "none", "None", "NONE", "nOnE", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
            "PS256", "ES384", "ES512", "ES256K", "EdDSA", "es256", "ES256 ", " ES256", "ES256\0",
            "ES 256", "",
        ])
        .prop_map(str::to_owned),
        ".{0,12}".prop_filter("not ES256", |a| a != "ES256"),
    ]
}

// ---- helpers ---------------------------------------------------------------------------------

/// Access-token-shaped claims for `sub`, valid for five minutes.
fn claims(sub: &str) -> Value {
    let now = kit::now_secs();
    json!({"iss": ISS, "sub": sub, "aud": AUD, "iat": now, "exp": now + 300, "jti": kit::random_id(12)})
}

fn verify(token: &str) -> Result<Value, TokenError> {
    jwt::verify(token, &KEY.decoding_key().unwrap(), &EXPECT)
}

/// A token with this header and these claims, whose signature is `sig` (not a real one).
fn forge(header: &Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(claims.to_string()),
        b64(sig)
    )
}

/// HMAC-SHA256 of the signing input of `header.claims` keyed with `key`: the "verify the HS256
/// token with the public key as the secret" confusion.
fn hs256(header: &Value, claims: &Value, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
        input.as_bytes(),
    );
    format!("{input}.{}", b64(tag.as_ref()))
}

/// Byte strings an attacker could try as the HMAC secret: forms of our public key.
fn public_key_forms() -> Vec<Vec<u8>> {
    let jwk = serde_json::to_value(KEY.public_jwk()).unwrap();
    let coord = |c: &str| URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
    let mut point = vec![4u8];
    point.extend(coord("x"));
    point.extend(coord("y"));
    vec![
        jwk.to_string().into_bytes(),
        point,
        coord("x"),
        KEY.kid().as_bytes().to_vec(),
        Vec::new(),
    ]
}

/// Characters a single-character mutation writes.
const REPLACEMENTS: &[char] = &[
    'A', 'B', 'a', 'b', 'z', '0', '1', '9', '-', '_', '.', '=', '+', '/', ' ', '\n', 'é',
];

/// `token` with its character at `at` replaced by a different one (chosen by `with`).
fn replace_char(token: &str, at: Index, with: Index) -> String {
    let chars: Vec<char> = token.chars().collect();
    let i = at.index(chars.len());
    let mut r = REPLACEMENTS[with.index(REPLACEMENTS.len())];
    if r == chars[i] {
        r = REPLACEMENTS[(with.index(REPLACEMENTS.len()) + 1) % REPLACEMENTS.len()];
    }
    let mut out = chars;
    out[i] = r;
    out.into_iter().collect()
}

// ---- a JWKS endpoint serving whatever a case asks for ----------------------------------------

type Docs = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// One HTTP server for every case; each case registers its document under a fresh path, so
/// cases running in parallel never see each other's documents.
struct KeySets {
    docs: Docs,
    base: String,
    http: reqwest::Client,
}

static KEY_SETS: LazyLock<KeySets> = LazyLock::new(|| {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let docs = Docs::default();
    let app = Router::new()
        .route("/{id}/jwks", get(serve_doc))
        .with_state(docs.clone());
    RT.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    KeySets {
        docs,
        base,
        http: reqwest::Client::new(),
    }
});

async fn serve_doc(State(docs): State<Docs>, Path(id): Path<String>) -> Response {
    match docs.lock().unwrap().get(&id) {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

impl KeySets {
    /// A fresh client (no cache, refetching on every unknown `kid`) for a URL serving `body`.
    fn client_for(&self, body: Vec<u8>) -> JwksClient {
        let id = kit::random_id(12);
        self.docs.lock().unwrap().insert(id.clone(), body);
        JwksClient::with_refetch_interval(
            format!("{}/{id}/jwks", self.base),
            self.http.clone(),
            Duration::ZERO,
        )
    }
}

fn our_key_set() -> Value {
    serde_json::to_value(jwks::publish([&*KEY])).unwrap()
}

// ---- properties ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary text never panics a parser and never verifies.
    #[test]
    fn arbitrary_text_never_panics_and_never_verifies(token in jws_shaped()) {
        let _ = jwt::peek_header(&token);
        let _ = jwt::decode_unverified(&token);
        prop_assert!(verify(&token).is_err());
    }

    /// The header peek accepts exactly a three-part token whose header is an object with
    /// `alg: "ES256"`, and `decode_unverified` reads back exactly the JSON that was encoded.
    #[test]
    fn the_peek_reads_exactly_what_was_encoded(
        header in json_value(),
        claims in json_value(),
        sig in prop::collection::vec(any::<u8>(), 0..72),
    ) {
        let token = forge(&header, &claims, &sig);
        let peeked = jwt::peek_header(&token);
        match header.get("alg") {
            Some(Value::String(alg)) if alg == "ES256" => {
                let h = peeked.unwrap();
                prop_assert_eq!(h.kid.as_deref(), header.get("kid").and_then(Value::as_str));
                prop_assert_eq!(h.typ.as_deref(), header.get("typ").and_then(Value::as_str));
            }
            Some(Value::String(alg)) => {
                prop_assert_eq!(peeked.unwrap_err(), TokenError::AlgorithmNotAllowed(alg.clone()));
            }
            _ => prop_assert_eq!(peeked.unwrap_err(), TokenError::Malformed),
        }
        // Compared with the JSON text re-read, not the value: without serde_json's
        // `float_roundtrip`, a float's last bit may differ after a text round trip.
        let reread = |v: &Value| serde_json::from_str::<Value>(&v.to_string()).unwrap();
        let (h, c) = jwt::decode_unverified(&token).unwrap();
        prop_assert_eq!(h, reread(&header));
        prop_assert_eq!(c, reread(&claims));
        prop_assert!(verify(&token).is_err());
    }

    /// A token our key signs verifies, and reads back the claims it was given.
    #[test]
    fn tokens_signed_by_our_key_verify(
        sub in ".{1,40}",
        typ in prop::sample::select(vec!["at+jwt", "JWT"]),
        extra in prop::collection::btree_map("x_[a-z]{1,8}", json_value(), 0..4),
    ) {
        let mut c = claims(&sub);
        c.as_object_mut().unwrap().extend(extra.into_iter());
        let token = KEY.sign(typ, &c).unwrap();
        let h = jwt::peek_header(&token).unwrap();
        prop_assert_eq!(h.kid.as_deref(), Some(KEY.kid()));
        prop_assert_eq!(h.typ.as_deref(), Some(typ));
        let got = verify(&token).unwrap();
        prop_assert_eq!(&got["sub"], &json!(sub));
        prop_assert_eq!(jwt::decode_unverified(&token).unwrap().1, got);
    }

    /// Changing any one character of a good token, in the header, the claims or the signature,
    /// gets it refused; so does dropping or adding one.
    #[test]
    fn any_single_character_mutation_is_refused(
        sub in "[a-z0-9@.]{1,24}",
        at in any::<Index>(),
        with in any::<Index>(),
        kind in 0..3u8,
    ) {
        let token = KEY.sign("at+jwt", &claims(&sub)).unwrap();
        prop_assert!(verify(&token).is_ok());
        let mutated = match kind {
            0 => replace_char(&token, at, with),
            1 => {
                let mut t = token.clone();
                t.remove(at.index(t.len()));
                t
            }
            _ => {
                let mut t = token.clone();
                t.insert(at.index(t.len() + 1), REPLACEMENTS[with.index(REPLACEMENTS.len())]);
                t
            }
        };
        prop_assert!(verify(&mutated).is_err(), "accepted {mutated}");
    }

    /// A header naming any algorithm but ES256 is refused before a key is chosen, whatever the
    /// signature: none, garbage, or an HMAC keyed with some form of our public key.
    #[test]
    fn other_algorithms_are_refused(
        alg in other_alg(),
        sig in prop::collection::vec(any::<u8>(), 0..64),
        forms in 0..6usize,
    ) {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": KEY.kid()});
        let c = claims("alice");
        let token = match public_key_forms().get(forms) {
            Some(secret) => hs256(&header, &c, secret),
            None => forge(&header, &c, &sig),
        };
        prop_assert_eq!(
            jwt::peek_header(&token).unwrap_err(),
            TokenError::AlgorithmNotAllowed(alg.clone())
        );
        prop_assert!(verify(&token).is_err());
        // The same, with the real ES256 signature of a genuine token's signing input.
        let genuine = KEY.sign("at+jwt", &c).unwrap();
        let sig = genuine.rsplit('.').next().unwrap();
        let spliced = format!("{}.{}.{sig}", b64(header.to_string()), b64(c.to_string()));
        prop_assert!(verify(&spliced).is_err());
    }

    /// A token for another audience or from another issuer is refused even though our key
    /// signed it; so is one past its `exp` or before its `nbf` beyond the leeway.
    #[test]
    fn audience_issuer_and_times_are_enforced(
        aud in prop_oneof![
            ".{0,30}".prop_map(Value::from),
            prop::collection::vec(".{0,20}", 0..4).prop_map(Value::from),
        ],
        iss in ".{0,30}",
        late in (LEEWAY_SECS as i64 + 5)..100_000,
    ) {
        let now = kit::now_secs();
        let aud_names_us = aud == json!(AUD) || aud.as_array().is_some_and(|a| a.contains(&json!(AUD)));
        let mut c = claims("alice");
        c["aud"] = aud.clone();
        let r = verify(&KEY.sign("at+jwt", &c).unwrap());
        if aud_names_us {
            prop_assert!(r.is_ok());
        } else {
            prop_assert!(matches!(r, Err(TokenError::WrongAudience(_))), "{r:?}");
        }

        let mut c = claims("alice");
        c["iss"] = json!(iss);
        let r = verify(&KEY.sign("at+jwt", &c).unwrap());
        prop_assert_eq!(r.is_ok(), iss == ISS, "{:?}", r);

        let mut c = claims("alice");
        c["exp"] = json!(now - late);
        prop_assert_eq!(verify(&KEY.sign("at+jwt", &c).unwrap()).unwrap_err(), TokenError::Expired);
        let mut c = claims("alice");
        c["nbf"] = json!(now + late);
        prop_assert_eq!(
            verify(&KEY.sign("at+jwt", &c).unwrap()).unwrap_err(),
            TokenError::NotYetValid
        );
    }

    /// Whatever an issuer's JWKS URL answers, the client neither panics nor verifies our token
    /// with it (it does not contain our key).
    #[test]
    fn garbage_key_sets_never_panic_or_verify(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            json_value().prop_map(|keys| json!({"keys": keys}).to_string().into_bytes()),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["EC", "RSA", "oct", "OKP", "ec", ""]),
                    prop::sample::select(vec!["P-256", "P-384", "Ed25519", "secp256k1"]),
                    prop::collection::vec(any::<u8>(), 0..40),
                    prop::collection::vec(any::<u8>(), 0..40),
                ),
                0..3,
            )
            .prop_map(|keys| {
                let keys: Vec<Value> = keys
                    .into_iter()
                    .map(|(kty, crv, x, y)| json!({
                        "kty": kty, "crv": crv, "x": b64(&x), "y": b64(&y), "k": b64(&x),
                        "n": b64(&x), "e": b64(&y), "kid": KEY.kid(), "alg": "ES256", "use": "sig",
                    }))
                    .collect();
                json!({"keys": keys}).to_string().into_bytes()
            }),
        ],
    ) {
        let token = KEY.sign("at+jwt", &claims("alice")).unwrap();
        let client = KEY_SETS.client_for(body);
        let verified = RT.block_on(async {
            let _ = client.key(KEY.kid()).await;
            client.verify::<Value>(&token, &EXPECT).await
        });
        prop_assert!(verified.is_err());
    }

    /// A key set whose entry for our `kid` has its key material, `kid` or type changed never
    /// verifies our token; other changes (metadata members, extra members) never panic.
    #[test]
    fn a_tampered_key_never_verifies(
        member in prop::sample::select(vec![
            "x", "y", "kid", "kty", "crv", "alg", "use", "key_ops", "extra",
        ]),
        value in prop_oneof![
            json_value(),
            prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| Value::from(b64(b))),
        ],
    ) {
        let mut set = our_key_set();
        let key = &mut set["keys"][0];
        prop_assume!(key.get(member) != Some(&value));
        key[member] = value;
        let token = KEY.sign("at+jwt", &claims("alice")).unwrap();
        let client = KEY_SETS.client_for(set.to_string().into_bytes());
        let r = RT.block_on(client.verify::<Value>(&token, &EXPECT));
        if ["x", "y", "kid", "kty"].contains(&member) {
            prop_assert!(r.is_err(), "verified with a key whose {member} changed");
        }
    }

    /// A token naming a `kid` the issuer does not publish is refused as an unknown key; one
    /// signed by another key under our `kid` has a bad signature; one with no `kid` is refused.
    #[test]
    fn random_kids_and_rogue_keys_are_refused(kid in ".{0,40}") {
        prop_assume!(kid != KEY.kid());
        let rogue = SigningKey::generate(kid.clone()).unwrap();
        let client = KEY_SETS.client_for(our_key_set().to_string().into_bytes());
        let c = claims("alice");
        let unknown = rogue.sign("at+jwt", &c).unwrap();
        let r = RT.block_on(client.verify::<Value>(&unknown, &EXPECT));
        prop_assert_eq!(r.unwrap_err(), TokenError::UnknownKey(kid.clone()));

        // The rogue key under our kid: the header is re-signed by the rogue key.
        let encoding = jsonwebtoken::EncodingKey::from_ec_pem(rogue.to_pem().as_bytes()).unwrap();
        let mut header = jsonwebtoken::Header::new(jwt::ALG);
        header.kid = Some(KEY.kid().to_owned());
        let impostor = jsonwebtoken::encode(&header, &c, &encoding).unwrap();
        let r = RT.block_on(client.verify::<Value>(&impostor, &EXPECT));
        prop_assert_eq!(r.unwrap_err(), TokenError::BadSignature);

        // Our own key, but no kid at all.
        let ours = jsonwebtoken::EncodingKey::from_ec_pem(KEY.to_pem().as_bytes()).unwrap();
        let anonymous = jsonwebtoken::encode(&jsonwebtoken::Header::new(jwt::ALG), &c, &ours).unwrap();
        let r = RT.block_on(client.verify::<Value>(&anonymous, &EXPECT));
        prop_assert_eq!(r.unwrap_err(), TokenError::MissingKid);
    }

    /// A key set that publishes an HMAC (`oct`) key under our `kid` does not make an HS256
    /// token signed with that secret verify, nor an "ES256" one MACed with it.
    #[test]
    fn a_symmetric_key_in_the_set_is_never_used(
        secret in prop::collection::vec(any::<u8>(), 1..64),
        alg in prop::sample::select(vec!["HS256", "ES256"]),
    ) {
        let set = json!({"keys": [{"kty": "oct", "k": b64(&secret), "kid": KEY.kid(), "alg": "HS256"}]});
        let client = KEY_SETS.client_for(set.to_string().into_bytes());
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": KEY.kid()});
        let token = hs256(&header, &claims("alice"), &secret);
        let r = RT.block_on(client.verify::<Value>(&token, &EXPECT));
        prop_assert!(r.is_err(), "an HMAC-signed token verified");
    }
}
