//! Row 1: token exchange with RAR policy and an actor token, warm. Hop 1 of S1 (the concierge
//! trades alice's token for one to banking carrying a $1,000 transfer): both tokens verified,
//! the actor's jti consumed, the session checked, Cedar decides, a token is signed, an event is
//! written. The floor is the bare crypto of that exchange, measured in this process.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use jsonwebtoken::{DecodingKey, jwk::JwkSet};
use kit::{
    claims::{AccessClaims, ActorClaims},
    jwt::{self, Expect, SigningKey},
};

use crate::{
    load::{self, Samples},
    platform::{self, Platform, User},
};

#[derive(Debug)]
pub struct Results {
    pub sequential: Samples,
    /// (concurrent clients, samples)
    pub loaded: Vec<(usize, Samples)>,
    /// Verify two ES256 tokens and sign one, in-process.
    pub crypto: Samples,
}

/// Prepared exchange bodies, each with its own single-use actor token.
fn bodies(p: &Platform, user: &User, n: usize) -> anyhow::Result<Vec<String>> {
    let details = [platform::transfer("checking", "savings", "1000.00")];
    (0..n)
        .map(|_| {
            p.exchange_body(
                &p.concierge,
                &user.access_token,
                &p.banking.spiffe_id,
                &details,
            )
        })
        .collect()
}

pub async fn run(p: &Arc<Platform>, user: &User, scale: f64) -> anyhow::Result<Results> {
    let n_seq = (2000.0 * scale) as usize;
    let window = Duration::from_secs_f64((5.0 * scale).max(1.0));
    // Warm-up: connections, the pool, the JIT-free but cache-cold paths.
    for b in bodies(p, user, 200)? {
        p.post_token(b).await?.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let seq_bodies = bodies(p, user, n_seq)?;
    let sequential = load::sequential(n_seq, |i| {
        let b = seq_bodies[i].clone();
        async move { expect_token(p, b).await }
    })
    .await?;

    let mut loaded = vec![];
    for workers in [8, 32] {
        // Enough single-use bodies for well past the target rate, signed before the clock runs.
        let total = (4000.0 * window.as_secs_f64()) as usize;
        let all = Arc::new(bodies(p, user, total)?);
        let pc = p.clone();
        let s = load::concurrent(workers, total, window, move |i| {
            let (p, b) = (pc.clone(), all[i].clone());
            async move { expect_token(&p, b).await }
        })
        .await?;
        loaded.push((workers, s));
    }

    let crypto = crypto_floor(p, user, n_seq).await?;
    Ok(Results {
        sequential,
        loaded,
        crypto,
    })
}

async fn expect_token(p: &Platform, body: String) -> anyhow::Result<()> {
    match p.post_token(body).await? {
        Ok(_) => Ok(()),
        Err(e) => bail!("exchange refused: {e}"),
    }
}

/// The cryptographic work of one exchange, nothing else: verify the subject token (the idp's
/// key), verify the actor token (the agent's key), sign the new token (claims of a real T1).
async fn crypto_floor(p: &Platform, user: &User, n: usize) -> anyhow::Result<Samples> {
    let set: JwkSet = p
        .http
        .get(format!("{}/jwks", p.idp()))
        .send()
        .await?
        .json()
        .await?;
    let idp_key = DecodingKey::from_jwk(set.keys.first().context("the idp publishes a key")?)?;
    let agent_key = p.concierge.key.decoding_key()?;
    let t1 = p
        .hop(
            &p.concierge,
            &user.access_token,
            &p.banking.spiffe_id,
            &[platform::transfer("checking", "savings", "1000.00")],
        )
        .await?;
    let t1_claims: AccessClaims = serde_json::from_value(platform::claims(&t1)?)?;
    let signer = SigningKey::generate("bench")?;
    let idp = p.idp().to_owned();
    let actor_tokens: Vec<String> = (0..n)
        .map(|_| p.concierge.actor_token(&idp))
        .collect::<Result<_, _>>()?;
    let subject = user.access_token.clone();
    let mut out = Vec::with_capacity(n);
    for actor in &actor_tokens {
        let t = std::time::Instant::now();
        let _: AccessClaims = jwt::verify(
            &subject,
            &idp_key,
            &Expect {
                issuer: Some(&idp),
                audience: None,
            },
        )?;
        let _: ActorClaims = jwt::verify(
            actor,
            &agent_key,
            &Expect {
                issuer: None,
                audience: Some(&idp),
            },
        )?;
        let token = signer.sign("at+jwt", &t1_claims)?;
        std::hint::black_box(token);
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Samples::from_ms(out))
}
