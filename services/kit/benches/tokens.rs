//! Micro-benchmarks of the work one token exchange does besides I/O: verifying the subject and
//! actor tokens (ES256), signing the new token, and the RAR steps (parse, coverage, fingerprint,
//! summary). `just bench` compares the token endpoint against the first three.

#![expect(
    clippy::unwrap_used,
    reason = "a benchmark fails loudly where it stands"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use kit::{
    claims::{AccessClaims, Actor, ActorClaims, Audience, MayAct},
    jwt::{Expect, SigningKey, verify},
    rar::{self, AuthorizationDetail},
};
use serde_json::json;
use std::hint::black_box;

fn transfer() -> AuthorizationDetail {
    AuthorizationDetail::operation(
        rar::BANKING,
        "transfer_funds",
        [
            ("amount", json!({"value": "1000.00", "currency": "USD"})),
            ("source", json!("checking")),
            ("destination", json!("savings")),
        ],
    )
}

fn access_claims(iss: &str) -> AccessClaims {
    let now = kit::now_secs();
    AccessClaims {
        iss: iss.into(),
        sub: "7d8f2a0e-5b1c-4c1e-9a55-2f4b1f1f9c11".into(),
        aud: Audience::one("spiffe://demo.local/agent/banking"),
        iat: now,
        exp: now + 300,
        jti: kit::random_id(16),
        sid: Some(kit::random_id(16)),
        client_id: Some("spiffe://demo.local/agent/concierge".into()),
        scope: None,
        email: Some("alice@example.com".into()),
        acr: Some("urn:smt:acr:pwd".into()),
        auth_time: Some(now),
        act: Some(Actor::nest("spiffe://demo.local/agent/concierge", None)),
        may_act: Some(MayAct {
            sub: "spiffe://demo.local/agent/banking".into(),
        }),
        authorization_details: Some(vec![transfer()]),
        approval_id: None,
    }
}

fn tokens(c: &mut Criterion) {
    let iss = "http://127.0.0.1:8081";
    let idp = SigningKey::generate("idp").unwrap();
    let agent = SigningKey::generate("agent").unwrap();
    let idp_dk = idp.decoding_key().unwrap();
    let agent_dk = agent.decoding_key().unwrap();
    let claims = access_claims(iss);
    let subject = idp.sign("at+jwt", &claims).unwrap();
    let now = kit::now_secs();
    let actor = agent
        .sign(
            "actor+jwt",
            &ActorClaims {
                iss: Some("spiffe://demo.local/agent/concierge".into()),
                sub: "spiffe://demo.local/agent/concierge".into(),
                aud: Audience::one(iss),
                iat: now,
                exp: now + 60,
                jti: kit::random_id(16),
            },
        )
        .unwrap();
    let subject_expect = Expect {
        issuer: Some(iss),
        audience: None,
    };
    let actor_expect = Expect {
        issuer: None,
        audience: Some(iss),
    };

    let mut g = c.benchmark_group("es256");
    g.bench_function("sign access token", |b| {
        b.iter(|| idp.sign("at+jwt", black_box(&claims)).unwrap())
    });
    g.bench_function("verify access token", |b| {
        b.iter(|| verify::<AccessClaims>(black_box(&subject), &idp_dk, &subject_expect).unwrap())
    });
    g.bench_function("verify actor token", |b| {
        b.iter(|| verify::<ActorClaims>(black_box(&actor), &agent_dk, &actor_expect).unwrap())
    });
    g.bench_function("exchange crypto (verify 2, sign 1)", |b| {
        b.iter(|| {
            verify::<AccessClaims>(&subject, &idp_dk, &subject_expect).unwrap();
            verify::<ActorClaims>(&actor, &agent_dk, &actor_expect).unwrap();
            idp.sign("at+jwt", &claims).unwrap()
        })
    });
    g.bench_function("decoding key from JWK", |b| {
        b.iter(|| jsonwebtoken::DecodingKey::from_jwk(black_box(agent.public_jwk())).unwrap())
    });
    g.finish();

    let details = vec![transfer()];
    let wire = serde_json::to_string(&details).unwrap();
    let mut g = c.benchmark_group("rar");
    g.bench_function("parse + validate", |b| {
        b.iter(|| rar::parse(black_box(&wire)).unwrap())
    });
    g.bench_function("covered_by_any", |b| {
        b.iter(|| rar::covered_by_any(black_box(&details), &details[0]).unwrap())
    });
    g.bench_function("fingerprint", |b| {
        b.iter(|| rar::fingerprint(black_box(&details)))
    });
    g.bench_function("summarize", |b| {
        b.iter(|| rar::summarize(black_box(&details)))
    });
    g.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
