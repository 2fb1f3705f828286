//! One worker thread: a `mio` event loop that owns a share of the connections and drives them
//! through the phases the coordinator sends it (populate, then one or more load phases).
//!
//! The loop, in order, each turn: send every request whose time has come (open loop: the
//! schedule of intended times; closed loop: connections whose previous reply came back, after
//! any think time), flush TCP output, expire UDP requests past the timeout, then sleep in
//! `epoll` until the next due time (a [`WakeTimer`] gives sub-millisecond precision) or until
//! sockets are ready, and read every ready socket, timestamping replies as they are read.
//!
//! TCP replies come back in request order, so each connection keeps its outstanding requests
//! in a FIFO and parses replies against the head (pipelining is free). UDP replies may be lost
//! or reordered, so they are matched by request id, and a request unanswered after `--timeout`
//! counts as a timeout.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use mio::net::{TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};

use crate::dist::{Arrivals, KeyPicker, SizeDist};
use crate::keys::KeySpace;
use crate::protocol::{encode_get, encode_set, parse_reply, show, Op, Parsed, Reply};
use crate::rng::Rng;
use crate::schedule::{ArrivalStream, Clock, Schedule};
use crate::stats::{LiveCounters, Stats};
use crate::timer::{tighten_timer_slack, WakeTimer};
use crate::udp::{FrameHeader, Reassembly, HEADER_LEN, MAX_REQUEST};

/// The poll token of the wake timer; connection i has token i + 1.
const TIMER: Token = Token(0);

/// How often UDP timeouts are checked, ns.
const EXPIRY_CHECK_NS: u64 = 1_000_000;

/// Read granularity.
const READ_CHUNK: usize = 64 * 1024;

/// How many times populate resends a `set` lost over UDP.
const POPULATE_RETRIES: u8 = 3;

/// What every worker shares: the workload.
#[derive(Debug)]
pub struct Workload {
    pub keys: KeySpace,
    pub picker: KeyPicker,
    pub value_sizes: SizeDist,
    /// The largest value sent (memcached's item size limit).
    pub max_value: usize,
    /// The fraction of requests that are `get`s.
    pub get_ratio: f64,
    pub arrivals: Arrivals,
    pub timeout_ns: u64,
    /// How long before a due time the loop stops sleeping and polls instead (0: never).
    pub spin_ns: u64,
    pub seed: u64,
    /// Filler bytes values are cut from (`max_value` long).
    pub filler: Vec<u8>,
}

/// A connected socket, handed to a worker.
#[derive(Debug)]
pub enum Socket {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

/// One connection as the coordinator hands it over.
#[derive(Debug)]
pub struct ConnectionSpec {
    pub addr: SocketAddr,
    pub socket: Socket,
    /// The connection's number across all workers (seeds its random streams).
    pub global_index: u64,
    /// Its rank among the connections to the same port, and how many there are: populate
    /// splits that port's keys between them.
    pub rank_on_port: u64,
    pub per_port: u64,
}

/// How a load phase issues requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoopMode {
    /// Poisson (or other) arrivals at this many requests per second per connection.
    Open { rate_per_connection: f64 },
    /// `depth` requests outstanding per connection, each reply followed by `think_ns` of
    /// think time before the next request.
    Closed { depth: u32, think_ns: u64 },
}

/// What the coordinator asks of a worker.
#[derive(Debug, Clone)]
pub enum Command {
    /// Store every key on every connection's server (each port's keys split between its
    /// connections), `depth` sets in flight per connection.
    Populate { depth: u32 },
    /// Run load from `start` to `end` (clock ns); measure requests intended in `measure_from..end`.
    Load {
        mode: LoopMode,
        start: u64,
        measure_from: u64,
        end: u64,
    },
    /// Close everything and end the thread.
    Quit,
}

/// A worker's answer to a command: its measurements, or why it could not run.
pub type Report = (usize, Result<Stats, String>);

/// Why a request was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Populate, on its `attempt`-th resend.
    Populate { attempt: u8 },
    /// Load, measured or not (warm-up).
    Load { measured: bool },
    /// A TCP request given up on at the end of a phase: its reply, if it comes, is skipped.
    Abandoned,
}

/// A request awaiting its reply.
#[derive(Debug, Clone, Copy)]
struct Pending {
    op: Op,
    key: u64,
    /// When it should have been sent (latency is measured from here).
    intended: u64,
    /// When it was sent.
    sent: u64,
    purpose: Purpose,
}

/// How a request ended.
#[derive(Debug)]
enum Outcome {
    Reply(Reply),
    /// The connection failed, or the reply was malformed.
    Failed(String),
    /// No reply within the timeout (UDP).
    TimedOut,
    /// Still unanswered when the phase ended.
    Abandoned,
}

/// The socket-specific state of a connection.
#[derive(Debug)]
enum Link {
    Tcp {
        stream: TcpStream,
        /// Bytes to send, from `out_start`.
        out: Vec<u8>,
        out_start: usize,
        /// Bytes received and not yet parsed.
        input: Vec<u8>,
        /// Sent requests in reply order; abandoned ones stay at the front until their replies
        /// are skipped.
        pending: VecDeque<Pending>,
        abandoned: usize,
    },
    Udp {
        socket: UdpSocket,
        next_id: u16,
        pending: HashMap<u16, Pending>,
        /// (request id, send time) in send order, to find expired requests quickly.
        order: VecDeque<(u16, u64)>,
        partial: HashMap<u16, Reassembly>,
        /// Datagrams the socket refused for lack of buffer space, to resend when writable.
        backlog: VecDeque<Vec<u8>>,
    },
}

#[derive(Debug)]
struct Connection {
    addr: SocketAddr,
    link: Link,
    /// Set when the connection failed; it sends nothing more.
    dead: bool,
    /// Whether it is on the worker's list of connections with output to flush.
    dirty: bool,
    /// Populate: the next key of this connection's share, the stride between its keys, and
    /// keys lost over UDP to resend (with their attempt number).
    populate_next: u64,
    populate_step: u64,
    populate_retry: VecDeque<(u64, u8)>,
    /// Open loop: this connection's arrival process.
    stream: Option<ArrivalStream>,
    rng: Rng,
    global_index: u64,
}

impl Connection {
    /// Requests awaiting a reply that still matter.
    fn outstanding(&self) -> usize {
        match &self.link {
            Link::Tcp {
                pending, abandoned, ..
            } => pending.len() - abandoned,
            Link::Udp { pending, .. } => pending.len(),
        }
    }
}

/// The phase being driven.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Populate {
        depth: u32,
    },
    Load {
        mode: LoopMode,
        start: u64,
        measure_from: u64,
        end: u64,
    },
}

/// A worker: its poll set, its connections, and what it has measured in the current phase.
pub struct Worker {
    index: usize,
    poll: Poll,
    events: Events,
    timer: WakeTimer,
    connections: Vec<Connection>,
    workload: Arc<Workload>,
    clock: Clock,
    live: Arc<LiveCounters>,
    schedule: Schedule,
    stats: Stats,
    /// Requests that ended and are not yet accounted: (connection, request, outcome, when).
    finished: Vec<(usize, Pending, Outcome, u64)>,
    /// Connections with output to flush.
    dirty: Vec<usize>,
    /// The last poll's events: (token, readable, writable).
    ready: Vec<(Token, bool, bool)>,
    read_buffer: Vec<u8>,
    datagram: Vec<u8>,
    /// When UDP timeouts were last checked.
    last_expiry_check: u64,
    /// Whether any connection is UDP (and so needs timeout checks).
    uses_udp: bool,
    /// When a reply last arrived (populate gives up after a long silence).
    last_progress: u64,
}

impl Worker {
    /// A worker for `specs`, registering their sockets in a new poll set.
    pub fn new(
        index: usize,
        specs: Vec<ConnectionSpec>,
        workload: Arc<Workload>,
        clock: Clock,
        live: Arc<LiveCounters>,
    ) -> io::Result<Worker> {
        let poll = Poll::new()?;
        let timer = WakeTimer::new()?;
        timer.register(poll.registry(), TIMER)?;
        let mut connections = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let token = Token(i + 1);
            let link = match spec.socket {
                Socket::Tcp(mut stream) => {
                    poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    Link::Tcp {
                        stream,
                        out: Vec::new(),
                        out_start: 0,
                        input: Vec::new(),
                        pending: VecDeque::new(),
                        abandoned: 0,
                    }
                }
                Socket::Udp(mut socket) => {
                    poll.registry().register(
                        &mut socket,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    Link::Udp {
                        socket,
                        // Different starting ids per connection make a misrouted reply unlikely
                        // to match anything.
                        next_id: (spec.global_index as u16).wrapping_mul(7919),
                        pending: HashMap::new(),
                        order: VecDeque::new(),
                        partial: HashMap::new(),
                        backlog: VecDeque::new(),
                    }
                }
            };
            connections.push(Connection {
                addr: spec.addr,
                link,
                dead: false,
                dirty: false,
                populate_next: spec.rank_on_port,
                populate_step: spec.per_port.max(1),
                populate_retry: VecDeque::new(),
                stream: None,
                rng: Rng::stream(workload.seed, spec.global_index),
                global_index: spec.global_index,
            });
        }
        let uses_udp = connections
            .iter()
            .any(|c| matches!(c.link, Link::Udp { .. }));
        Ok(Worker {
            index,
            poll,
            events: Events::with_capacity(1024),
            timer,
            connections,
            workload,
            clock,
            live,
            schedule: Schedule::new(),
            stats: Stats::default(),
            finished: Vec::new(),
            dirty: Vec::new(),
            ready: Vec::new(),
            read_buffer: vec![0; READ_CHUNK],
            datagram: Vec::with_capacity(MAX_REQUEST),
            last_expiry_check: 0,
            uses_udp,
            last_progress: 0,
        })
    }

    /// Serves commands until `Quit` (or until the coordinator goes away).
    pub fn serve(mut self, commands: Receiver<Command>, reports: Sender<Report>) {
        tighten_timer_slack();
        let mut phase_number = 0u64;
        while let Ok(command) = commands.recv() {
            let phase = match command {
                Command::Quit => break,
                Command::Populate { depth } => Phase::Populate { depth },
                Command::Load {
                    mode,
                    start,
                    measure_from,
                    end,
                } => Phase::Load {
                    mode,
                    start,
                    measure_from,
                    end,
                },
            };
            phase_number += 1;
            let result = self
                .drive(phase, phase_number)
                .map(|()| std::mem::take(&mut self.stats));
            if reports.send((self.index, result)).is_err() {
                break;
            }
        }
    }

    /// How long populate waits without any reply before giving up, ns.
    fn silence_limit(&self) -> u64 {
        self.workload.timeout_ns.max(1_000_000_000) * 2
    }

    /// Runs one phase to its end.
    fn drive(&mut self, phase: Phase, phase_number: u64) -> Result<(), String> {
        self.stats = Stats::default();
        self.schedule.clear();
        let now = self.clock.now();
        self.last_progress = now;
        let workload = Arc::clone(&self.workload);
        for (i, connection) in self.connections.iter_mut().enumerate() {
            if connection.dead {
                continue;
            }
            let i = i as u32;
            match phase {
                Phase::Populate { depth } => {
                    for _ in 0..depth {
                        self.schedule.push(now, i);
                    }
                }
                Phase::Load {
                    mode: LoopMode::Closed { depth, .. },
                    start,
                    ..
                } => {
                    for _ in 0..depth {
                        self.schedule.push(start, i);
                    }
                }
                Phase::Load {
                    mode:
                        LoopMode::Open {
                            rate_per_connection,
                        },
                    start,
                    ..
                } => {
                    let seed = workload.seed ^ phase_number.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    let rng = Rng::stream(seed, connection.global_index);
                    let mut stream =
                        ArrivalStream::new(workload.arrivals, rate_per_connection, rng);
                    self.schedule.push(stream.first(start), i);
                    connection.stream = Some(stream);
                }
            }
        }
        loop {
            let now = self.clock.now();
            self.send_due(now, phase);
            self.flush_dirty();
            if now >= self.last_expiry_check + EXPIRY_CHECK_NS {
                self.expire_udp(now);
                self.last_expiry_check = now;
            }
            self.account(phase);
            if self.is_over(now, phase) {
                break;
            }
            let wake = self.next_wake(now, phase);
            // Within the spin window of the next due time, poll without sleeping: a sleeping
            // thread wakes tens of microseconds late on a virtual machine.
            let timeout = if wake <= now + self.workload.spin_ns {
                Some(Duration::ZERO)
            } else {
                let early = wake - self.workload.spin_ns;
                self.timer
                    .arm(early, now)
                    .map_err(|error| format!("cannot arm the wake-up timer: {error}"))?;
                None
            };
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(format!("worker {}: poll failed: {error}", self.index)),
            }
            let mut ready = std::mem::take(&mut self.ready);
            ready.clear();
            ready.extend(self.events.iter().map(|event| {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                (event.token(), readable, event.is_writable())
            }));
            for &(token, readable, writable) in &ready {
                if token == TIMER {
                    self.timer.fired();
                    continue;
                }
                if readable {
                    self.read(token.0 - 1);
                }
                if writable {
                    self.flush(token.0 - 1);
                }
            }
            self.ready = ready;
            self.account(phase);
        }
        // Whatever is still outstanding now is no longer waited for.
        let now = self.clock.now();
        for i in 0..self.connections.len() {
            self.abandon_outstanding(i, now);
        }
        self.account(phase);
        Ok(())
    }

    /// When the loop must next wake up by itself.
    fn next_wake(&self, now: u64, phase: Phase) -> u64 {
        let mut wake = self.schedule.next_due().unwrap_or(u64::MAX);
        // (Checking whether any UDP request is pending would cost a pass over every connection
        // per turn; a wake-up each millisecond is cheaper.)
        if self.uses_udp {
            wake = wake.min(self.last_expiry_check + EXPIRY_CHECK_NS);
        }
        match phase {
            Phase::Load { end, .. } if now < end => wake.min(end),
            Phase::Load { end, .. } => wake.min(end + self.workload.timeout_ns),
            Phase::Populate { .. } => wake.min(self.last_progress + self.silence_limit()),
        }
    }

    /// Whether the phase is over.
    fn is_over(&self, now: u64, phase: Phase) -> bool {
        match phase {
            Phase::Load { end, .. } => {
                now >= end
                    && (now >= end + self.workload.timeout_ns
                        || self.connections.iter().all(|c| c.outstanding() == 0))
            }
            Phase::Populate { .. } => {
                let done = self.schedule.is_empty()
                    && self.connections.iter().all(|c| {
                        c.dead
                            || (c.outstanding() == 0
                                && c.populate_retry.is_empty()
                                && c.populate_next >= self.workload.keys.len())
                    });
                // Or nothing has come back for a long time: the server is not answering.
                done || now >= self.last_progress + self.silence_limit()
            }
        }
    }

    /// Sends every request due by `now`.
    fn send_due(&mut self, now: u64, phase: Phase) {
        while let Some((intended, i)) = self.schedule.pop_due(now) {
            let i = i as usize;
            let connection = &mut self.connections[i];
            match phase {
                Phase::Populate { .. } => {
                    let next = if let Some(retry) = connection.populate_retry.pop_front() {
                        Some(retry)
                    } else if connection.populate_next < self.workload.keys.len() {
                        let key = connection.populate_next;
                        connection.populate_next += connection.populate_step;
                        Some((key, 0))
                    } else {
                        None
                    };
                    if let Some((key, attempt)) = next {
                        self.send(
                            i,
                            Op::Set,
                            key,
                            intended,
                            now,
                            Purpose::Populate { attempt },
                        );
                    }
                }
                Phase::Load {
                    mode,
                    measure_from,
                    end,
                    ..
                } => {
                    if intended >= end {
                        continue;
                    }
                    if let (LoopMode::Open { .. }, Some(stream)) =
                        (mode, connection.stream.as_mut())
                    {
                        let next = stream.next(intended);
                        self.schedule.push(next, i as u32);
                    }
                    let connection = &mut self.connections[i];
                    let op = if connection.rng.unit() < self.workload.get_ratio {
                        Op::Get
                    } else {
                        Op::Set
                    };
                    let key = self.workload.picker.pick(&mut connection.rng);
                    self.send(
                        i,
                        op,
                        key,
                        intended,
                        now,
                        Purpose::Load {
                            measured: intended >= measure_from,
                        },
                    );
                }
            }
        }
    }

    /// Encodes one request and sends it (UDP) or queues it for the next flush (TCP).
    fn send(&mut self, i: usize, op: Op, key: u64, intended: u64, now: u64, purpose: Purpose) {
        let pending = Pending {
            op,
            key,
            intended,
            sent: now,
            purpose,
        };
        if purpose == (Purpose::Load { measured: true }) {
            self.stats.sent += 1;
            self.stats
                .send_lag
                .saturating_record(now.saturating_sub(intended).max(1));
        }
        LiveCounters::add(&self.live.sent, 1);
        let workload = &*self.workload;
        let connection = &mut self.connections[i];
        if connection.dead {
            let message = format!(
                "{}: request not sent: the connection failed earlier",
                connection.addr
            );
            self.finished
                .push((i, pending, Outcome::Failed(message), now));
            return;
        }
        let key_bytes = workload.keys.key(key);
        let mut value_len = 0;
        if op == Op::Set {
            let mut limit = workload.max_value;
            if matches!(connection.link, Link::Udp { .. }) {
                // The whole request must fit in one datagram.
                limit = limit.min(MAX_REQUEST - HEADER_LEN - key_bytes.len() - 32);
            }
            value_len = workload.value_sizes.sample(&mut connection.rng, 1, limit);
        }
        let value = &workload.filler[..value_len];
        match &mut connection.link {
            Link::Tcp {
                out,
                pending: queue,
                ..
            } => {
                match op {
                    Op::Get => encode_get(out, key_bytes),
                    Op::Set => encode_set(out, key_bytes, value),
                }
                queue.push_back(pending);
                if !connection.dirty {
                    connection.dirty = true;
                    self.dirty.push(i);
                }
            }
            Link::Udp {
                socket,
                next_id,
                pending: table,
                order,
                backlog,
                ..
            } => {
                if table.len() >= usize::from(u16::MAX) {
                    let message = format!(
                        "{}: 65535 UDP requests outstanding, none answered",
                        connection.addr
                    );
                    self.finished
                        .push((i, pending, Outcome::Failed(message), now));
                    return;
                }
                while table.contains_key(next_id) {
                    *next_id = next_id.wrapping_add(1);
                }
                let id = *next_id;
                *next_id = next_id.wrapping_add(1);
                self.datagram.clear();
                FrameHeader::request(id).encode(&mut self.datagram);
                match op {
                    Op::Get => encode_get(&mut self.datagram, key_bytes),
                    Op::Set => encode_set(&mut self.datagram, key_bytes, value),
                }
                if backlog.is_empty() {
                    match socket.send(&self.datagram) {
                        Ok(_) => {}
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                            backlog.push_back(self.datagram.clone());
                        }
                        Err(error) => {
                            let message = udp_error_message(connection.addr, &error);
                            self.finished
                                .push((i, pending, Outcome::Failed(message), now));
                            return;
                        }
                    }
                } else {
                    backlog.push_back(self.datagram.clone());
                }
                table.insert(id, pending);
                order.push_back((id, now));
            }
        }
    }

    /// Sends the queued output of every connection that has some.
    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &i in &dirty {
            self.connections[i].dirty = false;
            self.flush(i);
        }
        dirty.clear();
        self.dirty = dirty;
    }

    /// Writes as much queued output as the socket takes.
    fn flush(&mut self, i: usize) {
        let connection = &mut self.connections[i];
        if connection.dead {
            return;
        }
        let mut failure = None;
        match &mut connection.link {
            Link::Tcp {
                stream,
                out,
                out_start,
                ..
            } => {
                while *out_start < out.len() {
                    match stream.write(&out[*out_start..]) {
                        Ok(0) => {
                            failure = Some("the connection accepts no more data".to_string());
                            break;
                        }
                        Ok(written) => *out_start += written,
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(error) => {
                            failure = Some(tcp_error_message(&error));
                            break;
                        }
                    }
                }
                if *out_start == out.len() {
                    out.clear();
                    *out_start = 0;
                } else if *out_start > READ_CHUNK {
                    out.drain(..*out_start);
                    *out_start = 0;
                }
            }
            Link::Udp {
                socket, backlog, ..
            } => {
                while let Some(datagram) = backlog.front() {
                    match socket.send(datagram) {
                        Ok(_) => {
                            backlog.pop_front();
                        }
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(error) => {
                            // The request stays pending and will time out; note why.
                            let message = udp_error_message(connection.addr, &error);
                            self.stats.note(message);
                            backlog.pop_front();
                        }
                    }
                }
            }
        }
        if let Some(message) = failure {
            self.fail(i, message);
        }
    }

    /// Reads whatever has arrived on connection `i` and collects the replies it completes.
    fn read(&mut self, i: usize) {
        if self.connections[i].dead {
            return;
        }
        let failure = match self.connections[i].link {
            Link::Tcp { .. } => self.read_tcp(i),
            Link::Udp { .. } => {
                self.read_udp(i);
                None
            }
        };
        if let Some(message) = failure {
            self.fail(i, message);
        }
    }

    /// TCP: appends what arrived and parses replies against the FIFO of requests. Returns why
    /// the connection must be closed, if it must.
    fn read_tcp(&mut self, i: usize) -> Option<String> {
        let Worker {
            connections,
            read_buffer,
            workload,
            finished,
            clock,
            last_progress,
            ..
        } = self;
        let connection = &mut connections[i];
        let Link::Tcp {
            stream,
            input,
            pending,
            abandoned,
            ..
        } = &mut connection.link
        else {
            return None;
        };
        let mut failure = None;
        loop {
            match stream.read(read_buffer) {
                Ok(0) => {
                    failure = Some("the server closed the connection".to_string());
                    break;
                }
                Ok(count) => {
                    input.extend_from_slice(&read_buffer[..count]);
                    // A short read emptied the socket; with edge-triggered polling the next
                    // arrival raises a new event, so another read would only say WouldBlock.
                    if count < read_buffer.len() {
                        break;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    failure = Some(tcp_error_message(&error));
                    break;
                }
            }
        }
        let now = clock.now();
        let mut at = 0;
        while let Some(front) = pending.front() {
            match parse_reply(&input[at..], front.op, workload.keys.key(front.key)) {
                Ok(Parsed::Complete { reply, consumed }) => {
                    at += consumed;
                    *last_progress = now;
                    let Some(request) = pending.pop_front() else {
                        break;
                    };
                    if request.purpose == Purpose::Abandoned {
                        *abandoned -= 1;
                    } else {
                        finished.push((i, request, Outcome::Reply(reply), now));
                    }
                }
                Ok(Parsed::Incomplete) => break,
                Err(error) => {
                    failure = Some(format!("protocol error: {error}"));
                    break;
                }
            }
        }
        if failure.is_none() && pending.is_empty() && at < input.len() {
            failure = Some(format!(
                "unexpected bytes with no request outstanding: {:?}",
                show(&input[at..])
            ));
        }
        input.drain(..at);
        failure
    }

    /// UDP: reads every datagram waiting, matches each to its request by id, reassembles
    /// multi-datagram replies.
    fn read_udp(&mut self, i: usize) {
        let Worker {
            connections,
            read_buffer,
            workload,
            finished,
            clock,
            stats,
            last_progress,
            ..
        } = self;
        let connection = &mut connections[i];
        let addr = connection.addr;
        let Link::Udp {
            socket,
            pending,
            partial,
            ..
        } = &mut connection.link
        else {
            return;
        };
        loop {
            let count = match socket.recv(read_buffer) {
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // An ICMP error (no server on the port) or similar: the requests it concerns
                    // will time out; keep the reason for the report.
                    stats.note(udp_error_message(addr, &error));
                    if error.kind() == io::ErrorKind::ConnectionRefused {
                        continue;
                    }
                    break;
                }
            };
            let now = clock.now();
            let (header, payload) = match FrameHeader::decode(&read_buffer[..count]) {
                Ok(decoded) => decoded,
                Err(message) => {
                    stats.error(1, || format!("{addr}: {message}"));
                    continue;
                }
            };
            let Some(&request) = pending.get(&header.request_id) else {
                stats.late_replies += 1;
                continue;
            };
            let assembled;
            let message: &[u8] = if header.total == 1 {
                payload
            } else {
                let reassembly = partial
                    .entry(header.request_id)
                    .or_insert_with(|| Reassembly::new(header.total));
                match reassembly.add(header, payload) {
                    Ok(Some(whole)) => {
                        assembled = whole;
                        &assembled
                    }
                    Ok(None) => continue,
                    Err(message) => {
                        pending.remove(&header.request_id);
                        partial.remove(&header.request_id);
                        finished.push((
                            i,
                            request,
                            Outcome::Failed(format!("{addr}: {message}")),
                            now,
                        ));
                        continue;
                    }
                }
            };
            pending.remove(&header.request_id);
            partial.remove(&header.request_id);
            *last_progress = now;
            let outcome = match parse_reply(message, request.op, workload.keys.key(request.key)) {
                Ok(Parsed::Complete { reply, consumed }) if consumed == message.len() => {
                    Outcome::Reply(reply)
                }
                Ok(Parsed::Complete { .. }) => Outcome::Failed(format!(
                    "{addr}: UDP reply has bytes after the reply: {:?}",
                    show(message)
                )),
                Ok(Parsed::Incomplete) => Outcome::Failed(format!(
                    "{addr}: UDP reply is cut short: {:?}",
                    show(message)
                )),
                Err(error) => Outcome::Failed(format!("{addr}: protocol error: {error}")),
            };
            finished.push((i, request, outcome, now));
        }
    }

    /// Ends every UDP request older than the timeout.
    fn expire_udp(&mut self, now: u64) {
        let timeout = self.workload.timeout_ns;
        for (i, connection) in self.connections.iter_mut().enumerate() {
            let Link::Udp {
                pending,
                order,
                partial,
                ..
            } = &mut connection.link
            else {
                continue;
            };
            while let Some(&(id, sent)) = order.front() {
                match pending.get(&id) {
                    Some(request) if request.sent == sent => {
                        if sent + timeout > now {
                            break;
                        }
                        let request = *request;
                        pending.remove(&id);
                        partial.remove(&id);
                        self.finished.push((i, request, Outcome::TimedOut, now));
                    }
                    // Answered already (or the id was reused by a later request).
                    _ => {}
                }
                order.pop_front();
            }
        }
    }

    /// At the end of a phase: counts what is still outstanding as timed out. TCP requests stay
    /// in the FIFO, marked, so their replies are skipped if they come later.
    fn abandon_outstanding(&mut self, i: usize, now: u64) {
        let connection = &mut self.connections[i];
        match &mut connection.link {
            Link::Tcp {
                pending, abandoned, ..
            } => {
                for request in pending.iter_mut().skip(*abandoned) {
                    self.finished.push((i, *request, Outcome::Abandoned, now));
                    request.purpose = Purpose::Abandoned;
                }
                *abandoned = pending.len();
            }
            Link::Udp {
                pending,
                order,
                partial,
                ..
            } => {
                for (_, request) in pending.drain() {
                    self.finished.push((i, request, Outcome::Abandoned, now));
                }
                order.clear();
                partial.clear();
            }
        }
    }

    /// Closes connection `i` after a failure: every request on it fails, nothing more is sent.
    fn fail(&mut self, i: usize, reason: String) {
        let now = self.clock.now();
        let connection = &mut self.connections[i];
        if connection.dead {
            return;
        }
        connection.dead = true;
        let message = format!("{}: {reason}", connection.addr);
        let requests: Vec<Pending> = match &mut connection.link {
            Link::Tcp {
                stream,
                pending,
                abandoned,
                out,
                input,
                ..
            } => {
                let _ = self.poll.registry().deregister(stream);
                out.clear();
                input.clear();
                let skip = *abandoned;
                *abandoned = 0;
                pending.drain(..).skip(skip).collect()
            }
            Link::Udp {
                socket,
                pending,
                order,
                partial,
                backlog,
                ..
            } => {
                let _ = self.poll.registry().deregister(socket);
                order.clear();
                partial.clear();
                backlog.clear();
                pending.drain().map(|(_, request)| request).collect()
            }
        };
        if requests.is_empty() {
            self.stats.error(1, || message.clone());
            LiveCounters::add(&self.live.errors, 1);
        }
        for request in requests {
            self.finished
                .push((i, request, Outcome::Failed(message.clone()), now));
        }
    }

    /// Counts every finished request, and lets closed-loop and populate slots go on.
    fn account(&mut self, phase: Phase) {
        let mut finished = std::mem::take(&mut self.finished);
        for (i, request, outcome, now) in finished.drain(..) {
            match request.purpose {
                Purpose::Abandoned => {}
                Purpose::Populate { attempt } => {
                    let connection = &mut self.connections[i];
                    match outcome {
                        Outcome::Reply(Reply::Stored) => self.stats.completed += 1,
                        Outcome::Reply(reply) => {
                            self.stats.completed += 1;
                            let addr = connection.addr;
                            self.stats.error(1, || {
                                format!("{addr}: populate: set answered {}", describe(&reply))
                            });
                        }
                        Outcome::Failed(message) => self.stats.error(1, || message),
                        Outcome::TimedOut if attempt < POPULATE_RETRIES => {
                            connection
                                .populate_retry
                                .push_back((request.key, attempt + 1));
                        }
                        Outcome::TimedOut | Outcome::Abandoned => self.stats.timeouts += 1,
                    }
                    if !connection.dead && !matches!(phase, Phase::Load { .. }) {
                        self.schedule.push(now, i as u32);
                    }
                }
                Purpose::Load { measured } => {
                    self.count_load(i, &request, outcome, now, measured);
                    if let Phase::Load {
                        mode: LoopMode::Closed { think_ns, .. },
                        end,
                        ..
                    } = phase
                    {
                        if now < end && !self.connections[i].dead {
                            self.schedule.push(now + think_ns, i as u32);
                        }
                    }
                }
            }
        }
        self.finished = finished;
    }

    /// Counts one finished load request.
    fn count_load(
        &mut self,
        i: usize,
        request: &Pending,
        outcome: Outcome,
        now: u64,
        measured: bool,
    ) {
        let live = &self.live;
        match &outcome {
            Outcome::Reply(_) => {
                LiveCounters::add(&live.completed, 1);
                LiveCounters::add(&live.latency_sum_ns, now.saturating_sub(request.intended));
            }
            Outcome::Failed(_) => LiveCounters::add(&live.errors, 1),
            Outcome::TimedOut | Outcome::Abandoned => LiveCounters::add(&live.timeouts, 1),
        }
        if !measured {
            return;
        }
        let stats = &mut self.stats;
        match outcome {
            Outcome::Reply(reply) => {
                stats.completed += 1;
                stats.record_latency(request.op, now.saturating_sub(request.intended));
                match reply {
                    Reply::Hit { .. } => {
                        stats.gets += 1;
                        stats.hits += 1;
                    }
                    Reply::Miss => {
                        stats.gets += 1;
                        stats.misses += 1;
                    }
                    Reply::Stored => stats.sets += 1,
                    other => {
                        let addr = self.connections[i].addr;
                        let op = request.op.name();
                        stats.error(1, || format!("{addr}: {op} answered {}", describe(&other)));
                    }
                }
            }
            Outcome::Failed(message) => stats.error(1, || message),
            Outcome::TimedOut | Outcome::Abandoned => stats.timeouts += 1,
        }
    }
}

/// A reply as the report names it.
fn describe(reply: &Reply) -> String {
    match reply {
        Reply::Hit { bytes } => format!("a {bytes}-byte value"),
        Reply::Miss => "END (miss)".to_string(),
        Reply::Stored => "STORED".to_string(),
        Reply::NotStored(line) | Reply::Error(line) => line.clone(),
    }
}

fn tcp_error_message(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionReset => "the server reset the connection".to_string(),
        io::ErrorKind::BrokenPipe => "the server closed the connection".to_string(),
        _ => format!("TCP error: {error}"),
    }
}

fn udp_error_message(addr: SocketAddr, error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::ConnectionRefused {
        format!("{addr}: connection refused (is a server listening on that UDP port?)")
    } else {
        format!("{addr}: UDP error: {error}")
    }
}
