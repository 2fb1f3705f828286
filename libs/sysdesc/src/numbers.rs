//! Number and boolean syntax of the description format.
//!
//! Numbers are unsigned decimal (`4096`) or hexadecimal with a lowercase `0x`
//! prefix (`0x1000`, `0xdead_BEEF`); `_` may separate digits anywhere, as in
//! Microkit. Anything else (signs, spaces, `0X`, octal, an empty string, a
//! value past `u64::MAX`) is rejected rather than guessed at. Booleans are
//! exactly `true` or `false`.

use std::fmt;

/// Why a number attribute could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    /// The text holds no digit at all (empty, only `_`, or a bare `0x`).
    Empty,
    /// A character that is not a digit of the number's base.
    InvalidDigit(char),
    /// The value does not fit in 64 bits.
    Overflow,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumberError::Empty => write!(f, "no digits"),
            NumberError::InvalidDigit(c) => write!(f, "invalid digit {c:?}"),
            NumberError::Overflow => write!(f, "does not fit in 64 bits"),
        }
    }
}

/// Parses a description number: decimal, or hexadecimal after `0x`, with
/// optional `_` separators.
///
/// ```
/// use sysdesc::numbers::parse_number;
/// assert_eq!(parse_number("0x20_0000"), Ok(0x200000));
/// assert_eq!(parse_number("1_000"), Ok(1000));
/// assert!(parse_number("-1").is_err());
/// ```
pub fn parse_number(text: &str) -> Result<u64, NumberError> {
    let (digits, radix) = match text.strip_prefix("0x") {
        Some(rest) => (rest, 16),
        None => (text, 10),
    };
    let mut value: u64 = 0;
    let mut seen_digit = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let digit = c.to_digit(radix).ok_or(NumberError::InvalidDigit(c))?;
        seen_digit = true;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(NumberError::Overflow)?;
    }
    if seen_digit {
        Ok(value)
    } else {
        Err(NumberError::Empty)
    }
}

/// Parses a description boolean: exactly `true` or `false`.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Formats a value as lowercase hex with a `0x` prefix, the form messages use
/// for addresses and sizes.
pub(crate) fn hex(value: u64) -> String {
    format!("{value:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal() {
        assert_eq!(parse_number("0"), Ok(0));
        assert_eq!(parse_number("42"), Ok(42));
        assert_eq!(parse_number("007"), Ok(7));
        assert_eq!(parse_number("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn hexadecimal() {
        assert_eq!(parse_number("0x0"), Ok(0));
        assert_eq!(parse_number("0x1000"), Ok(0x1000));
        assert_eq!(parse_number("0xdeadBEEF"), Ok(0xdead_beef));
        assert_eq!(parse_number("0xffffffffffffffff"), Ok(u64::MAX));
    }

    #[test]
    fn separators() {
        assert_eq!(parse_number("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_number("0x20_0000"), Ok(0x20_0000));
        assert_eq!(parse_number("0x_1"), Ok(1));
        assert_eq!(parse_number("1__0_"), Ok(10));
    }

    #[test]
    fn empty() {
        assert_eq!(parse_number(""), Err(NumberError::Empty));
        assert_eq!(parse_number("_"), Err(NumberError::Empty));
        assert_eq!(parse_number("0x"), Err(NumberError::Empty));
        assert_eq!(parse_number("0x__"), Err(NumberError::Empty));
    }

    #[test]
    fn garbage() {
        assert_eq!(parse_number("12a"), Err(NumberError::InvalidDigit('a')));
        assert_eq!(parse_number("0xg"), Err(NumberError::InvalidDigit('g')));
        assert_eq!(parse_number("-1"), Err(NumberError::InvalidDigit('-')));
        assert_eq!(parse_number("+1"), Err(NumberError::InvalidDigit('+')));
        assert_eq!(parse_number(" 1"), Err(NumberError::InvalidDigit(' ')));
        assert_eq!(parse_number("1 "), Err(NumberError::InvalidDigit(' ')));
        assert_eq!(parse_number("0X10"), Err(NumberError::InvalidDigit('X')));
        assert_eq!(parse_number("0b1"), Err(NumberError::InvalidDigit('b')));
        assert_eq!(parse_number("1.5"), Err(NumberError::InvalidDigit('.')));
        assert_eq!(parse_number("١"), Err(NumberError::InvalidDigit('١')));
    }

    #[test]
    fn overflow() {
        assert_eq!(
            parse_number("18446744073709551616"),
            Err(NumberError::Overflow)
        );
        assert_eq!(
            parse_number("0x1_0000_0000_0000_0000"),
            Err(NumberError::Overflow)
        );
        assert_eq!(
            parse_number("99999999999999999999999"),
            Err(NumberError::Overflow)
        );
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("True"), None);
        assert_eq!(parse_bool("1"), None);
        assert_eq!(parse_bool(" true"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn error_text() {
        assert_eq!(NumberError::Empty.to_string(), "no digits");
        assert_eq!(
            NumberError::InvalidDigit('q').to_string(),
            "invalid digit 'q'"
        );
        assert_eq!(NumberError::Overflow.to_string(), "does not fit in 64 bits");
    }
}
