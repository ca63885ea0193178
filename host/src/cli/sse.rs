//! Reading a server-sent event stream from the chunks of a response body.

/// One message of the stream: its `event:` name (`message` when absent) and
/// its `data:` lines joined by newlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub event: String,
    pub data: String,
}

/// Collects bytes as they arrive and hands out whole messages. A message
/// may be split across chunks, and a chunk may hold several.
#[derive(Debug, Default)]
pub struct Parser {
    buffer: Vec<u8>,
}

impl Parser {
    /// Adds a chunk and returns the messages it completed, in order.
    /// Comments (keep-alives) and messages without data are skipped.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Message> {
        self.buffer.extend_from_slice(chunk);
        let mut messages = Vec::new();
        while let Some((end, gap)) = blank_line(&self.buffer) {
            let block: Vec<u8> = self.buffer.drain(..end + gap).take(end).collect();
            if let Some(message) = parse_block(&String::from_utf8_lossy(&block)) {
                messages.push(message);
            }
        }
        messages
    }
}

/// Where the first blank line (the end of a message) starts, and how many
/// bytes of line ends it takes.
fn blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = find(buffer, b"\n\n").map(|i| (i, 2));
    let crlf = find(buffer, b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_block(block: &str) -> Option<Message> {
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    Some(Message {
        event: event.unwrap_or_else(|| "message".to_string()),
        data: data.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_across_chunks_come_out_whole_and_keep_alives_are_skipped() {
        let mut parser = Parser::default();
        assert!(parser.push(b"event: deployed\nid: r:3\nda").is_empty());
        let got = parser.push(b"ta: {\"seq\":3}\n\n:\n\nevent: lagged\ndata: 7\n\ndata: a\n");
        assert_eq!(
            got,
            [
                Message {
                    event: "deployed".into(),
                    data: "{\"seq\":3}".into()
                },
                Message {
                    event: "lagged".into(),
                    data: "7".into()
                },
            ]
        );
        let got = parser.push(b"data: b\r\n\r\n");
        assert_eq!(got[0].data, "a\nb");
        assert_eq!(got[0].event, "message");
    }
}
