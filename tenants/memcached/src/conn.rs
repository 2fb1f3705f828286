//! One client connection's protocol state: splitting the byte stream into command lines and
//! data blocks, whatever pieces it arrives in, and dispatching them.
//!
//! A connection is in one of three states: reading a command line, reading the data block of a
//! storage command, or discarding ("swallowing") the data block of a storage command that was
//! refused before its data arrived. Input that does not complete the current step is buffered.
//! The buffer is bounded: a command line that reaches 2048 bytes without a newline closes the
//! connection, as in memcached, except for `get`/`gets` lines (long multi-gets are legitimate),
//! which are bounded by [`Config::max_get_line`](crate::Config::max_get_line); data blocks are
//! bounded by the item size limit, since larger ones are refused and swallowed unbuffered.

use alloc::vec::Vec;

use crate::meta;
use crate::store::Store;
use crate::text;

/// What the server should do with the connection after [`Connection::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the output and keep reading.
    Continue,
    /// Send the output, then close the connection (after `quit`, or a line too long to be a
    /// command). Further input is ignored.
    Close,
}

/// Lines longer than this without a newline close the connection (memcached's limit).
pub const MAX_COMMAND_LINE: usize = 2048;

/// How many leading spaces memcached tolerates before `get ` in an over-long line.
const MAX_LEADING_SPACES: usize = 100;

/// The state of one TCP client connection (or of one UDP request).
#[derive(Debug, Default)]
pub struct Connection {
    /// Received bytes not yet consumed.
    buffer: Vec<u8>,
    /// How many bytes of an incomplete command line at the start of `buffer` are known to hold
    /// no newline, so a line trickling in byte by byte is scanned once, not once per byte.
    scanned: usize,
    state: State,
}

/// What the connection is reading.
#[derive(Debug, Default)]
enum State {
    /// A command line.
    #[default]
    Command,
    /// The data block of a storage command: `length` bytes (value and `\r\n`).
    Data { length: usize, pending: Pending },
    /// This many more bytes of a refused data block to discard.
    Swallow(usize),
    /// Closed: input is ignored.
    Closed,
}

/// A storage command waiting for its data block.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A text protocol storage command.
    Text(text::PendingStore),
    /// A meta set.
    Meta(meta::PendingSet),
}

/// What a command line asks the connection to do next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Read the next command.
    Command,
    /// Read a data block of `length` bytes for `pending`.
    Data { length: usize, pending: Pending },
    /// Discard `length` bytes of data.
    Swallow(usize),
    /// Close the connection.
    Close,
}

/// What command handlers work with.
pub(crate) struct Context<'a> {
    pub store: &'a mut Store,
    pub now: u32,
    pub out: &'a mut Vec<u8>,
}

impl Connection {
    /// A connection that has received nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a command is partly received (or a data block is being read or discarded).
    pub fn is_mid_request(&self) -> bool {
        !self.buffer.is_empty() || matches!(self.state, State::Data { .. } | State::Swallow(_))
    }

    /// Bytes buffered and not yet processed.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Processes `input` (any piece of the client's byte stream) against `store` at unix time
    /// `now`, appending every reply to `out`. Complete commands are executed in order; an
    /// incomplete command line or data block is kept for the next call.
    pub fn feed(&mut self, input: &[u8], store: &mut Store, now: u32, out: &mut Vec<u8>) -> Action {
        if matches!(self.state, State::Closed) {
            return Action::Close;
        }
        let out_start = out.len();
        store.global_stats_mut().bytes_read += input.len() as u64;
        // Discard swallowed bytes before buffering anything, so refused values never pile up.
        let mut input = input;
        if let State::Swallow(remaining) = &mut self.state {
            let skip = (*remaining).min(input.len());
            *remaining -= skip;
            input = &input[skip..];
            if *remaining == 0 {
                self.state = State::Command;
            }
        }
        self.buffer.extend_from_slice(input);
        let action = self.process(store, now, out);
        store.global_stats_mut().bytes_written += (out.len() - out_start) as u64;
        action
    }

    /// Executes everything complete in the buffer.
    fn process(&mut self, store: &mut Store, now: u32, out: &mut Vec<u8>) -> Action {
        let mut position = 0;
        let action = loop {
            let available = self.buffer.len() - position;
            match &mut self.state {
                State::Closed => break Action::Close,
                State::Swallow(remaining) => {
                    let skip = (*remaining).min(available);
                    *remaining -= skip;
                    position += skip;
                    if *remaining > 0 {
                        break Action::Continue;
                    }
                    self.state = State::Command;
                }
                State::Data { length, .. } => {
                    if available < *length {
                        break Action::Continue;
                    }
                    let length = *length;
                    let State::Data { pending, .. } =
                        core::mem::replace(&mut self.state, State::Command)
                    else {
                        unreachable!("matched State::Data above");
                    };
                    let data = &self.buffer[position..position + length];
                    position += length;
                    let mut context = Context { store, now, out };
                    match pending {
                        Pending::Text(pending) => text::complete_store(pending, data, &mut context),
                        Pending::Meta(pending) => meta::complete_set(pending, data, &mut context),
                    }
                }
                State::Command => {
                    let rest = &self.buffer[position..];
                    let skip = core::mem::take(&mut self.scanned).min(rest.len());
                    let Some(newline) = rest[skip..]
                        .iter()
                        .position(|&byte| byte == b'\n')
                        .map(|at| at + skip)
                    else {
                        if line_too_long(rest, store.config().max_get_line) {
                            self.state = State::Closed;
                            break Action::Close;
                        }
                        self.scanned = rest.len();
                        break Action::Continue;
                    };
                    let mut line = &rest[..newline];
                    // memcached strips a `\r` before the newline (only when the line has other
                    // bytes too).
                    if line.len() > 1 && line.last() == Some(&b'\r') {
                        line = &line[..line.len() - 1];
                    }
                    position += newline + 1;
                    let mut context = Context { store, now, out };
                    match text::execute(line, &mut context) {
                        Next::Command => {}
                        Next::Data { length, pending } => {
                            self.state = State::Data { length, pending }
                        }
                        Next::Swallow(length) => self.state = State::Swallow(length),
                        Next::Close => {
                            self.state = State::Closed;
                            break Action::Close;
                        }
                    }
                }
            }
        };
        if matches!(self.state, State::Closed) {
            self.buffer = Vec::new();
        } else {
            self.buffer.drain(..position);
            // Give back memory after a large value passed through.
            if self.buffer.capacity() > 64 * 1024 && self.buffer.len() < 16 * 1024 {
                self.buffer.shrink_to(16 * 1024);
            }
        }
        action
    }
}

/// Whether an incomplete command line has grown too long to keep buffering: memcached closes
/// the connection once 2048 bytes have arrived without a newline, unless the line is a `get` or
/// `gets` (after at most 100 leading spaces), which we bound by `max_get_line`.
fn line_too_long(partial: &[u8], max_get_line: usize) -> bool {
    if partial.len() <= MAX_COMMAND_LINE {
        return false;
    }
    let spaces = partial.iter().take_while(|&&byte| byte == b' ').count();
    let command = &partial[spaces..];
    let is_get = command.starts_with(b"get ") || command.starts_with(b"gets ");
    spaces > MAX_LEADING_SPACES || !is_get || partial.len() > max_get_line
}
