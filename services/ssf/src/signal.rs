//! Turning one event into SETs: which streams get it (status, requested events, subjects), and
//! the signed SET each one gets. SETs are signed when queued, so a retry resends the very same
//! token (same `jti`, same `iat`), which is what lets a receiver recognise a duplicate.

use kit::{
    claims::Audience,
    ssf::{EventClaims, EventType, SetClaims, SubjectId},
};
use tokio_postgres::GenericClient;

use crate::{
    config::DefaultSubjects,
    state::AppState,
    store::{self, streams::SubjectMode},
    stream::Stream,
};

/// One queued SET.
#[derive(Debug, Clone)]
pub struct Queued {
    pub stream_id: String,
    pub jti: String,
}

/// Signs one SET for `stream` and queues it.
pub async fn queue(
    state: &AppState,
    db: &impl GenericClient,
    stream: &Stream,
    kind: EventType,
    sub_id: SubjectId,
    claims: &EventClaims,
    txn: Option<String>,
) -> anyhow::Result<Queued> {
    let set = SetClaims::new(
        &state.issuer,
        Audience(stream.aud.clone()),
        txn,
        sub_id,
        kind,
        claims,
    );
    let token = state.key.sign(&set)?;
    store::sets::enqueue(
        db,
        &store::sets::NewSet {
            jti: &set.jti,
            stream_id: &stream.stream_id,
            event_type: &kind.uri(),
            txn: set.txn.as_deref(),
            token: &token,
        },
    )
    .await?;
    Ok(Queued {
        stream_id: stream.stream_id.clone(),
        jti: set.jti,
    })
}

/// A stream event (verification, stream-updated): `sub_id` is the stream itself (SSF §8.1.4).
pub async fn queue_stream_event(
    state: &AppState,
    db: &impl GenericClient,
    stream: &Stream,
    kind: EventType,
    claims: &EventClaims,
) -> anyhow::Result<Queued> {
    let sub_id = SubjectId::opaque(stream.stream_id.clone());
    queue(
        state,
        db,
        stream,
        kind,
        sub_id,
        claims,
        Some(kit::random_id(12)),
    )
    .await
}

/// Queues `kind` about `subject` for every stream that should get it: not disabled (a paused
/// stream holds it), the event among its `events_delivered`, and the subject wanted (with
/// `default_subjects = ALL`, unless removed from the stream; with `NONE`, only if added). All
/// SETs of one event share one `txn`.
pub async fn fan_out(
    state: &AppState,
    db: &impl GenericClient,
    kind: EventType,
    subject: &SubjectId,
    claims: &EventClaims,
    txn: &str,
) -> anyhow::Result<Vec<Queued>> {
    let streams = store::streams::receiving(db, &kind.uri()).await?;
    let ids: Vec<String> = streams.iter().map(|s| s.stream_id.clone()).collect();
    let subjects = store::streams::subjects(db, &ids).await?;
    let mut out = Vec::new();
    for stream in &streams {
        let mine = subjects.iter().filter(|(id, _, _)| *id == stream.stream_id);
        let (mut added, mut removed) = (false, false);
        for (_, s, mode) in mine {
            if s.matches(subject) {
                match mode {
                    SubjectMode::Added => added = true,
                    SubjectMode::Removed => removed = true,
                }
            }
        }
        let wanted = match state.config.default_subjects {
            DefaultSubjects::All => !removed,
            DefaultSubjects::None => added && !removed,
        };
        if !wanted {
            continue;
        }
        out.push(
            queue(
                state,
                db,
                stream,
                kind,
                subject.clone(),
                claims,
                Some(txn.to_owned()),
            )
            .await?,
        );
    }
    Ok(out)
}
