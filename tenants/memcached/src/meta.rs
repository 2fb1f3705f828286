//! The meta protocol: `mg` (get), `ms` (set), `md` (delete), `ma` (arithmetic), `me` (debug)
//! and `mn` (no-op), with their flags, as memcached 1.6.18 implements them.
//!
//! A meta command is `<cm> <key> [<datalen>] <flag>*`, each flag one character optionally
//! followed by a token (`T30`, `Oopaque`). Replies are a two-letter code (`HD`, `VA`, `EN`,
//! `NF`, `NS`, `EX`, `MN`, `ME`) followed by the requested return flags, in request order.
//! Notable behaviour kept from memcached: flags are checked for duplicates and validity before
//! anything runs; `q` hides only the nominal reply (`HD` of `ms`/`md`/`ma`, `EN` of `mg`); the
//! `k` flag echoes a base64 key (with `b`) when the key was given in base64.

use alloc::vec::Vec;

use crate::conn::{Context, Next, Pending};
use crate::parse::{self, base64_decode, base64_encode, push_i64, push_u64};
use crate::slabs;
use crate::store::{
    absolute_exptime, ArithError, StoreError, StoreMode, StoreOptions, StoreStatus,
};
use crate::text::{key_ok, reply, BAD_FORMAT};

/// memcached's `MFLAG_MAX_OPT_LENGTH`: commands with more tokens than this are refused.
const MAX_TOKENS: usize = 20;

/// The longest opaque (`O`) token, including the `O`.
const MAX_OPAQUE_LENGTH: usize = 32;

/// Flags of a meta command, after memcached's `_meta_flag_preparse`.
#[derive(Debug, Default)]
struct MetaFlags {
    /// The key, base64-decoded when `b` was given.
    key: Vec<u8>,
    key_binary: bool,
    /// `u`: do not bump the item in the LRU.
    no_update: bool,
    /// `v`: return the value.
    value: bool,
    /// `I`: invalidate (mark stale).
    set_stale: bool,
    /// `q`: hide nominal replies.
    no_reply: bool,
    /// `C`: compare this CAS value.
    compare_cas: Option<u64>,
    /// `T`: new TTL (client exptime).
    ttl: Option<i32>,
    /// `N`: vivify on miss with this TTL.
    vivify: Option<i32>,
    /// `R`: win the recache token if the remaining TTL is below this.
    recache: Option<i32>,
    /// `F`: client flags.
    client_flags: u32,
    /// `M`: mode character.
    mode: Option<u8>,
    /// `D`: arithmetic delta (1 if absent).
    delta: u64,
    /// `J`: initial value for arithmetic vivify.
    initial: u64,
}

/// Why flags could not be used: memcached's error string, or `None` for "the command's
/// default error" (memcached leaves its error string unchanged for a bad `F` token).
type FlagError = Option<&'static str>;

/// Parses the flag tokens `tokens[start..]` of a meta command on `key`, checking them the way
/// memcached does: a duplicate or unknown flag stops at once; bad tokens are all examined and
/// the last problem is reported.
fn parse_flags(tokens: &[&[u8]], start: usize) -> Result<MetaFlags, FlagError> {
    let mut flags = MetaFlags {
        key: tokens[1].to_vec(),
        delta: 1,
        ..MetaFlags::default()
    };
    let mut seen = [false; 128];
    let mut failed = false;
    let mut error: FlagError = None;
    for token in &tokens[start..] {
        let flag = token[0];
        if flag >= 127 || seen[usize::from(flag)] {
            return Err(Some("CLIENT_ERROR duplicate flag"));
        }
        seen[usize::from(flag)] = true;
        let argument = &token[1..];
        let mut bad = |message: FlagError| {
            failed = true;
            if message.is_some() {
                error = message;
            }
        };
        const BAD_TOKEN: FlagError = Some("CLIENT_ERROR bad token in command line format");
        match flag {
            b'b' => match base64_decode(tokens[1]) {
                Some(decoded) => {
                    flags.key = decoded;
                    flags.key_binary = true;
                }
                None => bad(Some("CLIENT_ERROR error decoding key")),
            },
            b'N' => match parse::parse_i32(argument) {
                Some(ttl) => flags.vivify = Some(ttl),
                None => bad(BAD_TOKEN),
            },
            b'T' => match parse::parse_i32(argument) {
                Some(ttl) => flags.ttl = Some(ttl),
                None => bad(BAD_TOKEN),
            },
            b'R' => match parse::parse_i32(argument) {
                Some(ttl) => flags.recache = Some(ttl),
                None => bad(BAD_TOKEN),
            },
            b'F' => match parse::parse_u32_truncating(argument) {
                Some(value) => flags.client_flags = value,
                None => bad(None),
            },
            b'C' => match parse::parse_u64(argument) {
                Some(cas) => flags.compare_cas = Some(cas),
                None => bad(BAD_TOKEN),
            },
            b'M' => {
                if token.len() == 2 {
                    flags.mode = Some(token[1]);
                } else {
                    bad(Some("CLIENT_ERROR incorrect length for M token"));
                }
            }
            b'J' => match parse::parse_u64(argument) {
                Some(value) => flags.initial = value,
                None => bad(Some("CLIENT_ERROR invalid numeric initial value")),
            },
            b'D' => match parse::parse_u64(argument) {
                Some(value) => flags.delta = value,
                None => bad(Some("CLIENT_ERROR invalid numeric delta value")),
            },
            b'v' => flags.value = true,
            b'u' => flags.no_update = true,
            b'q' => flags.no_reply = true,
            b'I' => flags.set_stale = true,
            b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'l' | b'h' => {}
            _ => return Err(Some("CLIENT_ERROR invalid flag")),
        }
    }
    if failed {
        Err(error)
    } else {
        Ok(flags)
    }
}

/// Appends ` k<key>`, base64-encoded followed by ` b` when the key is binary.
fn push_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64_encode(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// Appends ` <opaque token>`, or fails when it is too long.
fn push_opaque(out: &mut Vec<u8>, token: &[u8]) -> Result<(), &'static str> {
    if token.len() > MAX_OPAQUE_LENGTH {
        return Err("CLIENT_ERROR opaque token too long");
    }
    out.push(b' ');
    out.extend_from_slice(token);
    Ok(())
}

/// Appends an error line (meta errors are always sent, even with `q`).
fn error(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The common checks before flags are parsed: argument count, key length, number of flags.
/// `too_many` is the command's message for too many flags.
fn check_shape(tokens: &[&[u8]], too_many: &str, context: &mut Context<'_>) -> bool {
    if tokens.len() < 2 {
        reply(context.out, false, b"ERROR");
        return false;
    }
    if !key_ok(tokens[1], context.store.config().strict_keys) {
        error(context.out, "CLIENT_ERROR bad command line format");
        return false;
    }
    if tokens.len() + 1 > MAX_TOKENS {
        error(context.out, too_many);
        return false;
    }
    true
}

/// Executes the meta command `m<kind>` whose tokens (command first) are `tokens`.
pub(crate) fn execute(kind: u8, tokens: &[&[u8]], context: &mut Context<'_>) -> Next {
    match kind {
        b'g' => get(tokens, context),
        b's' => return set(tokens, context),
        b'd' => delete(tokens, context),
        b'a' => arithmetic(tokens, context),
        b'e' => debug(tokens, context),
        b'n' => context.out.extend_from_slice(b"MN\r\n"),
        _ => reply(context.out, false, b"ERROR"),
    }
    Next::Command
}

/// `mg <key> <flags>*`.
fn get(tokens: &[&[u8]], context: &mut Context<'_>) {
    if !check_shape(tokens, "CLIENT_ERROR options flags are too long", context) {
        return;
    }
    let flags = match parse_flags(tokens, 2) {
        Ok(flags) => flags,
        Err(message) => {
            return error(
                context.out,
                message.unwrap_or("CLIENT_ERROR bad command line format"),
            )
        }
    };
    let now = context.now;
    let store = &mut *context.store;
    let mut slot = store.find(&flags.key, now);
    let mut created = false;
    if slot.is_none() && flags.vivify.is_some() {
        if let Ok(new_slot) = store.add_slot(&flags.key, b"", flags.key_binary, now) {
            slot = Some(new_slot);
            created = true;
        }
    }
    let start = context.out.len();
    let out = &mut *context.out;
    let Some(slot) = slot else {
        store.count_get(None, false);
        out.extend_from_slice(b"EN");
        for token in &tokens[2..] {
            match token[0] {
                b'O' => {
                    if let Err(message) = push_opaque(out, token) {
                        out.truncate(start);
                        return error(out, message);
                    }
                }
                b'k' => push_key(out, &flags.key, flags.key_binary),
                _ => {}
            }
        }
        out.extend_from_slice(b"\r\n");
        if flags.no_reply {
            out.truncate(start);
        }
        return;
    };
    let value_len = store.item(slot).value().len() as u64;
    if flags.value {
        out.extend_from_slice(b"VA ");
        push_u64(out, value_len);
    } else {
        out.extend_from_slice(b"HD");
    }
    let mut won = false;
    let mut touched = false;
    for token in &tokens[2..] {
        match token[0] {
            b'T' => {
                touched = true;
                store.set_exptime(slot, flags.ttl.unwrap_or(0), now);
            }
            b'N' if created => {
                store.set_exptime(slot, flags.vivify.unwrap_or(0), now);
                won = true;
            }
            b'R' => {
                let item = store.item(slot);
                let recache_before = absolute_exptime(flags.recache.unwrap_or(0), now);
                if !item.token_sent()
                    && !created
                    && item.exptime() != 0
                    && item.exptime() < recache_before
                {
                    won = true;
                }
            }
            b's' => {
                out.extend_from_slice(b" s");
                push_u64(out, value_len);
            }
            b't' => {
                out.extend_from_slice(b" t");
                push_i64(out, store.item(slot).ttl(now));
            }
            b'c' => {
                out.extend_from_slice(b" c");
                push_u64(out, store.item(slot).cas());
            }
            b'f' => {
                out.extend_from_slice(b" f");
                push_u64(out, u64::from(store.item(slot).flags()));
            }
            b'l' => {
                out.extend_from_slice(b" l");
                push_i64(out, store.item(slot).idle(now));
            }
            b'h' => {
                out.extend_from_slice(if store.item(slot).fetched() {
                    b" h1"
                } else {
                    b" h0"
                });
            }
            b'O' => {
                if let Err(message) = push_opaque(out, token) {
                    out.truncate(start);
                    return error(out, message);
                }
            }
            b'k' => {
                let item = store.item(slot);
                push_key(out, item.key(), item.key_binary());
            }
            _ => {}
        }
    }
    let item = store.item(slot);
    if item.token_sent() {
        out.extend_from_slice(b" Z");
    }
    if item.stale() {
        out.extend_from_slice(b" X");
        // A stale item hands the recache token to the first client that sees it.
        if !item.token_sent() {
            won = true;
        }
    }
    if won {
        out.extend_from_slice(b" W");
    }
    out.extend_from_slice(b"\r\n");
    if flags.value {
        out.extend_from_slice(item.value());
        out.extend_from_slice(b"\r\n");
    }
    if won {
        store.mark_token_sent(slot);
    }
    store.count_get(Some(slot), touched);
    if !flags.no_update {
        store.bump(slot, now);
    }
}

/// A meta set waiting for its data block.
#[derive(Debug)]
pub(crate) struct PendingSet {
    key: Vec<u8>,
    key_binary: bool,
    client_flags: u32,
    exptime: i32,
    options: StoreOptions,
    no_reply: bool,
    /// The return flags asked for, in order: `O` tokens, `k`, `c`.
    returns: Vec<Vec<u8>>,
}

/// `ms <key> <datalen> <flags>*`: checks the command and starts reading (or discarding) the data.
fn set(tokens: &[&[u8]], context: &mut Context<'_>) -> Next {
    if tokens.len() < 2 {
        reply(context.out, false, b"ERROR");
        return Next::Command;
    }
    if !key_ok(tokens[1], context.store.config().strict_keys) || tokens.len() < 3 {
        error(context.out, "CLIENT_ERROR bad command line format");
        return Next::Command;
    }
    if tokens.len() + 1 > MAX_TOKENS {
        error(context.out, "CLIENT_ERROR options flags too long");
        return Next::Command;
    }
    let Some(length) = parse::parse_i32(tokens[2])
        .and_then(|length| usize::try_from(length).ok())
        .filter(|&length| length <= i32::MAX as usize - 2)
    else {
        error(context.out, "CLIENT_ERROR bad command line format");
        return Next::Command;
    };
    // From here on, errors discard the data block that follows.
    let swallow = |context: &mut Context<'_>, message: &str| {
        error(context.out, message);
        Next::Swallow(length + 2)
    };
    let flags = match parse_flags(tokens, 3) {
        Ok(flags) => flags,
        Err(message) => {
            return swallow(
                context,
                message.unwrap_or("CLIENT_ERROR bad command line format"),
            )
        }
    };
    let mut returns = Vec::new();
    let mut opaque_error = None;
    for token in &tokens[3..] {
        match token[0] {
            b'O' if token.len() > MAX_OPAQUE_LENGTH => {
                opaque_error = Some("CLIENT_ERROR opaque token too long")
            }
            b'O' | b'k' | b'c' => returns.push(token.to_vec()),
            _ => {}
        }
    }
    let mut mode = match flags.mode {
        None | Some(b'S') => StoreMode::Set,
        Some(b'E') => StoreMode::Add,
        Some(b'A') => StoreMode::Append,
        Some(b'P') => StoreMode::Prepend,
        Some(b'R') => StoreMode::Replace,
        Some(_) => return swallow(context, "CLIENT_ERROR invalid mode for ms M token"),
    };
    // A CAS value turns set and replace into a CAS store; add ignores it, append and prepend
    // check it.
    if flags.compare_cas.is_some() && matches!(mode, StoreMode::Set | StoreMode::Replace) {
        mode = StoreMode::Cas;
    }
    if let Some(message) = opaque_error {
        return swallow(context, message);
    }
    if context
        .store
        .too_large(flags.key.len(), length, flags.client_flags)
    {
        context.store.count_refused(StoreError::TooLarge);
        // memcached drops the old item whatever the mode, so no stale value survives.
        context.store.delete_quietly(&flags.key, context.now);
        return swallow(context, "SERVER_ERROR object too large for cache");
    }
    let options = StoreOptions {
        mode,
        compare_cas: flags.compare_cas.unwrap_or(0),
        invalidate: flags.set_stale && mode == StoreMode::Cas,
        key_binary: flags.key_binary,
    };
    let pending = PendingSet {
        key: flags.key,
        key_binary: flags.key_binary,
        client_flags: flags.client_flags,
        exptime: flags.ttl.unwrap_or(0),
        options,
        no_reply: flags.no_reply,
        returns,
    };
    Next::Data {
        length: length + 2,
        pending: Pending::Meta(pending),
    }
}

/// The data block of a meta set arrived: store it and reply.
pub(crate) fn complete_set(pending: PendingSet, data: &[u8], context: &mut Context<'_>) {
    let value_len = data.len().saturating_sub(2);
    context.store.count_set(slabs::item_total_size(
        pending.key.len(),
        value_len,
        pending.client_flags,
    ));
    if !data.ends_with(b"\r\n") {
        return error(context.out, "CLIENT_ERROR bad data chunk");
    }
    let result = context.store.store(
        &pending.key,
        &data[..value_len],
        pending.client_flags,
        pending.exptime,
        pending.options,
        context.now,
    );
    let (code, cas): (&[u8], u64) = match result {
        Ok((StoreStatus::Stored, cas)) => (b"HD", cas),
        Ok((StoreStatus::NotStored, _)) => (b"NS", 0),
        Ok((StoreStatus::Exists, _)) => (b"EX", 0),
        Ok((StoreStatus::NotFound, _)) => (b"NF", 0),
        Err(StoreError::TooLarge) => {
            return error(context.out, "SERVER_ERROR object too large for cache")
        }
        Err(StoreError::OutOfMemory) => {
            return error(context.out, "SERVER_ERROR out of memory storing object")
        }
    };
    if code == b"HD" && pending.no_reply {
        return;
    }
    let out = &mut *context.out;
    out.extend_from_slice(code);
    for token in &pending.returns {
        match token[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(token);
            }
            b'k' => push_key(out, &pending.key, pending.key_binary),
            _ => {
                out.extend_from_slice(b" c");
                push_u64(out, cas);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the `O` and `k` return flags of a reply without an item; fails on a long opaque.
fn push_key_and_opaque(
    out: &mut Vec<u8>,
    tokens: &[&[u8]],
    flags: &MetaFlags,
) -> Result<(), &'static str> {
    for token in &tokens[2..] {
        match token[0] {
            b'O' => push_opaque(out, token)?,
            b'k' => push_key(out, &flags.key, flags.key_binary),
            _ => {}
        }
    }
    Ok(())
}

/// `md <key> <flags>*`.
fn delete(tokens: &[&[u8]], context: &mut Context<'_>) {
    if !check_shape(tokens, "CLIENT_ERROR options flags too long", context) {
        return;
    }
    let Ok(flags) = parse_flags(tokens, 2) else {
        return error(context.out, "CLIENT_ERROR invalid or duplicate flag");
    };
    let mut returned = Vec::new();
    if let Err(message) = push_key_and_opaque(&mut returned, tokens, &flags) {
        return error(context.out, message);
    }
    let now = context.now;
    let store = &mut *context.store;
    let code: &[u8] = match store.find(&flags.key, now) {
        Some(slot) => {
            if flags
                .compare_cas
                .is_some_and(|cas| cas != store.item(slot).cas())
            {
                store.count_delete_miss();
                b"EX"
            } else if flags.set_stale {
                if let Some(ttl) = flags.ttl {
                    store.set_exptime(slot, ttl, now);
                }
                store.mark_stale(slot);
                b"HD"
            } else {
                store.delete_slot(slot);
                b"HD"
            }
        }
        None => {
            store.count_delete_miss();
            b"NF"
        }
    };
    if code == b"HD" && flags.no_reply {
        return;
    }
    context.out.extend_from_slice(code);
    context.out.extend_from_slice(&returned);
    context.out.extend_from_slice(b"\r\n");
}

/// `ma <key> <flags>*`.
fn arithmetic(tokens: &[&[u8]], context: &mut Context<'_>) {
    if !check_shape(tokens, "CLIENT_ERROR options flags too long", context) {
        return;
    }
    let Ok(flags) = parse_flags(tokens, 2) else {
        return error(context.out, "CLIENT_ERROR invalid or duplicate flag");
    };
    let increment = match flags.mode {
        None | Some(b'I' | b'+') => true,
        Some(b'D' | b'-') => false,
        Some(_) => return error(context.out, "CLIENT_ERROR invalid mode for ma M token"),
    };
    let now = context.now;
    let store = &mut *context.store;
    let mut created = false;
    let mut digits = Vec::with_capacity(20);
    let found = match store.arith_slot(
        &flags.key,
        increment,
        flags.delta,
        flags.compare_cas.unwrap_or(0),
        now,
    ) {
        Ok((value, slot)) => {
            push_u64(&mut digits, value);
            Ok(slot)
        }
        Err(ArithError::NonNumeric) => {
            return error(
                context.out,
                "CLIENT_ERROR cannot increment or decrement non-numeric value",
            )
        }
        Err(ArithError::OutOfMemory) => return error(context.out, "SERVER_ERROR out of memory"),
        Err(ArithError::NotFound) if flags.vivify.is_some() => {
            push_u64(&mut digits, flags.initial);
            match store.add_slot(&flags.key, &digits, flags.key_binary, now) {
                Ok(slot) => {
                    created = true;
                    Ok(slot)
                }
                Err(_) => {
                    return error(
                        context.out,
                        "SERVER_ERROR Out of memory allocating new item",
                    )
                }
            }
        }
        Err(ArithError::NotFound) => {
            store.count_arith_miss(increment);
            Err(&b"NF"[..])
        }
        Err(ArithError::CasMismatch) => Err(&b"EX"[..]),
    };
    let start = context.out.len();
    let out = &mut *context.out;
    let slot = match found {
        Ok(slot) => slot,
        Err(code) => {
            out.extend_from_slice(code);
            if let Err(message) = push_key_and_opaque(out, tokens, &flags) {
                out.truncate(start);
                return error(out, message);
            }
            out.extend_from_slice(b"\r\n");
            return;
        }
    };
    if flags.value {
        out.extend_from_slice(b"VA ");
        push_u64(out, digits.len() as u64);
    } else {
        out.extend_from_slice(b"HD");
    }
    for token in &tokens[2..] {
        match token[0] {
            b'c' => {
                out.extend_from_slice(b" c");
                push_u64(out, store.item(slot).cas());
            }
            b't' => {
                out.extend_from_slice(b" t");
                push_i64(out, store.item(slot).ttl(now));
            }
            b'T' => store.set_exptime(slot, flags.ttl.unwrap_or(0), now),
            b'N' if created => store.set_exptime(slot, flags.vivify.unwrap_or(0), now),
            b'O' => {
                if let Err(message) = push_opaque(out, token) {
                    out.truncate(start);
                    return error(out, message);
                }
            }
            b'k' => push_key(out, &flags.key, flags.key_binary),
            _ => {}
        }
    }
    if flags.value {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&digits);
    }
    out.extend_from_slice(b"\r\n");
    // `q` hides the reply to a successful change (but not to a creation).
    if flags.no_reply && !created {
        out.truncate(start);
    }
}

/// `me <key> [b]`: a human-readable dump of an item's metadata.
fn debug(tokens: &[&[u8]], context: &mut Context<'_>) {
    if tokens.len() < 2 || !key_ok(tokens[1], context.store.config().strict_keys) {
        return reply(context.out, false, BAD_FORMAT);
    }
    let mut key = tokens[1].to_vec();
    if tokens.len() >= 3 && tokens[2] == b"b" {
        match base64_decode(tokens[1]) {
            Some(decoded) => key = decoded,
            None => return reply(context.out, false, BAD_FORMAT),
        }
    }
    // memcached's `cmd_meta` counts these debug commands only.
    context.store.count_meta();
    let now = context.now;
    let Some(item) = context.store.peek(&key, now) else {
        return reply(context.out, false, b"EN");
    };
    let out = &mut *context.out;
    out.extend_from_slice(b"ME ");
    if item.key_binary() {
        base64_encode(item.key(), out);
    } else {
        out.extend_from_slice(item.key());
    }
    out.extend_from_slice(b" exp=");
    // memcached 1.6.18 prints the time since expiry (negative while the item lives).
    match item.exptime() {
        0 => out.extend_from_slice(b"-1"),
        exptime => push_i64(out, i64::from(now) - i64::from(exptime)),
    }
    out.extend_from_slice(b" la=");
    push_i64(out, item.idle(now));
    out.extend_from_slice(b" cas=");
    push_u64(out, item.cas());
    out.extend_from_slice(if item.fetched() {
        b" fetch=yes"
    } else {
        b" fetch=no"
    });
    out.extend_from_slice(b" cls=");
    push_u64(out, u64::from(item.class()));
    out.extend_from_slice(b" size=");
    push_u64(out, item.total_size() as u64);
    out.extend_from_slice(b"\r\n");
}
