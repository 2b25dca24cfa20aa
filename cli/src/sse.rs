//! An incremental parser for `text/event-stream` (the WHATWG server-sent events format).
//!
//! Feed it the body's chunks as they arrive; it returns the events completed by each chunk.
//! Lines may end in LF, CRLF or CR and may be split anywhere across chunks (a CRLF too);
//! lines starting with `:` are comments (the API's keep-alives); `data:` lines accumulate;
//! an event is dispatched at a blank line, and only if it has data. The last `id:` seen is
//! remembered, to resume with `Last-Event-ID`.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `message` when absent.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last event id at dispatch (the `id:` of this event, or of an earlier one).
    pub id: Option<String>,
}

/// Parser state between chunks.
#[derive(Debug, Default)]
pub struct Parser {
    /// The unterminated tail of the last chunk.
    line: Vec<u8>,
    /// The last chunk ended in CR: a LF starting the next one belongs to that line end.
    after_cr: bool,
    /// Nothing has been read yet (a leading byte-order mark is skipped).
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    retry_ms: Option<u64>,
}

impl Parser {
    /// A parser at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The last `id:` received (the resume cursor).
    #[must_use]
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The server's last `retry:` advice, in milliseconds.
    #[must_use]
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Consumes `chunk`; returns the events it completed, in order.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if self.after_cr && !chunk.is_empty() {
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
            self.after_cr = false;
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&chunk[..end]);
            let line = std::mem::take(&mut self.line);
            if let Some(event) = self.line_done(&line) {
                out.push(event);
            }
            let cr = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
        }
        self.line.extend_from_slice(chunk);
        out
    }

    fn line_done(&mut self, mut line: &[u8]) -> Option<SseEvent> {
        if !self.started {
            self.started = true;
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(b":") {
            return None;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" => {
                if let Ok(ms) = value.parse() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(SseEvent {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": keep-alive\n\nevent: store.ready\nid: 7-1\ndata: {\"a\":1}\n\n\
                          :ping\r\n\r\nid: 7-2\r\nevent: run.failed\r\ndata: line one\r\ndata:line two\r\n\r\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent {
                event: "store.ready".into(),
                data: "{\"a\":1}".into(),
                id: Some("7-1".into()),
            },
            SseEvent {
                event: "run.failed".into(),
                data: "line one\nline two".into(),
                id: Some("7-2".into()),
            },
        ]
    }

    #[test]
    fn a_stream_in_one_chunk_yields_its_events_and_skips_comments() {
        let mut p = Parser::new();
        assert_eq!(p.feed(STREAM.as_bytes()), expected());
        assert_eq!(p.last_id(), Some("7-2"));
    }

    #[test]
    fn every_split_point_yields_the_same_events() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let mut p = Parser::new();
            let mut got = p.feed(&bytes[..cut]);
            got.extend(p.feed(&bytes[cut..]));
            assert_eq!(got, expected(), "split at {cut}");
        }
        let mut p = Parser::new();
        let got: Vec<_> = bytes.iter().flat_map(|b| p.feed(&[*b])).collect();
        assert_eq!(got, expected(), "byte by byte");
    }

    #[test]
    fn bare_cr_line_ends_bom_defaults_and_events_without_data() {
        let mut p = Parser::new();
        let got = p.feed("\u{feff}data: x\r\rid: 9\revent: e\r\rretry: 1500\rdata\r\r".as_bytes());
        assert_eq!(
            got,
            vec![
                SseEvent {
                    event: "message".into(),
                    data: "x".into(),
                    id: None
                },
                SseEvent {
                    event: "message".into(),
                    data: String::new(),
                    id: Some("9".into())
                },
            ]
        );
        assert_eq!(p.retry_ms(), Some(1500));
        // An unterminated event is not dispatched.
        assert!(p.feed(b"data: half").is_empty());
    }
}
