//! Lexical pieces shared by the text and meta protocols: splitting a command line into tokens,
//! reading numbers exactly the way memcached does, and base64 for binary keys.
//!
//! memcached reads numbers with C's `strtol` family wrapped in small checks (`safe_strtoul` and
//! friends). Those accept leading whitespace, a sign, and trailing whitespace, reject values
//! out of range, and have a few quirks (an unsigned value written with a minus sign is accepted
//! when its two's complement is small; a flags value above 32 bits is truncated). Clients can
//! observe all of that, so the functions here reproduce it rather than using `str::parse`.

use alloc::vec::Vec;

/// C's `isspace` in the "C" locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits a command line on spaces (only the space character, like memcached), skipping empty
/// tokens. Tabs and other control characters stay inside tokens.
pub fn tokenize(line: &[u8]) -> Vec<&[u8]> {
    line.split(|&byte| byte == b' ')
        .filter(|token| !token.is_empty())
        .collect()
}

/// The core of C's `strtoull(s, &end, 10)` followed by memcached's end check: returns the value
/// (negated modulo 2^64 when a minus sign was given) and whether a minus sign was given, or
/// `None` when there are no digits, the magnitude overflows 64 bits, or a character other than
/// whitespace or NUL follows the digits.
fn c_strtoull(text: &[u8]) -> Option<(u64, bool)> {
    let mut index = 0;
    while index < text.len() && is_c_space(text[index]) {
        index += 1;
    }
    let mut negative = false;
    if let Some(&sign @ (b'+' | b'-')) = text.get(index) {
        negative = sign == b'-';
        index += 1;
    }
    let digits_start = index;
    let mut magnitude: u64 = 0;
    while let Some(&digit @ b'0'..=b'9') = text.get(index) {
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
        index += 1;
    }
    if index == digits_start {
        return None;
    }
    match text.get(index) {
        None | Some(0) => {}
        Some(&byte) if is_c_space(byte) => {}
        Some(_) => return None,
    }
    let value = if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    Some((value, negative))
}

/// memcached's `safe_strtoull`: an unsigned 64-bit decimal number.
pub fn parse_u64(text: &[u8]) -> Option<u64> {
    let (value, negative) = c_strtoull(text)?;
    // memcached only rejects a minus sign when the result looks negative as a signed number.
    if negative && (value as i64) < 0 {
        return None;
    }
    Some(value)
}

/// memcached's `safe_strtoul` on a 64-bit host, used for client flags: parsed as 64 bits and then
/// truncated to 32 (so `4294967296` reads as 0, as memcached 1.6 does).
pub fn parse_u32_truncating(text: &[u8]) -> Option<u32> {
    parse_u64(text).map(|value| value as u32)
}

/// memcached's `safe_strtol`: a signed number that must not exceed `i32::MAX`; values below
/// `i32::MIN` are truncated to 32 bits as memcached does.
pub fn parse_i32(text: &[u8]) -> Option<i32> {
    let (value, negative) = c_strtoull(text)?;
    // strtol saturates (ERANGE) outside the i64 range.
    let signed = if negative {
        if value != 0 && (value as i64) > 0 {
            // The magnitude was above 2^63: strtol reports ERANGE.
            return None;
        }
        value as i64
    } else {
        i64::try_from(value).ok()?
    };
    if signed > i64::from(i32::MAX) {
        return None;
    }
    Some(signed as i32)
}

/// Whether `token` is exactly `word`.
pub fn is(token: &[u8], word: &str) -> bool {
    token == word.as_bytes()
}

/// The base64 alphabet (RFC 4648, with `+` and `/`).
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `data` as padded base64, appending to `out`.
pub fn base64_encode(data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let group = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for position in 0..4 {
            if position <= chunk.len() {
                out.push(BASE64[((group >> (18 - 6 * position)) & 0x3f) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

/// Decodes padded base64. Returns `None` for anything that is not a whole number of 4-character
/// groups of the standard alphabet with `=` padding only at the end, or that decodes to nothing.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() % 4 != 0 {
        return None;
    }
    let value_of = |byte: u8| {
        BASE64
            .iter()
            .position(|&symbol| symbol == byte)
            .map(|v| v as u32)
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let groups = text.len() / 4;
    for (index, group) in text.chunks(4).enumerate() {
        let padding = group.iter().rev().take_while(|&&byte| byte == b'=').count();
        if padding > 2 || (padding > 0 && index + 1 != groups) {
            return None;
        }
        let mut bits = 0u32;
        for &byte in &group[..4 - padding] {
            bits = (bits << 6) | value_of(byte)?;
        }
        bits <<= 6 * padding as u32;
        let decoded = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    (!out.is_empty()).then_some(out)
}

/// Appends the decimal form of `value`.
pub fn push_u64(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut index = digits.len();
    let mut rest = value;
    loop {
        index -= 1;
        digits[index] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[index..]);
}

/// Appends the decimal form of a signed `value`.
pub fn push_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_u64(out, value.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn tokens_split_on_spaces_only() {
        assert_eq!(
            tokenize(b"  set  a\tb 0 "),
            vec![&b"set"[..], b"a\tb", b"0"]
        );
        assert!(tokenize(b"").is_empty());
        assert!(tokenize(b"   ").is_empty());
    }

    #[test]
    fn unsigned_numbers_follow_safe_strtoull() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"-0"), Some(0));
        // The two's complement of a huge negative number is small and positive: accepted.
        assert_eq!(parse_u64(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_u64(b"+7"), Some(7));
        assert_eq!(parse_u64(b"\t7"), Some(7));
        assert_eq!(parse_u64(b"7\t"), Some(7));
        assert_eq!(parse_u64(b"7x"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"x"), None);
        assert_eq!(parse_u64(b"12 \r\n"), Some(12));
    }

    #[test]
    fn flags_truncate_to_32_bits() {
        assert_eq!(parse_u32_truncating(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32_truncating(b"4294967296"), Some(0));
        assert_eq!(parse_u32_truncating(b"-1"), None);
    }

    #[test]
    fn signed_numbers_follow_safe_strtol() {
        assert_eq!(parse_i32(b"-1"), Some(-1));
        assert_eq!(parse_i32(b"2147483647"), Some(i32::MAX));
        assert_eq!(parse_i32(b"2147483648"), None);
        assert_eq!(parse_i32(b"-2147483648"), Some(i32::MIN));
        // Below i32::MIN memcached truncates instead of rejecting.
        assert_eq!(parse_i32(b"-2147483649"), Some(i32::MAX));
        assert_eq!(parse_i32(b"-9223372036854775808"), Some(0));
        assert_eq!(parse_i32(b"-9223372036854775809"), None);
        assert_eq!(parse_i32(b"abc"), None);
    }

    #[test]
    fn base64_round_trips() {
        for data in [&b"m"[..], b"mk", b"mkx", b"\x00\xff\x10 key"] {
            let mut encoded = Vec::new();
            base64_encode(data, &mut encoded);
            assert_eq!(base64_decode(&encoded).as_deref(), Some(data));
        }
        let mut encoded = Vec::new();
        base64_encode(b"mk", &mut encoded);
        assert_eq!(encoded, b"bWs=");
        assert_eq!(base64_decode(b"m"), None);
        assert_eq!(base64_decode(b"!!!!"), None);
        assert_eq!(base64_decode(b"bW=s"), None);
        assert_eq!(base64_decode(b"bWs=bWs="), None);
    }

    #[test]
    fn decimal_output() {
        let mut out = Vec::new();
        push_u64(&mut out, 0);
        out.push(b' ');
        push_u64(&mut out, u64::MAX);
        out.push(b' ');
        push_i64(&mut out, -5);
        assert_eq!(out, b"0 18446744073709551615 -5");
    }
}
