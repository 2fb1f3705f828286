//! Variables the image tool patches into the PD (`setvar`), and the runtime's own ones:
//! `microkit_name`, `microkit_passive`, `microkit_irqs`, `microkit_notifications`,
//! `microkit_pps` (same names and meaning as Microkit's), plus the IPC buffer page
//! `__sel4_ipc_buffer_obj` whose address the tool records.

use core::cell::UnsafeCell;

use edgeos_kernel_abi::IpcBuffer;

/// A value the image tool may overwrite in the ELF file before boot, and that the program only
/// reads. Reads go through an `UnsafeCell` so the compiler never folds in the initial value.
#[repr(transparent)]
pub struct ImmutableCell<T>(UnsafeCell<T>);

// SAFETY: the value is never written at run time (only by the tool, before the PD exists).
unsafe impl<T: Sync> Sync for ImmutableCell<T> {}

impl<T> ImmutableCell<T> {
    #[doc(hidden)]
    pub const fn new(value: T) -> Self {
        ImmutableCell(UnsafeCell::new(value))
    }

    /// The (possibly patched) value.
    pub fn get(&'static self) -> &'static T {
        // SAFETY: never written while the program runs (see the Sync impl).
        unsafe { &*self.0.get() }
    }
}

/// Declares a variable the image tool can patch (`setvar`) and returns a reference to it:
/// `var!(symbol: Type = default)`. The symbol lives in `.data` so it has bytes in the ELF file.
#[macro_export]
macro_rules! var {
    ($(#[$attrs:meta])* $symbol:ident: $ty:ty = $default:expr) => {{
        $(#[$attrs])*
        #[unsafe(no_mangle)]
        #[unsafe(link_section = ".data")]
        #[used]
        static $symbol: $crate::_private::ImmutableCell<$ty> = $crate::_private::ImmutableCell::new($default);

        $symbol.get()
    }};
}

/// Declares a symbol the tool patches with a mapped memory region's address (`setvar_vaddr`)
/// and returns the region as a non-null pointer. Forms:
/// `memory_region_symbol!(sym: *mut T)`, `memory_region_symbol!(sym: *mut [T], n = N)`,
/// and either with `bytes = B` (checked against the type's size).
#[macro_export]
macro_rules! memory_region_symbol {
    ($(#[$attrs:meta])* $symbol:ident: *mut [$ty:ty], n = $n:expr, bytes = $bytes:expr $(,)?) => {{
        const _: () = assert!($bytes == core::mem::size_of::<[$ty; $n]>());
        $crate::memory_region_symbol!($(#[$attrs])* $symbol: *mut [$ty], n = $n)
    }};
    ($(#[$attrs:meta])* $symbol:ident: *mut [$ty:ty], n = $n:expr $(,)?) => {
        core::ptr::NonNull::slice_from_raw_parts(
            $crate::memory_region_symbol!($(#[$attrs])* $symbol: *mut $ty),
            $n,
        )
    };
    ($(#[$attrs:meta])* $symbol:ident: *mut $ty:ty, bytes = $bytes:expr $(,)?) => {{
        const _: () = assert!($bytes == core::mem::size_of::<$ty>());
        $crate::memory_region_symbol!($(#[$attrs])* $symbol: *mut $ty)
    }};
    ($(#[$attrs:meta])* $symbol:ident: *mut $ty:ty $(,)?) => {
        match core::ptr::NonNull::new(*$crate::var!($(#[$attrs])* $symbol: usize = 0) as *mut $ty) {
            Some(p) => p,
            None => panic!("memory region symbol {} was not patched (no setvar_vaddr for it in the system description)", stringify!($symbol)),
        }
    };
}

/// Bit `i` set: channel id `i` is an IRQ of this PD.
#[inline]
pub(crate) fn pd_irqs() -> u64 {
    *var!(microkit_irqs: u64 = 0)
}

/// Bit `i` set: this PD may notify channel `i`.
#[inline]
pub(crate) fn pd_notifications() -> u64 {
    *var!(microkit_notifications: u64 = 0)
}

/// Bit `i` set: this PD may make protected calls on channel `i`.
#[inline]
pub(crate) fn pd_pps() -> u64 {
    *var!(microkit_pps: u64 = 0)
}

/// True if this PD is passive (runs only for protected calls and notifications after `init`).
pub fn pd_is_passive() -> bool {
    *var!(microkit_passive: bool = false)
}

/// This PD's name as bytes.
pub fn pd_name_bytes() -> &'static [u8] {
    let all = var!(microkit_name: [u8; 64] = [0; 64]);
    let n = all.iter().take_while(|b| **b != 0).count();
    &all[..n]
}

/// This PD's name, as the system description gives it.
pub fn pd_name() -> Result<&'static str, core::str::Utf8Error> {
    core::str::from_utf8(pd_name_bytes())
}

/// The name for messages ("?" if not UTF-8).
pub(crate) fn name_for_messages() -> &'static str {
    pd_name().unwrap_or("?")
}

#[unsafe(no_mangle)]
#[used]
static mut __sel4_ipc_buffer_obj: IpcBuffer = IpcBuffer { msg: [0; edgeos_kernel_abi::MSG_MAX_LENGTH], reserved: [0; 512 - edgeos_kernel_abi::MSG_MAX_LENGTH] };

/// The IPC buffer page (message registers).
pub fn ipc_buffer_ptr() -> *mut IpcBuffer {
    core::ptr::addr_of_mut!(__sel4_ipc_buffer_obj)
}
