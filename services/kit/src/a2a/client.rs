//! The A2A client side, for the supervisor: fetch a card, send or stream a message with the
//! delegated token, read or cancel a task. Sends `A2A-Version: 1.0` on every request.

use futures::{StreamExt as _, stream::BoxStream};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    CARD_PATH, VERSION, VERSION_HEADER,
    types::{AgentCard, Message, RpcError, SendMessageResponse, StreamResponse, Task},
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The agent refused before dispatch (401: token refused; 503: it could not check it).
    #[error("the agent answered HTTP {0}: {1}")]
    Http(StatusCode, String),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("the agent could not be reached: {0}")]
    Transport(String),
    #[error("the agent's answer is not A2A 1.0: {0}")]
    Protocol(String),
}

/// Talks A2A 1.0 JSON-RPC to agents.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    /// `GET <base>/.well-known/agent-card.json`.
    pub async fn card(&self, base_url: &str) -> Result<AgentCard, ClientError> {
        let url = format!("{}{CARD_PATH}", base_url.trim_end_matches('/'));
        let resp = self
            .http
            .get(url)
            .header(VERSION_HEADER, VERSION)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(ClientError::Http(resp.status(), "agent card".into()));
        }
        resp.json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    fn request(
        &self,
        endpoint: &str,
        token: &str,
        method: &str,
        params: impl Serialize,
    ) -> (reqwest::RequestBuilder, String) {
        let id = uuid::Uuid::new_v4().to_string();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        (
            self.http
                .post(endpoint)
                .bearer_auth(token)
                .header(VERSION_HEADER, VERSION)
                .json(&body),
            id,
        )
    }

    async fn call(
        &self,
        endpoint: &str,
        token: &str,
        method: &str,
        params: impl Serialize,
    ) -> Result<Value, ClientError> {
        let (req, _) = self.request(endpoint, token, method, params);
        let resp = req
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            return Err(ClientError::Http(
                status,
                resp.text().await.unwrap_or_default(),
            ));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        unwrap_envelope(body)
    }

    /// `SendMessage`. Blocking unless `return_immediately`: returns when the task ends or waits
    /// on the client (e.g. `TASK_STATE_AUTH_REQUIRED`).
    pub async fn send(
        &self,
        endpoint: &str,
        token: &str,
        message: &Message,
        return_immediately: bool,
    ) -> Result<SendMessageResponse, ClientError> {
        let params =
            json!({"message": message, "configuration": {"returnImmediately": return_immediately}});
        let result = self.call(endpoint, token, "SendMessage", params).await?;
        serde_json::from_value(result).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// `SendStreamingMessage`: the task, then its updates until it ends.
    pub async fn stream(
        &self,
        endpoint: &str,
        token: &str,
        message: &Message,
    ) -> Result<BoxStream<'static, Result<StreamResponse, ClientError>>, ClientError> {
        self.open_stream(
            endpoint,
            token,
            "SendStreamingMessage",
            json!({"message": message, "configuration": {}}),
        )
        .await
    }

    /// `SubscribeToTask`.
    pub async fn subscribe(
        &self,
        endpoint: &str,
        token: &str,
        task_id: &str,
    ) -> Result<BoxStream<'static, Result<StreamResponse, ClientError>>, ClientError> {
        self.open_stream(endpoint, token, "SubscribeToTask", json!({"id": task_id}))
            .await
    }

    pub async fn get_task(
        &self,
        endpoint: &str,
        token: &str,
        task_id: &str,
    ) -> Result<Task, ClientError> {
        let v = self
            .call(endpoint, token, "GetTask", json!({"id": task_id}))
            .await?;
        serde_json::from_value(v).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    pub async fn cancel_task(
        &self,
        endpoint: &str,
        token: &str,
        task_id: &str,
    ) -> Result<Task, ClientError> {
        let v = self
            .call(endpoint, token, "CancelTask", json!({"id": task_id}))
            .await?;
        serde_json::from_value(v).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    async fn open_stream(
        &self,
        endpoint: &str,
        token: &str,
        method: &str,
        params: Value,
    ) -> Result<BoxStream<'static, Result<StreamResponse, ClientError>>, ClientError> {
        let (req, _) = self.request(endpoint, token, method, params);
        let resp = req
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            return Err(ClientError::Http(
                status,
                resp.text().await.unwrap_or_default(),
            ));
        }
        let is_sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            // An up-front error comes back as one JSON-RPC response.
            let body: Value = resp
                .json()
                .await
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            unwrap_envelope(body)?;
            return Err(ClientError::Protocol("expected an event stream".into()));
        }
        let bytes = resp.bytes_stream();
        // Complete events are taken off a byte buffer (see `crate::sse`); the stream yields
        // them one by one, reading more bytes only when none is ready.
        let events = futures::stream::unfold(
            (bytes, Vec::<u8>::new(), std::collections::VecDeque::new()),
            |(mut bytes, mut buf, mut ready)| async move {
                loop {
                    if let Some(ev) = ready.pop_front() {
                        let crate::sse::SseEvent { data, .. } = ev;
                        let parsed = serde_json::from_str::<Value>(&data)
                            .map_err(|e| ClientError::Protocol(e.to_string()))
                            .and_then(unwrap_envelope)
                            .and_then(|v| {
                                serde_json::from_value::<StreamResponse>(v)
                                    .map_err(|e| ClientError::Protocol(e.to_string()))
                            });
                        return Some((parsed, (bytes, buf, ready)));
                    }
                    match bytes.next().await {
                        Some(Ok(chunk)) => {
                            buf.extend_from_slice(&chunk);
                            ready.extend(crate::sse::take_events(&mut buf));
                        }
                        Some(Err(e)) => {
                            return Some((
                                Err(ClientError::Transport(e.to_string())),
                                (bytes, buf, ready),
                            ));
                        }
                        None => return None,
                    }
                }
            },
        );
        Ok(events.boxed())
    }
}

fn unwrap_envelope(body: Value) -> Result<Value, ClientError> {
    if body.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(ClientError::Protocol("missing jsonrpc 2.0".into()));
    }
    if let Some(e) = body.get("error") {
        return Err(ClientError::Rpc(
            serde_json::from_value(e.clone()).map_err(|e| ClientError::Protocol(e.to_string()))?,
        ));
    }
    body.get("result")
        .cloned()
        .ok_or_else(|| ClientError::Protocol("no result".into()))
}
