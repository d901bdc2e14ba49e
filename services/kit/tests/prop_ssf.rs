//! Property tests of the SSF receiver's handling of pushed Security Event Tokens, the input a
//! transmitter (or anyone who can reach the push URL) controls: a real `kit::ssf::Receiver`, started
//! against a small transmitter on port 0, judges arbitrary, mutated and mis-signed SETs over HTTP.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of a test fail loudly where they stand, like the test"
)]

mod common;

use std::sync::{Arc, LazyLock, Mutex};

use aws_lc_rs::encoding::AsDer as _;
use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{b64, listen, serve};
use jsonwebtoken::{EncodingKey, Header};
use proptest::{prelude::*, sample::Index};
use serde_json::{Value, json};

use kit::ssf::{
    Delivery, EventClaims, EventType, PUSH, Receiver, ReceiverConfig, RsaSigningKey,
    SET_MEDIA_TYPE, SET_TYP, SetEvent, SubjectId,
};

const AUD: &str = "urn:test:receiver";
const STREAM_ID: &str = "stream-1";

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

// ---- keys ------------------------------------------------------------------------------------

/// An RSA key as the transmitter holds it, and as a raw signer for SETs with any header.
struct Rsa {
    key: RsaSigningKey,
    encoding: EncodingKey,
}

impl Rsa {
    fn generate() -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = pair.as_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        Self {
            key: RsaSigningKey::from_pem(&pem).unwrap(),
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        }
    }

    /// Signs `claims` RS256 with `typ` and `kid` as given (`None` leaves the member out).
    fn sign_as(&self, typ: Option<&str>, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.typ = typ.map(str::to_owned);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

// ---- a transmitter on port 0 and a receiver started against it --------------------------------

struct Fixture {
    iss: String,
    transmitter: Rsa,
    /// Another key, never published.
    rogue: Rsa,
    push_url: String,
    /// The `Authorization` value the receiver gave the transmitter for its stream.
    push_authorization: String,
    http: reqwest::Client,
    received: Arc<Mutex<Vec<SetEvent>>>,
}

#[derive(Clone)]
struct Transmitter {
    iss: String,
    jwks: Value,
    /// What the receiver sent when it created its stream.
    created: Arc<Mutex<Option<Value>>>,
}

async fn create_stream(
    State(t): State<Transmitter>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    *t.created.lock().unwrap() = Some(body.clone());
    let stream = json!({
        "stream_id": STREAM_ID,
        "iss": t.iss,
        "aud": AUD,
        "events_requested": body["events_requested"],
        "events_delivered": body["events_requested"],
        "delivery": {"method": PUSH, "endpoint_url": body["delivery"]["endpoint_url"]},
        "description": body["description"],
    });
    (StatusCode::CREATED, Json(stream))
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let transmitter = Rsa::generate();
    let rogue = Rsa::generate();
    let (t_listener, iss) = listen();
    let state = Transmitter {
        iss: iss.clone(),
        jwks: json!({"keys": [transmitter.key.public_jwk()]}),
        created: Arc::default(),
    };
    let app = Router::new()
        .route(
            "/.well-known/ssf-configuration",
            get(|State(t): State<Transmitter>| async move {
                Json(json!({
                    "spec_version": kit::ssf::SPEC_VERSION,
                    "issuer": t.iss,
                    "jwks_uri": format!("{}/jwks", t.iss),
                    "configuration_endpoint": format!("{}/streams", t.iss),
                    "delivery_methods_supported": [PUSH],
                }))
            }),
        )
        .route(
            "/jwks",
            get(|State(t): State<Transmitter>| async move { Json(t.jwks) }),
        )
        .route(
            "/streams",
            get(|| async { Json(json!([])) }).post(create_stream),
        )
        .with_state(state.clone());
    serve(&RT, t_listener, app);

    let (r_listener, r_base) = listen();
    let push_url = format!("{r_base}/ssf/events");
    let received: Arc<Mutex<Vec<SetEvent>>> = Arc::default();
    let log = received.clone();
    let http = reqwest::Client::new();
    let receiver = Receiver::new(
        http.clone(),
        ReceiverConfig {
            transmitter: iss.clone(),
            token: "management-token".into(),
            description: "prop".into(),
            delivery: Delivery::Push {
                endpoint_url: push_url.clone(),
            },
            events: EventType::CAEP.to_vec(),
        },
        move |e| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(e);
                Ok(())
            }
        },
    );
    RT.block_on(receiver.start()).unwrap();
    serve(&RT, r_listener, receiver.router("/ssf/events"));
    let push_authorization =
        state.created.lock().unwrap().as_ref().unwrap()["delivery"]["authorization_header"]
            .as_str()
            .unwrap()
            .to_owned();
    Fixture {
        iss,
        transmitter,
        rogue,
        push_url,
        push_authorization,
        http,
        received,
    }
});

/// The receiver's answer to one push: the status and the RFC 8935 `err`, if any.
#[derive(Debug)]
struct Answer {
    status: u16,
    err: Option<String>,
}

fn push_with(body: Vec<u8>, content_type: &str, authorization: &str) -> Answer {
    let fx = &*FIXTURE;
    RT.block_on(async {
        let resp = fx
            .http
            .post(&fx.push_url)
            .header("content-type", content_type)
            .header("authorization", authorization)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        let err = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["err"].as_str().map(str::to_owned));
        Answer { status, err }
    })
}

fn push(token: impl Into<Vec<u8>>) -> Answer {
    let fx = &*FIXTURE;
    push_with(token.into(), SET_MEDIA_TYPE, &fx.push_authorization)
}

/// How many times the callback has been handed the SET `jti`.
fn delivered(jti: &str) -> usize {
    FIXTURE
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.jti == jti)
        .count()
}

/// Asserts the push was refused as `400` with one of `codes`, and nothing reached the callback.
fn assert_refused(answer: &Answer, codes: &[&str], jti: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(answer.status, 400, "{:?}", answer);
    let err = answer.err.as_deref().unwrap_or_default();
    prop_assert!(
        codes.contains(&err),
        "{:?} is not one of {:?}",
        answer,
        codes
    );
    prop_assert_eq!(delivered(jti), 0);
    Ok(())
}

// ---- generators ------------------------------------------------------------------------------

/// Object keys the parser looks for.
const KEYS: &[&str] = &[
    "iss", "aud", "iat", "jti", "sub", "exp", "txn", "sub_id", "events", "format", "id", "email",
    "user", "session", "status", "state", "claims", "alg", "kid", "typ",
];

fn json_key() -> impl Strategy<Value = String> {
    common::json_key(KEYS)
}

/// Any JSON value, a few levels deep, with keys the receiver looks for.
fn json_value() -> impl Strategy<Value = Value> {
    common::json_tree(
        &["RS256", SET_TYP, AUD, "opaque", "email", "complex", "admin"],
        KEYS,
        true,
    )
}

fn nonblank() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 _.:-]{0,20}"
}

fn subject() -> impl Strategy<Value = SubjectId> {
    let email = "[a-z0-9.]{1,10}@[a-z]{1,8}\\.[a-z]{2,4}";
    prop_oneof![
        email.prop_map(SubjectId::email),
        (nonblank(), nonblank()).prop_map(|(i, s)| SubjectId::iss_sub(i, s)),
        nonblank().prop_map(SubjectId::opaque),
        (email, nonblank()).prop_map(|(e, sid)| SubjectId::session_of(SubjectId::email(e), sid)),
    ]
}

fn localized() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        ".{1,20}".prop_map(Value::from),
        prop::collection::btree_map("[a-z]{2}", ".{1,20}", 1..3).prop_map(|m| json!(m)),
    ])
}

/// One event this receiver accepts: its type, its members, its subject.
fn event() -> impl Strategy<Value = (EventType, Value, SubjectId)> {
    let common = (
        prop::option::of(prop::sample::select(vec![
            "admin", "user", "policy", "system",
        ])),
        prop::option::of(0..4_000_000_000i64),
        localized(),
        localized(),
    );
    let kind = prop_oneof![
        Just((EventType::SessionRevoked, json!({}))),
        (
            nonblank(),
            prop::sample::select(vec!["create", "revoke", "update", "delete"]),
            prop::option::of(nonblank())
        )
            .prop_map(|(t, c, f)| (
                EventType::CredentialChange,
                json!({"credential_type": t, "change_type": c, "friendly_name": f})
            )),
        prop::collection::btree_map("[a-z_]{1,8}", json_value(), 1..4)
            .prop_map(|c| (EventType::TokenClaimsChange, json!({"claims": c}))),
        (
            nonblank(),
            nonblank(),
            prop::option::of(prop::sample::select(vec!["increase", "decrease"]))
        )
            .prop_map(|(n, l, d)| (
                EventType::AssuranceLevelChange,
                json!({"namespace": n, "current_level": l, "change_direction": d})
            )),
        prop::sample::select(vec!["enabled", "paused", "disabled"])
            .prop_map(|s| (EventType::StreamUpdated, json!({"status": s}))),
    ];
    (kind, common, subject()).prop_map(|((kind, mut body), (who, at, admin, user), sub_id)| {
        for (k, v) in [
            ("initiating_entity", who.map(Value::from)),
            ("event_timestamp", at.map(Value::from)),
            ("reason_admin", admin),
            ("reason_user", user),
        ] {
            if let Some(v) = v {
                body[k] = v;
            }
        }
        // Drop the `null`s of absent optional members.
        body.as_object_mut().unwrap().retain(|_, v| !v.is_null());
        // A stream event is about the stream itself.
        let sub_id = if kind.is_stream_event() {
            SubjectId::opaque(STREAM_ID)
        } else {
            sub_id
        };
        (kind, body, sub_id)
    })
}

/// The claims of a valid SET, with a fresh `jti`.
fn set_claims() -> impl Strategy<Value = Value> {
    (event(), prop::option::of(nonblank()), -100_000..=0i64).prop_map(
        |((kind, body, sub_id), txn, age)| {
            let mut c = json!({
                "iss": FIXTURE.iss,
                "iat": kit::now_secs() + age,
                "jti": kit::random_id(16),
                "aud": AUD,
                "sub_id": sub_id,
                "events": {kind.uri(): body},
            });
            if let Some(t) = txn {
                c["txn"] = json!(t);
            }
            c
        },
    )
}

fn jti_of(claims: &Value) -> String {
    claims["jti"].as_str().unwrap_or_default().to_owned()
}

/// Signed by the transmitter, as a transmitter signs.
fn sign(claims: &Value) -> String {
    FIXTURE.transmitter.key.sign(claims).unwrap()
}

// ---- properties ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever is pushed with the stream's credentials, if it is not a SET the transmitter
    /// signed, it is refused with 400 and an RFC 8935 code, never accepted, never a 5xx.
    #[test]
    fn arbitrary_pushes_are_refused(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            "[A-Za-z0-9_.=-]{0,200}".prop_map(String::into_bytes),
            (json_value(), json_value(), prop::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(h, c, s)| format!("{}.{}.{}", b64(h.to_string()), b64(c.to_string()), b64(s)).into_bytes()),
            (json_value(), prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(c, s)| {
                let h = json!({"alg": "RS256", "typ": SET_TYP, "kid": FIXTURE.transmitter.key.kid()});
                format!("{}.{}.{}", b64(h.to_string()), b64(c.to_string()), b64(s)).into_bytes()
            }),
        ],
    ) {
        let answer = push(body);
        assert_refused(&answer, &["invalid_request", "invalid_key"], "")?;
    }

    /// Without this stream's `Authorization` value, or without the SET media type, even a
    /// good SET is refused before it is read.
    #[test]
    fn pushes_without_the_stream_credentials_are_refused(
        claims in set_claims(),
        authorization in "[ -~]{0,60}",
        content_type in prop_oneof![Just("application/jwt".to_owned()), "[a-z]{1,10}/[a-z+.-]{1,20}"],
    ) {
        let fx = &*FIXTURE;
        prop_assume!(authorization.trim() != fx.push_authorization);
        let token = sign(&claims);
        let jti = jti_of(&claims);
        let answer = push_with(token.clone().into_bytes(), SET_MEDIA_TYPE, &authorization);
        assert_refused(&answer, &["authentication_failed"], &jti)?;
        if !content_type.eq_ignore_ascii_case(SET_MEDIA_TYPE) {
            let answer = push_with(token.into_bytes(), &content_type, &fx.push_authorization);
            assert_refused(&answer, &["invalid_request"], &jti)?;
        }
    }

    /// A SET the transmitter signed for this stream is accepted and handed to the callback
    /// once, with what it says; pushed again, it is accepted and not handed over again.
    #[test]
    fn sets_signed_by_the_transmitter_are_accepted_once(claims in set_claims()) {
        let token = sign(&claims);
        let jti = jti_of(&claims);
        let answer = push(token.clone());
        prop_assert_eq!(answer.status, 202, "{:?} for {}", answer, claims);
        prop_assert_eq!(delivered(&jti), 1);
        let got = FIXTURE.received.lock().unwrap().iter().find(|e| e.jti == jti).cloned().unwrap();
        let (uri, body) = claims["events"].as_object().unwrap().iter().next().unwrap();
        prop_assert_eq!(Some(got.kind), EventType::from_uri(uri));
        // Read from the claims' JSON text, as the receiver reads them from the token.
        let members: EventClaims = serde_json::from_str(&body.to_string()).unwrap();
        prop_assert_eq!(&got.claims, &members);
        prop_assert_eq!(&got.sub_id, &serde_json::from_value::<SubjectId>(claims["sub_id"].clone()).unwrap());
        prop_assert_eq!(got.iss.as_str(), FIXTURE.iss.as_str());
        prop_assert_eq!(got.stream_id.as_str(), STREAM_ID);
        prop_assert_eq!(push(token).status, 202);
        prop_assert_eq!(delivered(&jti), 1);
    }

    /// Changing, dropping or adding any one byte of a good SET gets it refused.
    #[test]
    fn any_single_byte_mutation_is_refused(
        claims in set_claims(),
        at in any::<Index>(),
        byte in any::<u8>(),
        kind in 0..3u8,
    ) {
        let mut token = sign(&claims).into_bytes();
        let i = at.index(token.len());
        match kind {
            0 => token[i] = if token[i] == byte { byte.wrapping_add(1) } else { byte },
            1 => {
                token.remove(i);
            }
            // Whitespace around the body is framing, not the token: insert something else.
            _ => token.insert(i, if byte.is_ascii_whitespace() { b'A' } else { byte }),
        }
        let answer = push(token);
        assert_refused(&answer, &["invalid_request", "invalid_key"], &jti_of(&claims))?;
    }

    /// A SET whose header names another algorithm is refused as an invalid key, whatever its
    /// signature: none, garbage, an HMAC keyed with the transmitter's public key, the real
    /// RS256 signature spliced on, or a real ES256 signature.
    #[test]
    fn other_algorithms_are_refused(
        claims in set_claims(),
        alg in prop_oneof![
            prop::sample::select(vec![
                "none", "None", "HS256", "HS512", "RS384", "RS512", "PS256", "ES256", "EdDSA",
                "rs256", "RS256 ", "",
            ])
            .prop_map(str::to_owned),
            ".{0,10}".prop_filter("not RS256", |a| a != "RS256"),
        ],
        how in 0..4u8,
        sig in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let fx = &*FIXTURE;
        let jti = jti_of(&claims);
        let header = json!({"alg": alg, "typ": SET_TYP, "kid": fx.transmitter.key.kid()});
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = match how {
            0 => sig,
            1 => {
                let jwk = serde_json::to_vec(fx.transmitter.key.public_jwk()).unwrap();
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &jwk);
                aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
            }
            _ => {
                let genuine = sign(&claims);
                URL_SAFE_NO_PAD.decode(genuine.rsplit('.').next().unwrap()).unwrap()
            }
        };
        let answer = push(format!("{input}.{}", b64(signature)));
        assert_refused(&answer, &["invalid_key"], &jti)?;

        let es = kit::jwt::SigningKey::generate(fx.transmitter.key.kid()).unwrap();
        let answer = push(es.sign(SET_TYP, &claims).unwrap());
        assert_refused(&answer, &["invalid_key"], &jti)?;
    }

    /// A well-signed SET is still refused when it is from another issuer, for another
    /// audience, carries `sub` or `exp`, carries two events, has another `typ`, or is signed by
    /// a key the transmitter does not publish (under a random `kid` or under its own).
    #[test]
    fn what_the_set_says_is_checked(
        claims in set_claims(),
        iss in ".{0,30}",
        aud in prop_oneof![
            ".{0,30}".prop_map(Value::from),
            prop::collection::vec(".{0,20}", 0..4).prop_map(Value::from),
        ],
        forbidden in prop::sample::select(vec!["sub", "exp"]),
        forbidden_value in json_value(),
        typ in prop::option::of(prop_oneof![Just("JWT".to_owned()), Just("at+jwt".to_owned()), "[a-z+/]{0,16}"]),
        kid in ".{0,40}",
        extra in event(),
    ) {
        let fx = &*FIXTURE;
        let kid_ours = fx.transmitter.key.kid();
        let jti = jti_of(&claims);

        prop_assume!(iss != fx.iss);
        let mut c = claims.clone();
        c["iss"] = json!(iss);
        assert_refused(&push(sign(&c)), &["invalid_issuer"], &jti)?;

        let names_us = aud == json!(AUD) || aud.as_array().is_some_and(|a| a.contains(&json!(AUD)));
        if !names_us {
            let mut c = claims.clone();
            c["aud"] = aud;
            assert_refused(&push(sign(&c)), &["invalid_audience"], &jti)?;
        }

        let mut c = claims.clone();
        c[forbidden] = forbidden_value;
        assert_refused(&push(sign(&c)), &["invalid_request"], &jti)?;

        let (kind, body, _) = extra;
        let mut c = claims.clone();
        let events = c["events"].as_object_mut().unwrap();
        if !events.contains_key(&kind.uri()) {
            events.insert(kind.uri(), body);
            assert_refused(&push(sign(&c)), &["invalid_request"], &jti)?;
        }

        let typ_ok = typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(SET_TYP) || t.eq_ignore_ascii_case(SET_MEDIA_TYPE));
        if !typ_ok {
            let token = fx.transmitter.sign_as(typ.as_deref(), Some(kid_ours), &claims);
            assert_refused(&push(token), &["invalid_request"], &jti)?;
        }

        if kid != kid_ours {
            let token = fx.rogue.sign_as(Some(SET_TYP), Some(&kid), &claims);
            assert_refused(&push(token), &["invalid_key"], &jti)?;
        }
        let impostor = fx.rogue.sign_as(Some(SET_TYP), Some(kid_ours), &claims);
        assert_refused(&push(impostor), &["invalid_key"], &jti)?;
        let anonymous = fx.transmitter.sign_as(Some(SET_TYP), None, &claims);
        assert_refused(&push(anonymous), &["invalid_key"], &jti)?;
    }

    /// Any one edit of a good SET's claims, signed by the transmitter, is judged without a
    /// panic or a 5xx; when it is still accepted, what reaches the callback is this stream's.
    #[test]
    fn edited_claims_are_judged_never_panic(
        claims in set_claims(),
        at in any::<Index>(),
        op in 0..3u8,
        key in json_key(),
        new in json_value(),
    ) {
        let mut c = claims;
        let mut all = vec![];
        common::pointers(&c, String::new(), &mut all);
        let target = all[at.index(all.len())].clone();
        match (op, c.pointer_mut(&target)) {
            (0, Some(node)) => *node = new,
            (1, Some(Value::Object(m))) => {
                m.insert(key, new);
            }
            (_, _) => {
                if let Some((parent, last)) = target.rsplit_once('/')
                    && let Some(Value::Object(m)) = c.pointer_mut(parent)
                {
                    m.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
            }
        }
        let jti = jti_of(&c);
        let answer = push(sign(&c));
        match answer.status {
            202 => {
                if !jti.is_empty() {
                    prop_assert!(delivered(&jti) >= 1);
                }
                prop_assert_eq!(&c["iss"], &json!(FIXTURE.iss));
                let aud: kit::claims::Audience = serde_json::from_value(c["aud"].clone()).unwrap();
                prop_assert!(aud.contains(AUD));
                prop_assert!(c.get("sub").is_none() && c.get("exp").is_none());
                prop_assert_eq!(c["events"].as_object().map(|e| e.len()), Some(1));
            }
            400 => {
                // An edit that refuses the SET never lets its jti through; a jti that another
                // case used cannot occur (each is fresh).
                if !jti.is_empty() && c["jti"] == json!(jti) {
                    prop_assert_eq!(delivered(&jti), 0);
                }
            }
            other => prop_assert!(false, "status {other}: {answer:?} for {c}"),
        }
    }
}
