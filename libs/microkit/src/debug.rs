//! Debug output through the kernel console: `debug_print!` and `debug_println!`.

use core::fmt;

use crate::sys;

/// Writes bytes to the debug console.
pub fn debug_write(bytes: &[u8]) {
    for chunk in bytes.chunks(1024) {
        let _ = sys::debug_puts(chunk);
    }
}

/// Buffers formatted output and writes it in few system calls.
pub struct DebugWriter {
    buf: [u8; 256],
    len: usize,
}

impl DebugWriter {
    pub const fn new() -> Self {
        DebugWriter { buf: [0; 256], len: 0 }
    }

    pub fn flush(&mut self) {
        if self.len > 0 {
            debug_write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Default for DebugWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for DebugWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Prints to the debug console.
#[macro_export]
macro_rules! debug_print {
    ($($arg:tt)*) => {{
        let mut w = $crate::_private::DebugWriter::new();
        let _ = core::fmt::Write::write_fmt(&mut w, format_args!($($arg)*));
        w.flush();
    }};
}

/// Prints a line to the debug console.
#[macro_export]
macro_rules! debug_println {
    () => { $crate::debug_print!("\n") };
    ($($arg:tt)*) => {{
        let mut w = $crate::_private::DebugWriter::new();
        let _ = core::fmt::Write::write_fmt(&mut w, format_args!($($arg)*));
        let _ = core::fmt::Write::write_str(&mut w, "\n");
        w.flush();
    }};
}
