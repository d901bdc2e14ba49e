//! A restart loses nothing: SETs queued while a receiver is down survive the transmitter
//! stopping, and go out when both are back.

use std::time::Duration;

use kit::ssf::EventType;
use serde_json::Value;

use crate::support::{TestReceiver, Transmitter, session_revoked};

#[tokio::test]
async fn sets_undelivered_when_the_transmitter_stops_are_delivered_after_it_restarts() {
    let mut t = Transmitter::spawn().await;
    let mut r =
        TestReceiver::push(&t, "verify-rar", "verify-rar", &[EventType::SessionRevoked]).await;
    r.down().await;

    let body: Value = t
        .send_event(&session_revoked("alice@example.com", "sid-during-outage"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["sets"], 1);
    // The push fails (nobody listens) and is scheduled again.
    let db = t.db().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = db
            .query_one(
                "SELECT state, attempts, last_error FROM ssf.sets WHERE stream_id = $1 AND event_type = $2",
                &[&r.stream_id(), &EventType::SessionRevoked.uri()],
            )
            .await
            .unwrap();
        let (state, attempts): (String, i32) = (row.get(0), row.get(1));
        assert_eq!(state, "pending");
        if attempts >= 2 {
            assert!(row.get::<_, Option<String>>(2).is_some());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no retries seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    t.stop().await;
    r.up().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        r.received(EventType::SessionRevoked).is_empty(),
        "nothing is sent while the transmitter is stopped"
    );

    t.start().await;
    let got = r.wait_for(EventType::SessionRevoked, 1).await;
    assert_eq!(got[0].sub_id.session_id(), Some("sid-during-outage"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while t
        .set_states(&r.stream_id(), EventType::SessionRevoked)
        .await
        != ["delivered"]
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
