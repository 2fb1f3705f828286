//! memcached's text protocol, client side: encoding `get` and `set`, and parsing their replies
//! incrementally, from whatever bytes have arrived so far.
//!
//! A reply is parsed only when it is complete; until then [`parse_reply`] says how it stands
//! ([`Parsed::Incomplete`]) and consumes nothing, so the caller keeps the bytes and calls again
//! after the next read. The parser checks what it can: a `get` reply must name the key that was
//! asked for (which catches a request/reply pairing gone wrong), a value must be followed by
//! `\r\n`, and lines have a length limit so a misbehaving server cannot grow the buffer forever.

/// The longest reply line accepted (memcached's own lines are well under 300 bytes; an error
/// message may be longer).
pub const MAX_LINE: usize = 4096;

/// Which request a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `get <key>`
    Get,
    /// `set <key> 0 0 <bytes>`
    Set,
}

impl Op {
    /// The command name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
        }
    }
}

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A `get` found its key (`VALUE ... END`); `bytes` is the value's length.
    Hit { bytes: usize },
    /// A `get` found nothing (`END`).
    Miss,
    /// `STORED`
    Stored,
    /// `NOT_STORED`, `EXISTS` or `NOT_FOUND`: a reply a plain `set` should never get.
    NotStored(String),
    /// `ERROR`, `CLIENT_ERROR ...` or `SERVER_ERROR ...`, with the line.
    Error(String),
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole reply, which took the first `consumed` bytes.
    Complete { reply: Reply, consumed: usize },
    /// More bytes are needed.
    Incomplete,
}

/// The bytes received are not a valid reply to the request: the connection's stream can no
/// longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Appends `get <key>\r\n`.
pub fn encode_get(out: &mut Vec<u8>, key: &[u8]) {
    out.extend_from_slice(b"get ");
    out.extend_from_slice(key);
    out.extend_from_slice(b"\r\n");
}

/// Appends `set <key> 0 0 <len>\r\n<value>\r\n` (flags 0, never expires).
pub fn encode_set(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.extend_from_slice(b"set ");
    out.extend_from_slice(key);
    out.extend_from_slice(b" 0 0 ");
    push_decimal(out, value.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn push_decimal(out: &mut Vec<u8>, mut value: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Finds the next `\r\n`-terminated line at `buf[from..]`: returns the line without its
/// terminator and the index just past it.
fn line_at(buf: &[u8], from: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let rest = &buf[from..];
    match rest.iter().position(|&byte| byte == b'\n') {
        Some(newline) => {
            if newline == 0 || rest[newline - 1] != b'\r' {
                return Err(ProtocolError(format!(
                    "reply line not ended by \\r\\n: {:?}",
                    show(&rest[..newline])
                )));
            }
            Ok(Some((&rest[..newline - 1], from + newline + 1)))
        }
        None if rest.len() > MAX_LINE => Err(ProtocolError(format!(
            "reply line longer than {MAX_LINE} bytes"
        ))),
        None => Ok(None),
    }
}

/// A printable excerpt of protocol bytes for error messages.
pub fn show(bytes: &[u8]) -> String {
    let excerpt = &bytes[..bytes.len().min(80)];
    let mut text = String::from_utf8_lossy(excerpt).into_owned();
    if bytes.len() > excerpt.len() {
        text.push_str("...");
    }
    text
}

/// An error line, if `line` is one.
fn error_line(line: &[u8]) -> Option<Reply> {
    if line == b"ERROR"
        || line.starts_with(b"ERROR ")
        || line.starts_with(b"CLIENT_ERROR")
        || line.starts_with(b"SERVER_ERROR")
    {
        Some(Reply::Error(String::from_utf8_lossy(line).into_owned()))
    } else {
        None
    }
}

/// Parses the reply to `op` (for `get`, of `key`) at the start of `buf`.
pub fn parse_reply(buf: &[u8], op: Op, key: &[u8]) -> Result<Parsed, ProtocolError> {
    match op {
        Op::Set => {
            let Some((line, end)) = line_at(buf, 0)? else {
                return Ok(Parsed::Incomplete);
            };
            let reply = match line {
                b"STORED" => Reply::Stored,
                b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND" => {
                    Reply::NotStored(String::from_utf8_lossy(line).into_owned())
                }
                _ => error_line(line).ok_or_else(|| {
                    ProtocolError(format!("unexpected reply to set: {:?}", show(line)))
                })?,
            };
            Ok(Parsed::Complete {
                reply,
                consumed: end,
            })
        }
        Op::Get => {
            let mut at = 0;
            let mut found: Option<usize> = None;
            loop {
                let Some((line, end)) = line_at(buf, at)? else {
                    return Ok(Parsed::Incomplete);
                };
                if line == b"END" {
                    let reply = match found {
                        Some(bytes) => Reply::Hit { bytes },
                        None => Reply::Miss,
                    };
                    return Ok(Parsed::Complete {
                        reply,
                        consumed: end,
                    });
                }
                if let Some(rest) = line.strip_prefix(b"VALUE ") {
                    if found.is_some() {
                        return Err(ProtocolError(
                            "two VALUEs in the reply to a one-key get".to_string(),
                        ));
                    }
                    let bytes = parse_value_header(rest, key)?;
                    let data_end = end + bytes;
                    if buf.len() < data_end + 2 {
                        if bytes > 64 << 20 {
                            return Err(ProtocolError(format!(
                                "value of {bytes} bytes is implausibly large"
                            )));
                        }
                        return Ok(Parsed::Incomplete);
                    }
                    if &buf[data_end..data_end + 2] != b"\r\n" {
                        return Err(ProtocolError(format!(
                            "value of {bytes} bytes not followed by \\r\\n"
                        )));
                    }
                    found = Some(bytes);
                    at = data_end + 2;
                    continue;
                }
                if found.is_none() {
                    if let Some(reply) = error_line(line) {
                        return Ok(Parsed::Complete {
                            reply,
                            consumed: end,
                        });
                    }
                }
                return Err(ProtocolError(format!(
                    "unexpected reply to get: {:?}",
                    show(line)
                )));
            }
        }
    }
}

/// Parses `<key> <flags> <bytes> [<cas>]` and checks the key; returns the value's length.
fn parse_value_header(rest: &[u8], key: &[u8]) -> Result<usize, ProtocolError> {
    let mut fields = rest.split(|&byte| byte == b' ');
    let got_key = fields.next().unwrap_or_default();
    if got_key != key {
        return Err(ProtocolError(format!(
            "reply is for key {:?}, request was for {:?} (replies out of order?)",
            show(got_key),
            show(key)
        )));
    }
    let number = |field: Option<&[u8]>, what: &str| -> Result<u64, ProtocolError> {
        field
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| ProtocolError(format!("bad {what} in VALUE line: {:?}", show(rest))))
    };
    number(fields.next(), "flags")?;
    let bytes = number(fields.next(), "length")?;
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(reply: Reply, consumed: usize) -> Result<Parsed, ProtocolError> {
        Ok(Parsed::Complete { reply, consumed })
    }

    #[test]
    fn encodes_requests() {
        let mut out = Vec::new();
        encode_get(&mut out, b"k01");
        encode_set(&mut out, b"k02", b"hello");
        encode_set(&mut out, b"k03", &[b'x'; 1234]);
        assert!(out.starts_with(b"get k01\r\nset k02 0 0 5\r\nhello\r\nset k03 0 0 1234\r\nxx"));
        assert!(out.ends_with(b"x\r\n"));
        let mut zero = Vec::new();
        encode_set(&mut zero, b"k", b"");
        assert_eq!(zero, b"set k 0 0 0\r\n\r\n");
    }

    #[test]
    fn parses_each_reply_kind() {
        assert_eq!(
            parse_reply(b"STORED\r\n", Op::Set, b""),
            complete(Reply::Stored, 8)
        );
        assert_eq!(
            parse_reply(b"NOT_STORED\r\n", Op::Set, b""),
            complete(Reply::NotStored("NOT_STORED".into()), 12)
        );
        assert_eq!(
            parse_reply(
                b"SERVER_ERROR out of memory storing object\r\n",
                Op::Set,
                b""
            ),
            complete(
                Reply::Error("SERVER_ERROR out of memory storing object".into()),
                43
            )
        );
        assert_eq!(
            parse_reply(b"END\r\n", Op::Get, b"a"),
            complete(Reply::Miss, 5)
        );
        assert_eq!(
            parse_reply(b"VALUE a 0 3\r\nabc\r\nEND\r\n", Op::Get, b"a"),
            complete(Reply::Hit { bytes: 3 }, 23)
        );
        // `gets`-style CAS field and flags are accepted.
        assert_eq!(
            parse_reply(b"VALUE a 17 1 99\r\nz\r\nEND\r\n", Op::Get, b"a"),
            complete(Reply::Hit { bytes: 1 }, 25)
        );
        assert_eq!(
            parse_reply(b"ERROR\r\n", Op::Get, b"a"),
            complete(Reply::Error("ERROR".into()), 7)
        );
        assert_eq!(
            parse_reply(b"CLIENT_ERROR bad command line format\r\n", Op::Get, b"a"),
            complete(
                Reply::Error("CLIENT_ERROR bad command line format".into()),
                38
            )
        );
    }

    #[test]
    fn a_value_may_contain_protocol_words() {
        let reply = b"VALUE a 0 11\r\nEND\r\nSTORED\r\nEND\r\n";
        assert_eq!(
            parse_reply(reply, Op::Get, b"a"),
            complete(Reply::Hit { bytes: 11 }, reply.len())
        );
    }

    #[test]
    fn every_prefix_is_incomplete_and_pipelined_replies_split_correctly() {
        let stream: &[u8] = b"VALUE k1 0 5\r\nhello\r\nEND\r\nSTORED\r\nEND\r\n";
        let requests: [(Op, &[u8]); 3] = [(Op::Get, b"k1"), (Op::Set, b"k2"), (Op::Get, b"k3")];
        let expected = [Reply::Hit { bytes: 5 }, Reply::Stored, Reply::Miss];
        // Feed the stream one byte at a time, as the worst case of partial reads.
        let mut buffer = Vec::new();
        let mut next = 0;
        for &byte in stream {
            buffer.push(byte);
            loop {
                let (op, key) = requests[next];
                match parse_reply(&buffer, op, key).unwrap() {
                    Parsed::Incomplete => break,
                    Parsed::Complete { reply, consumed } => {
                        assert_eq!(reply, expected[next]);
                        buffer.drain(..consumed);
                        next += 1;
                        if next == requests.len() {
                            break;
                        }
                    }
                }
            }
        }
        assert_eq!(next, 3);
        assert!(buffer.is_empty());
    }

    #[test]
    fn malformed_replies_are_errors() {
        let error = parse_reply(b"VALUE other 0 1\r\nx\r\nEND\r\n", Op::Get, b"mine").unwrap_err();
        assert!(error.0.contains("out of order"), "{error}");
        assert!(parse_reply(b"VALUE a 0 3\r\nabcd\r\nEND\r\n", Op::Get, b"a").is_err());
        assert!(parse_reply(b"STORED\n", Op::Set, b"").is_err());
        assert!(parse_reply(b"HELLO\r\n", Op::Set, b"").is_err());
        assert!(parse_reply(b"STORED\r\n", Op::Get, b"a").is_err());
        assert!(parse_reply(b"VALUE a x 3\r\n", Op::Get, b"a").is_err());
        assert!(parse_reply(&[b'a'; MAX_LINE + 1], Op::Set, b"")
            .unwrap_err()
            .0
            .contains("longer than"));
        assert_eq!(
            parse_reply(&[b'a'; MAX_LINE], Op::Set, b""),
            Ok(Parsed::Incomplete)
        );
    }
}
