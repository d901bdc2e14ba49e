//! What the property-test binaries share: a JSON-tree generator seeded with the words and
//! keys each parser looks for, JSON pointers to every node of a value (to mutate one), base64url,
//! and a server on port 0 for the binaries that need a peer.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "each property-test binary uses a part of these; test support fails loudly"
)]

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use proptest::prelude::*;
use serde_json::Value;

/// Object keys: one of `keys` (what the parser under test reads) or a short random one.
pub fn json_key(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(keys).prop_map(str::to_owned),
        "[a-z]{1,6}",
    ]
}

/// Objects of up to four members whose values are drawn from `inner`.
pub fn json_object_of(
    keys: &'static [&'static str],
    inner: impl Strategy<Value = Value>,
) -> impl Strategy<Value = Value> {
    prop::collection::vec((json_key(keys), inner), 0..5)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// Any JSON value a few levels deep: leaves of every type plus `words` (values the parser
/// treats specially), objects keyed by [`json_key`]. `floats: false` leaves floats out, for
/// properties that compare a value with its text read back.
pub fn json_tree(
    words: &'static [&'static str],
    keys: &'static [&'static str],
    floats: bool,
) -> BoxedStrategy<Value> {
    let float = if floats {
        any::<f64>().prop_map(Value::from).boxed()
    } else {
        any::<i32>().prop_map(Value::from).boxed()
    };
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float,
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(words).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            json_object_of(keys, inner),
        ]
    })
    .boxed()
}

/// JSON pointers of every node in `v`.
pub fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A listener on port 0 and its base URL.
pub fn listen() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// Serves `app` on `listener` on the binary's runtime `rt`.
pub fn serve(rt: &tokio::runtime::Runtime, listener: std::net::TcpListener, app: axum::Router) {
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}
