//! The classic text protocol: parsing a command line and carrying out `get`, `set`, `delete`,
//! `incr`, `stats` and the rest, with memcached 1.6's replies and error strings.
//!
//! Argument counts, number formats, `noreply` and error precedence follow memcached's
//! `process_command_ascii` and its helpers, because clients see all of them: for example a
//! storage command with a malformed header is answered with an error and its data line is then
//! read as a (usually unknown) command, exactly as memcached does.

use alloc::vec::Vec;

use crate::conn::{Context, Next, Pending};
use crate::meta;
use crate::parse::{self, is, push_u64, tokenize};
use crate::slabs;
use crate::store::{ArithError, StoreError, StoreMode, StoreOptions, StoreStatus};

/// The longest key memcached accepts.
pub const KEY_MAX_LENGTH: usize = 250;

/// The reply to a malformed command line.
pub(crate) const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format";

/// A text storage command waiting for its data block.
#[derive(Debug)]
pub(crate) struct PendingStore {
    key: Vec<u8>,
    flags: u32,
    exptime: i32,
    mode: StoreMode,
    compare_cas: u64,
    noreply: bool,
}

/// Appends `line` and `\r\n` unless the command asked for no reply.
pub(crate) fn reply(out: &mut Vec<u8>, noreply: bool, line: &[u8]) {
    if !noreply {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}

/// Whether the key is acceptable: at most 250 bytes and, with `strict_keys`, free of control
/// characters.
pub(crate) fn key_ok(key: &[u8], strict_keys: bool) -> bool {
    key.len() <= KEY_MAX_LENGTH
        && !(strict_keys && key.iter().any(|&byte| byte < 0x20 || byte == 0x7f))
}

/// Whether the last argument is `noreply` (memcached's `set_noreply_maybe`).
fn wants_noreply(tokens: &[&[u8]]) -> bool {
    tokens.last().is_some_and(|token| is(token, "noreply"))
}

/// Executes one command line (without its line ending) and says what to read next.
pub(crate) fn execute(line: &[u8], context: &mut Context<'_>) -> Next {
    // memcached works on NUL-terminated strings: anything after a NUL byte is not seen.
    let line = line
        .iter()
        .position(|&byte| byte == 0)
        .map_or(line, |end| &line[..end]);
    let tokens = tokenize(line);
    // memcached counts a final empty token; keep its arithmetic to keep its argument limits.
    let count = tokens.len() + 1;
    let Some(&command) = tokens.first() else {
        reply(context.out, false, b"ERROR");
        return Next::Command;
    };
    if command.len() < 2 {
        reply(context.out, false, b"ERROR");
        return Next::Command;
    }
    if command[0] == b'm' && command.len() == 2 {
        return meta::execute(command[1], &tokens, context);
    }
    // memcached answers a wrong number of arguments with a bare ERROR.
    let arity_ok = |allowed: bool, context: &mut Context<'_>| {
        if !allowed {
            reply(context.out, false, b"ERROR");
        }
        allowed
    };
    match command {
        b"get" | b"gets" | b"gat" | b"gats" => {
            if arity_ok(count >= 3, context) {
                let touch = command.starts_with(b"gat");
                let with_cas = command.ends_with(b"s");
                retrieve(&tokens, touch, with_cas, context);
            }
            Next::Command
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" => {
            if !arity_ok(count == 6 || count == 7, context) {
                return Next::Command;
            }
            let mode = match command {
                b"set" => StoreMode::Set,
                b"add" => StoreMode::Add,
                b"replace" => StoreMode::Replace,
                b"append" => StoreMode::Append,
                _ => StoreMode::Prepend,
            };
            update(&tokens, mode, context)
        }
        b"cas" => {
            if !arity_ok(count == 7 || count == 8, context) {
                return Next::Command;
            }
            update(&tokens, StoreMode::Cas, context)
        }
        b"incr" | b"decr" => {
            if arity_ok(count == 4 || count == 5, context) {
                arithmetic(&tokens, command == b"incr", context);
            }
            Next::Command
        }
        b"delete" => {
            if arity_ok((3..=5).contains(&count), context) {
                delete(&tokens, context);
            }
            Next::Command
        }
        b"touch" => {
            if arity_ok(count == 4 || count == 5, context) {
                touch(&tokens, context);
            }
            Next::Command
        }
        b"stats" => {
            stats(&tokens, context);
            Next::Command
        }
        b"flush_all" => {
            if arity_ok((2..=4).contains(&count), context) {
                flush_all(&tokens, context);
            }
            Next::Command
        }
        b"version" => {
            context.out.extend_from_slice(b"VERSION ");
            context
                .out
                .extend_from_slice(context.store.config().version.as_bytes());
            context.out.extend_from_slice(b"\r\n");
            Next::Command
        }
        b"verbosity" => {
            if arity_ok((3..=4).contains(&count), context) {
                let noreply = wants_noreply(&tokens);
                match parse::parse_u32_truncating(tokens[1]) {
                    Some(level) => {
                        context.store.set_verbosity(level);
                        reply(context.out, noreply, b"OK");
                    }
                    None => reply(context.out, noreply, BAD_FORMAT),
                }
            }
            Next::Command
        }
        b"quit" => Next::Close,
        _ => {
            // memcached dispatches on the first letter; lines starting with other letters fall
            // through to a check that drops HTTP requests without a reply.
            let dispatched_letters = b"gsarpcidtm";
            let looks_like_http = tokens
                .last()
                .is_some_and(|token| token.starts_with(b"HTTP/"));
            if !dispatched_letters.contains(&command[0]) && looks_like_http {
                return Next::Close;
            }
            reply(context.out, false, b"ERROR");
            Next::Command
        }
    }
}

/// `get`/`gets`/`gat`/`gats`: a `VALUE` block for each key found, then `END`.
fn retrieve(tokens: &[&[u8]], touch: bool, with_cas: bool, context: &mut Context<'_>) {
    let mut keys = &tokens[1..];
    let mut exptime = 0;
    if touch {
        match parse::parse_i32(tokens[1]) {
            Some(value) => exptime = value,
            None => {
                reply(context.out, false, b"CLIENT_ERROR invalid exptime argument");
                return;
            }
        }
        keys = &tokens[2..];
    }
    let start = context.out.len();
    let strict = context.store.config().strict_keys;
    for &key in keys {
        if !key_ok(key, strict) {
            // memcached drops what it had prepared for this command and reports the error.
            context.out.truncate(start);
            reply(context.out, false, BAD_FORMAT);
            return;
        }
        let item = if touch {
            context.store.get_and_touch(key, exptime, context.now)
        } else {
            context.store.get(key, context.now)
        };
        if let Some(item) = item {
            let out = &mut *context.out;
            out.extend_from_slice(b"VALUE ");
            out.extend_from_slice(item.key());
            out.push(b' ');
            push_u64(out, u64::from(item.flags()));
            out.push(b' ');
            push_u64(out, item.value().len() as u64);
            if with_cas {
                out.push(b' ');
                push_u64(out, item.cas());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(item.value());
            out.extend_from_slice(b"\r\n");
        }
    }
    context.out.extend_from_slice(b"END\r\n");
}

/// The header of a storage command: checks it and starts reading (or discarding) the data.
fn update(tokens: &[&[u8]], mode: StoreMode, context: &mut Context<'_>) -> Next {
    let noreply = wants_noreply(tokens);
    let key = tokens[1];
    if !key_ok(key, context.store.config().strict_keys) {
        reply(context.out, noreply, BAD_FORMAT);
        return Next::Command;
    }
    let header = (|| {
        let flags = parse::parse_u32_truncating(tokens[2])?;
        let exptime = parse::parse_i32(tokens[3])?;
        let length = parse::parse_i32(tokens[4])?;
        let compare_cas = if mode == StoreMode::Cas {
            parse::parse_u64(tokens[5])?
        } else {
            0
        };
        Some((flags, exptime, length, compare_cas))
    })();
    let Some((flags, exptime, length, compare_cas)) = header else {
        reply(context.out, noreply, BAD_FORMAT);
        return Next::Command;
    };
    let Some(length) = usize::try_from(length)
        .ok()
        .filter(|&length| length <= i32::MAX as usize - 2)
    else {
        reply(context.out, noreply, BAD_FORMAT);
        return Next::Command;
    };
    if context.store.too_large(key.len(), length, flags) {
        context.store.count_refused(StoreError::TooLarge);
        reply(
            context.out,
            noreply,
            b"SERVER_ERROR object too large for cache",
        );
        // memcached removes the old item so that a failed `set` leaves no stale value.
        if mode == StoreMode::Set {
            context.store.delete_quietly(key, context.now);
        }
        return Next::Swallow(length + 2);
    }
    let pending = PendingStore {
        key: key.to_vec(),
        flags,
        exptime,
        mode,
        compare_cas,
        noreply,
    };
    Next::Data {
        length: length + 2,
        pending: Pending::Text(pending),
    }
}

/// The data block of a storage command arrived: store it and reply.
pub(crate) fn complete_store(pending: PendingStore, data: &[u8], context: &mut Context<'_>) {
    let value_len = data.len().saturating_sub(2);
    context.store.count_set(slabs::item_total_size(
        pending.key.len(),
        value_len,
        pending.flags,
    ));
    if !data.ends_with(b"\r\n") {
        reply(context.out, pending.noreply, b"CLIENT_ERROR bad data chunk");
        return;
    }
    let options = StoreOptions {
        compare_cas: pending.compare_cas,
        ..StoreOptions::new(pending.mode)
    };
    let result = context.store.store(
        &pending.key,
        &data[..value_len],
        pending.flags,
        pending.exptime,
        options,
        context.now,
    );
    let line: &[u8] = match result {
        Ok((StoreStatus::Stored, _)) => b"STORED",
        Ok((StoreStatus::NotStored, _)) => b"NOT_STORED",
        Ok((StoreStatus::Exists, _)) => b"EXISTS",
        Ok((StoreStatus::NotFound, _)) => b"NOT_FOUND",
        Err(StoreError::TooLarge) => b"SERVER_ERROR object too large for cache",
        Err(StoreError::OutOfMemory) => b"SERVER_ERROR out of memory storing object",
    };
    reply(context.out, pending.noreply, line);
}

/// `incr`/`decr <key> <delta> [noreply]`.
fn arithmetic(tokens: &[&[u8]], increment: bool, context: &mut Context<'_>) {
    let noreply = wants_noreply(tokens);
    let key = tokens[1];
    if !key_ok(key, context.store.config().strict_keys) {
        reply(context.out, noreply, BAD_FORMAT);
        return;
    }
    let Some(delta) = parse::parse_u64(tokens[2]) else {
        reply(
            context.out,
            noreply,
            b"CLIENT_ERROR invalid numeric delta argument",
        );
        return;
    };
    match context.store.incr_decr(key, increment, delta, context.now) {
        Ok(value) => {
            if !noreply {
                push_u64(context.out, value);
                context.out.extend_from_slice(b"\r\n");
            }
        }
        Err(ArithError::NotFound) => reply(context.out, noreply, b"NOT_FOUND"),
        Err(ArithError::NonNumeric | ArithError::CasMismatch) => reply(
            context.out,
            noreply,
            b"CLIENT_ERROR cannot increment or decrement non-numeric value",
        ),
        Err(ArithError::OutOfMemory) => reply(context.out, noreply, b"SERVER_ERROR out of memory"),
    }
}

/// `delete <key> [0] [noreply]` (a hold time other than 0 is refused, as in memcached 1.4+).
fn delete(tokens: &[&[u8]], context: &mut Context<'_>) {
    let count = tokens.len() + 1;
    let mut noreply = false;
    if count > 3 {
        let hold_is_zero = is(tokens[2], "0");
        noreply = wants_noreply(tokens);
        let valid =
            (count == 4 && (hold_is_zero || noreply)) || (count == 5 && hold_is_zero && noreply);
        if !valid {
            reply(
                context.out,
                noreply,
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
            );
            return;
        }
    }
    let key = tokens[1];
    if !key_ok(key, context.store.config().strict_keys) {
        reply(context.out, noreply, BAD_FORMAT);
        return;
    }
    let found = context.store.delete(key, context.now);
    reply(
        context.out,
        noreply,
        if found { b"DELETED" } else { b"NOT_FOUND" },
    );
}

/// `touch <key> <exptime> [noreply]`.
fn touch(tokens: &[&[u8]], context: &mut Context<'_>) {
    let noreply = wants_noreply(tokens);
    let key = tokens[1];
    if !key_ok(key, context.store.config().strict_keys) {
        reply(context.out, noreply, BAD_FORMAT);
        return;
    }
    let Some(exptime) = parse::parse_i32(tokens[2]) else {
        reply(
            context.out,
            noreply,
            b"CLIENT_ERROR invalid exptime argument",
        );
        return;
    };
    let found = context.store.touch(key, exptime, context.now);
    reply(
        context.out,
        noreply,
        if found { b"TOUCHED" } else { b"NOT_FOUND" },
    );
}

/// `flush_all [delay] [noreply]`.
fn flush_all(tokens: &[&[u8]], context: &mut Context<'_>) {
    let noreply = wants_noreply(tokens);
    let count = tokens.len() + 1;
    let mut delay = 0;
    if count != if noreply { 3 } else { 2 } {
        match parse::parse_i32(tokens[1]) {
            Some(value) => delay = value,
            None => {
                // memcached counts the command before checking its argument.
                context.store.global_stats_mut().cmd_flush += 1;
                reply(
                    context.out,
                    noreply,
                    b"CLIENT_ERROR invalid exptime argument",
                );
                return;
            }
        }
    }
    context.store.flush_all(delay, context.now);
    reply(context.out, noreply, b"OK");
}

/// `stats [settings|items|slabs|sizes|reset]`.
fn stats(tokens: &[&[u8]], context: &mut Context<'_>) {
    let out = &mut *context.out;
    let store = &mut *context.store;
    match tokens.get(1).copied() {
        None => store.write_stats(out, context.now),
        Some(b"reset") => {
            store.reset_stats();
            out.extend_from_slice(b"RESET\r\n");
            return;
        }
        Some(b"settings") => store.write_settings(out),
        Some(b"items") => store.write_items(out, context.now),
        Some(b"slabs") => store.write_slabs(out),
        Some(b"sizes") => out.extend_from_slice(b"STAT sizes_status disabled\r\n"),
        Some(_) => {
            out.extend_from_slice(b"ERROR\r\n");
            return;
        }
    }
    out.extend_from_slice(b"END\r\n");
}
