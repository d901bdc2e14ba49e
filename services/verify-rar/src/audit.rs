//! The append-only audit log: one JSON line per decision, each carrying the SHA-256 of the line
//! before it, so editing, deleting or reordering any line breaks the chain from that line on.
//!
//! Line shape: `{"seq": n, "prev": "<hex>", "event": {...SecurityEvent}, "hash": "<hex>"}` where
//! `hash = sha256(canonical_json({seq, prev, event}))` and the first line's `prev` is 64 zeros.

use std::{
    io::{BufRead as _, Write as _},
    path::{Path, PathBuf},
    sync::Mutex,
};

use anyhow::Context as _;
use kit::events::SecurityEvent;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An open audit log; appends are serialized so the chain has no forks.
///
/// Writing a line and waiting for the disk are two steps (group commit): lines are written in
/// chain order under `tail`; then whoever holds `synced` flushes the file once for every line
/// written so far, so appends that arrive while a flush is running share the next one instead
/// of queueing one `fsync` each. Every `append` still returns only once its own line is on disk.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// `(seq of the last line, hash of the last line)`.
    tail: Mutex<(u64, String)>,
    /// The highest `seq` known to be on disk; held while flushing.
    synced: Mutex<u64>,
}

fn line_hash(seq: u64, prev: &str, event: &Value) -> String {
    let body = kit::rar::canonical_json(&json!({"seq": seq, "prev": prev, "event": event}));
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl AuditLog {
    /// Opens (or creates) the log and finds the end of its chain. A log whose chain is broken
    /// is still opened (refusing to start would stop the service, not the tampering); the break
    /// stays visible to `audit-verify`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut tail = (0, GENESIS.to_owned());
        if let Ok(f) = std::fs::File::open(path) {
            for line in std::io::BufReader::new(f).lines() {
                let line = line?;
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(tail.0 + 1);
                    let hash = v
                        .get("hash")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    tail = (seq, hash);
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            synced: Mutex::new(tail.0),
            tail: Mutex::new(tail),
        })
    }

    /// Appends one decision and returns once it is on disk. Blocks for the flush: async callers
    /// run it off the runtime ([`crate::state::AppState::record`]).
    pub fn append(&self, event: &SecurityEvent) -> anyhow::Result<()> {
        let event = serde_json::to_value(event)?;
        let poisoned = || anyhow::anyhow!("audit log lock poisoned");
        let (seq, file) = {
            let mut tail = self.tail.lock().map_err(|_| poisoned())?;
            let seq = tail.0 + 1;
            let hash = line_hash(seq, &tail.1, &event);
            let line = json!({"seq": seq, "prev": tail.1, "event": event, "hash": hash});
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("opening {}", self.path.display()))?;
            f.write_all(format!("{line}\n").as_bytes())?;
            *tail = (seq, hash);
            (seq, f)
        };
        // Group commit: one flush covers every line written before it started.
        let mut synced = self.synced.lock().map_err(|_| poisoned())?;
        if *synced >= seq {
            return Ok(());
        }
        let written = self.tail.lock().map_err(|_| poisoned())?.0;
        file.sync_data()?;
        *synced = written;
        Ok(())
    }
}

/// Where a log's chain breaks: the 1-based line number and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct Broken {
    pub line: usize,
    pub reason: String,
}

/// Verifies every line of the log at `path`; returns the number of lines, or the first break.
pub fn verify(path: &Path) -> anyhow::Result<Result<usize, Broken>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut prev = GENESIS.to_owned();
    let mut count = 0;
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        let n = i + 1;
        let broken = |reason: &str| {
            Ok(Err(Broken {
                line: n,
                reason: reason.into(),
            }))
        };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            return broken("not a JSON object");
        };
        let (Some(seq), Some(p), Some(event), Some(hash)) = (
            v.get("seq").and_then(Value::as_u64),
            v.get("prev").and_then(Value::as_str),
            v.get("event"),
            v.get("hash").and_then(Value::as_str),
        ) else {
            return broken("missing seq, prev, event or hash");
        };
        if seq != n as u64 {
            return broken(&format!("sequence number {seq} where {n} was expected"));
        }
        if p != prev {
            return broken("prev does not match the hash of the line before");
        }
        if line_hash(seq, p, event) != hash {
            return broken("hash does not match the line's content");
        }
        prev = hash.to_owned();
        count = n;
    }
    Ok(Ok(count))
}

/// The lines of the log at `path` whose event names the token `jti`, oldest first.
pub fn lines_about(path: &Path, jti: &str) -> anyhow::Result<Vec<Value>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut out = vec![];
    for line in std::io::BufReader::new(f).lines() {
        if let Ok(v) = serde_json::from_str::<Value>(&line?)
            && v.pointer("/event/jti").and_then(Value::as_str) == Some(jti)
        {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kit::events::Outcome;

    #[test]
    fn chain_survives_reopen_and_names_the_edited_line() {
        let path = std::env::temp_dir().join(format!("vr-audit-{}.jsonl", kit::random_id(6)));
        let log = AuditLog::open(&path).unwrap();
        log.append(&SecurityEvent::new("verify-rar", "a", Outcome::Allowed))
            .unwrap();
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        for kind in ["b", "c"] {
            log.append(&SecurityEvent::new("verify-rar", kind, Outcome::Denied))
                .unwrap();
        }
        assert_eq!(verify(&path).unwrap(), Ok(3));
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replacen("\"denied\"", "\"allowed\"", 1);
        std::fs::write(&path, text).unwrap();
        assert_eq!(verify(&path).unwrap().unwrap_err().line, 2);
        let _ = std::fs::remove_file(path);
    }
}
