//! Reading a `text/event-stream` (Server-Sent Events) as it arrives: complete events are taken
//! off a byte buffer, so a character split between two network chunks is decoded whole.

/// One event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Takes every complete event (ended by a blank line, `\n\n` or `\r\n\r\n`) off `buf`, leaving
/// a partial one for the next chunk. Blocks without `data:` (comments, keep-alives) are dropped.
pub fn take_events(buf: &mut Vec<u8>) -> Vec<SseEvent> {
    let mut out = vec![];
    while let Some(end) = blank_line_end(buf) {
        let block: Vec<u8> = buf.drain(..end).collect();
        let text = String::from_utf8_lossy(&block);
        let mut event = None;
        let mut data = vec![];
        for line in text.lines().map(|l| l.trim_end_matches('\r')) {
            if let Some(d) = line.strip_prefix("data:") {
                data.push(d.strip_prefix(' ').unwrap_or(d));
            } else if let Some(e) = line.strip_prefix("event:") {
                event = Some(e.trim().to_owned());
            }
        }
        if !data.is_empty() {
            out.push(SseEvent {
                event,
                data: data.join("\n"),
            });
        }
    }
    out
}

/// Where the first blank line in `buf` ends.
fn blank_line_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find_map(|i| {
        if buf[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else if buf[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_blank_lines_across_chunks() {
        let mut buf = b"event: approvals\ndata: [1]\n\nevent: approvals\r\ndata: [".to_vec();
        let first = take_events(&mut buf);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].event.as_deref(), Some("approvals"));
        assert_eq!(first[0].data, "[1]");
        buf.extend_from_slice(b"2]\r\n\r\n:keep-alive\n\n");
        let second = take_events(&mut buf);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].data, "[2]");
        assert!(buf.is_empty());
    }

    #[test]
    fn a_multibyte_character_split_between_chunks_survives() {
        let text = "data: [\"é\"]\n\n".as_bytes();
        let (a, b) = text.split_at(9);
        let mut buf = a.to_vec();
        assert!(take_events(&mut buf).is_empty());
        buf.extend_from_slice(b);
        assert_eq!(take_events(&mut buf)[0].data, "[\"é\"]");
    }

    #[test]
    fn multi_line_data_is_joined() {
        let mut buf = b"data: a\ndata: b\n\n".to_vec();
        assert_eq!(take_events(&mut buf)[0].data, "a\nb");
    }
}
