//! The PL011 console: kernel `println!` and the PDs' debug output.

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::ptr::NonNull;

use arm_pl011_uart::{PL011Registers, Uart, UniqueMmioPointer};

struct Console(UnsafeCell<Option<Uart<'static>>>);

// SAFETY: one core, and the kernel runs with interrupts masked, so the console is never used by
// two contexts at once.
unsafe impl Sync for Console {}

static CONSOLE: Console = Console(UnsafeCell::new(None));

/// Takes the UART at `paddr` (through the kernel's direct map). Called once at boot.
pub fn init(paddr: u64) {
    let regs = super::phys_to_virt(paddr) as *mut PL011Registers;
    // SAFETY: the UART's registers are mapped as device memory in the kernel's direct map and no
    // other code touches them; init runs once, before any other console use (see Console's Sync).
    unsafe {
        let uart = Uart::new(UniqueMmioPointer::new(NonNull::new_unchecked(regs)));
        *CONSOLE.0.get() = Some(uart);
    }
}

fn with_uart(f: impl FnOnce(&mut Uart<'static>)) {
    // SAFETY: see Console's Sync: no concurrent or reentrant use.
    if let Some(uart) = unsafe { (*CONSOLE.0.get()).as_mut() } {
        f(uart)
    }
}

/// Writes bytes as they are (PD debug output).
pub fn write_bytes(bytes: &[u8]) {
    with_uart(|uart| {
        for &b in bytes {
            if b == b'\n' {
                uart_put(uart, b'\r');
            }
            uart_put(uart, b);
        }
    })
}

fn uart_put(uart: &mut Uart<'static>, b: u8) {
    while uart.is_tx_fifo_full() {}
    uart.write_word(b);
}

struct Writer;

impl Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

#[doc(hidden)]
pub fn print_args(args: fmt::Arguments) {
    let _ = Writer.write_fmt(args);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::arch::console::print_args(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::arch::console::print_args(format_args!("{}\n", format_args!($($arg)*))) };
}
