//! A stub memcached for calibrating the load generator: it answers `get` with a fixed value and
//! `set` with `STORED`, over TCP and UDP on many ports, either at once (to measure the
//! instrument's own floor) or exactly `delay` after each request arrived (to check that the
//! latency reported equals a latency known in advance).
//!
//! Because every reply waits the same delay, replies leave in arrival order, so one FIFO holds
//! everything delayed; a [`WakeTimer`] releases each on time to within microseconds.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};

use crate::protocol::MAX_LINE;
use crate::schedule::Clock;
use crate::timer::{tighten_timer_slack, WakeTimer};
use crate::udp::{FrameHeader, HEADER_LEN};

/// Reply datagrams are at most this long, header included, as memcached's.
pub const MAX_DATAGRAM: usize = 1400;

/// What the stub should do.
#[derive(Debug, Clone)]
pub struct StubConfig {
    pub host: IpAddr,
    /// Ports to listen on (TCP and UDP each); 0 picks a free one.
    pub ports: Vec<u16>,
    /// How long after a request's arrival its reply is sent.
    pub delay: Duration,
    /// The size of the value every `get` returns.
    pub value_size: usize,
    /// Stop after this long (None: serve until killed).
    pub run_for: Option<Duration>,
}

/// One parsed request, as far as the stub cares.
#[derive(Debug, PartialEq, Eq)]
pub enum StubRequest {
    /// `get`/`gets` with these keys.
    Get(Vec<Vec<u8>>),
    /// A storage command; `quiet` for noreply.
    Store { quiet: bool },
    /// `version`
    Version,
    /// Anything else.
    Unknown,
}

/// Parses one request at the start of `input`: the request and the bytes it took, or None if
/// it is incomplete.
pub fn parse_request(input: &[u8]) -> Result<Option<(StubRequest, usize)>, String> {
    let Some(newline) = input.iter().position(|&byte| byte == b'\n') else {
        if input.len() > MAX_LINE {
            return Err(format!("request line longer than {MAX_LINE} bytes"));
        }
        return Ok(None);
    };
    let line = input[..newline]
        .strip_suffix(b"\r")
        .unwrap_or(&input[..newline]);
    let mut words = line
        .split(|&byte| byte == b' ')
        .filter(|word| !word.is_empty());
    let command = words.next().unwrap_or_default();
    let after_line = newline + 1;
    let request = match command {
        b"get" | b"gets" => StubRequest::Get(words.map(<[u8]>::to_vec).collect()),
        b"set" | b"add" | b"replace" | b"append" | b"prepend" => {
            let fields: Vec<&[u8]> = words.collect();
            let bytes = fields
                .get(3)
                .and_then(|field| std::str::from_utf8(field).ok())
                .and_then(|text| text.parse::<usize>().ok())
                .ok_or_else(|| format!("bad storage command: {}", String::from_utf8_lossy(line)))?;
            let end = after_line + bytes + 2;
            if input.len() < end {
                return Ok(None);
            }
            let quiet = fields.get(4) == Some(&&b"noreply"[..]);
            return Ok(Some((StubRequest::Store { quiet }, end)));
        }
        b"version" => StubRequest::Version,
        _ => StubRequest::Unknown,
    };
    Ok(Some((request, after_line)))
}

/// Appends the reply to `request`.
pub fn reply(request: &StubRequest, value: &[u8], out: &mut Vec<u8>) {
    match request {
        StubRequest::Get(keys) => {
            for key in keys {
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" 0 {}\r\n", value.len()).as_bytes());
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"END\r\n");
        }
        StubRequest::Store { quiet: false } => out.extend_from_slice(b"STORED\r\n"),
        StubRequest::Store { quiet: true } => {}
        StubRequest::Version => out.extend_from_slice(b"VERSION loadgen-stub\r\n"),
        StubRequest::Unknown => out.extend_from_slice(b"ERROR\r\n"),
    }
}

/// Cuts a UDP reply message into framed datagrams of at most [`MAX_DATAGRAM`] bytes.
pub fn frame_reply(request_id: u16, message: &[u8]) -> Vec<Vec<u8>> {
    let chunk = MAX_DATAGRAM - HEADER_LEN;
    let total = message.len().div_ceil(chunk).max(1);
    (0..total)
        .map(|sequence| {
            let mut datagram = Vec::with_capacity(MAX_DATAGRAM);
            FrameHeader {
                request_id,
                sequence: sequence as u16,
                total: total as u16,
            }
            .encode(&mut datagram);
            datagram.extend_from_slice(
                &message[(sequence * chunk).min(message.len())
                    ..((sequence + 1) * chunk).min(message.len())],
            );
            datagram
        })
        .collect()
}

/// Where a delayed reply goes.
#[derive(Debug)]
enum Destination {
    Tcp(usize),
    Udp(usize, SocketAddr),
}

#[derive(Debug)]
struct StubConnection {
    stream: TcpStream,
    input: Vec<u8>,
    out: Vec<u8>,
    out_start: usize,
    open: bool,
}

/// A bound stub, ready to serve.
pub struct Stub {
    poll: Poll,
    listeners: Vec<TcpListener>,
    udp: Vec<UdpSocket>,
    connections: Vec<StubConnection>,
    delayed: VecDeque<(u64, Destination, Vec<u8>)>,
    timer: WakeTimer,
    clock: Clock,
    delay_ns: u64,
    value: Vec<u8>,
    run_for: Option<Duration>,
    /// The ports actually bound.
    pub ports: Vec<u16>,
}

const TIMER: Token = Token(0);

impl Stub {
    /// Binds every port (TCP and UDP on the same number).
    pub fn bind(config: &StubConfig) -> io::Result<Stub> {
        let poll = Poll::new()?;
        let timer = WakeTimer::new()?;
        timer.register(poll.registry(), TIMER)?;
        let count = config.ports.len();
        let mut listeners = Vec::with_capacity(count);
        let mut udp = Vec::with_capacity(count);
        let mut ports = Vec::with_capacity(count);
        for (i, &wanted) in config.ports.iter().enumerate() {
            // A port picked for TCP may be taken for UDP: try a few.
            let mut attempts = 0;
            let (listener, socket, port) = loop {
                let mut listener = TcpListener::bind(SocketAddr::new(config.host, wanted))?;
                let port = listener.local_addr()?.port();
                match UdpSocket::bind(SocketAddr::new(config.host, port)) {
                    Ok(mut socket) => {
                        poll.registry().register(
                            &mut listener,
                            Token(1 + i),
                            Interest::READABLE,
                        )?;
                        poll.registry().register(
                            &mut socket,
                            Token(1 + count + i),
                            Interest::READABLE,
                        )?;
                        break (listener, socket, port);
                    }
                    Err(_) if wanted == 0 && attempts < 20 => attempts += 1,
                    Err(error) => {
                        return Err(io::Error::new(
                            error.kind(),
                            format!("UDP port {port}: {error}"),
                        ))
                    }
                }
            };
            listeners.push(listener);
            udp.push(socket);
            ports.push(port);
        }
        Ok(Stub {
            poll,
            listeners,
            udp,
            connections: Vec::new(),
            delayed: VecDeque::new(),
            timer,
            clock: Clock::start(),
            delay_ns: config.delay.as_nanos() as u64,
            value: vec![b'v'; config.value_size],
            run_for: config.run_for,
            ports,
        })
    }

    /// Serves until `run_for` has passed (or forever).
    pub fn serve(mut self) -> io::Result<()> {
        tighten_timer_slack();
        let count = self.listeners.len();
        let first_connection = 1 + 2 * count;
        let stop_at = self.run_for.map(|limit| limit.as_nanos() as u64);
        let mut events = Events::with_capacity(1024);
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let now = self.clock.now();
            self.release(now);
            if stop_at.is_some_and(|stop| now >= stop) {
                return Ok(());
            }
            let wake = self
                .delayed
                .front()
                .map(|(due, _, _)| *due)
                .into_iter()
                .chain(stop_at)
                .min();
            if let Some(wake) = wake {
                self.timer.arm(wake, now)?;
            }
            match self.poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
            for event in events.iter() {
                let token = event.token().0;
                if event.token() == TIMER {
                    self.timer.fired();
                } else if token <= count {
                    self.accept(token - 1, first_connection)?;
                } else if token < first_connection {
                    self.serve_udp(token - 1 - count, &mut buffer);
                } else {
                    let i = token - first_connection;
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        self.serve_tcp(i, &mut buffer);
                    }
                    if event.is_writable() {
                        self.flush(i);
                    }
                }
            }
        }
    }

    fn accept(&mut self, listener: usize, first_connection: usize) -> io::Result<()> {
        loop {
            match self.listeners[listener].accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let token = Token(first_connection + self.connections.len());
                    self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    self.connections.push(StubConnection {
                        stream,
                        input: Vec::new(),
                        out: Vec::new(),
                        out_start: 0,
                        open: true,
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // Out of descriptors and the like: leave the connection in the backlog.
                Err(error) => {
                    eprintln!("loadgen-stub: accept failed: {error}");
                    return Ok(());
                }
            }
        }
    }

    fn serve_tcp(&mut self, i: usize, buffer: &mut [u8]) {
        let connection = &mut self.connections[i];
        if !connection.open {
            return;
        }
        loop {
            match connection.stream.read(buffer) {
                Ok(0) => {
                    connection.open = false;
                    let _ = self.poll.registry().deregister(&mut connection.stream);
                    return;
                }
                Ok(count) => connection.input.extend_from_slice(&buffer[..count]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    connection.open = false;
                    let _ = self.poll.registry().deregister(&mut connection.stream);
                    return;
                }
            }
        }
        let now = self.clock.now();
        let mut at = 0;
        let mut replies = Vec::new();
        loop {
            match parse_request(&connection.input[at..]) {
                Ok(Some((request, consumed))) => {
                    at += consumed;
                    reply(&request, &self.value, &mut replies);
                }
                Ok(None) => break,
                Err(message) => {
                    replies.extend_from_slice(format!("CLIENT_ERROR {message}\r\n").as_bytes());
                    at = connection.input.len();
                    break;
                }
            }
        }
        connection.input.drain(..at);
        if replies.is_empty() {
            return;
        }
        if self.delay_ns == 0 {
            connection.out.extend_from_slice(&replies);
            self.flush(i);
        } else {
            self.delayed
                .push_back((now + self.delay_ns, Destination::Tcp(i), replies));
        }
    }

    fn serve_udp(&mut self, socket: usize, buffer: &mut [u8]) {
        loop {
            let (count, peer) = match self.udp[socket].recv_from(buffer) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let now = self.clock.now();
            let Ok((header, payload)) = FrameHeader::decode(&buffer[..count]) else {
                continue;
            };
            if header.total != 1 {
                continue;
            }
            let mut message = Vec::new();
            let mut at = 0;
            while let Ok(Some((request, consumed))) = parse_request(&payload[at..]) {
                at += consumed;
                reply(&request, &self.value, &mut message);
            }
            if message.is_empty() {
                continue;
            }
            for datagram in frame_reply(header.request_id, &message) {
                if self.delay_ns == 0 {
                    let _ = self.udp[socket].send_to(&datagram, peer);
                } else {
                    self.delayed.push_back((
                        now + self.delay_ns,
                        Destination::Udp(socket, peer),
                        datagram,
                    ));
                }
            }
        }
    }

    /// Sends every delayed reply that is due.
    fn release(&mut self, now: u64) {
        while self.delayed.front().is_some_and(|(due, _, _)| *due <= now) {
            let Some((_, destination, bytes)) = self.delayed.pop_front() else {
                break;
            };
            match destination {
                Destination::Tcp(i) => {
                    self.connections[i].out.extend_from_slice(&bytes);
                    self.flush(i);
                }
                Destination::Udp(socket, peer) => {
                    let _ = self.udp[socket].send_to(&bytes, peer);
                }
            }
        }
    }

    fn flush(&mut self, i: usize) {
        let connection = &mut self.connections[i];
        while connection.open && connection.out_start < connection.out.len() {
            match connection
                .stream
                .write(&connection.out[connection.out_start..])
            {
                Ok(written) => connection.out_start += written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    connection.open = false;
                    let _ = self.poll.registry().deregister(&mut connection.stream);
                }
            }
        }
        connection.out.clear();
        connection.out_start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_waits_for_whole_values() {
        assert_eq!(
            parse_request(b"get a b\r\n"),
            Ok(Some((
                StubRequest::Get(vec![b"a".to_vec(), b"b".to_vec()]),
                9
            )))
        );
        assert_eq!(parse_request(b"get a"), Ok(None));
        assert_eq!(parse_request(b"set k 0 0 5\r\nhel"), Ok(None));
        assert_eq!(
            parse_request(b"set k 0 0 5\r\nhello\r\nget"),
            Ok(Some((StubRequest::Store { quiet: false }, 20)))
        );
        assert_eq!(
            parse_request(b"set k 0 0 1 noreply\r\nx\r\n"),
            Ok(Some((StubRequest::Store { quiet: true }, 24)))
        );
        assert_eq!(
            parse_request(b"bogus\r\n"),
            Ok(Some((StubRequest::Unknown, 7)))
        );
        assert!(parse_request(b"set k 0 0 x\r\n").is_err());
    }

    #[test]
    fn replies_like_memcached() {
        let mut out = Vec::new();
        reply(&StubRequest::Get(vec![b"k".to_vec()]), b"xyz", &mut out);
        reply(&StubRequest::Store { quiet: false }, b"", &mut out);
        reply(&StubRequest::Store { quiet: true }, b"", &mut out);
        assert_eq!(out, b"VALUE k 0 3\r\nxyz\r\nEND\r\nSTORED\r\n");
    }

    #[test]
    fn long_udp_replies_are_split_and_reassemble() {
        let message: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let datagrams = frame_reply(77, &message);
        assert_eq!(datagrams.len(), 3);
        assert!(datagrams.iter().all(|d| d.len() <= MAX_DATAGRAM));
        let mut reassembly = crate::udp::Reassembly::new(3);
        let mut whole = None;
        for datagram in datagrams.iter().rev() {
            let (header, payload) = FrameHeader::decode(datagram).unwrap();
            assert_eq!((header.request_id, header.total), (77, 3));
            whole = reassembly.add(header, payload).unwrap();
        }
        assert_eq!(whole, Some(message));
        assert_eq!(frame_reply(1, b"END\r\n").len(), 1);
    }
}
