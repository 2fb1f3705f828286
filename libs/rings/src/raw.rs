//! The crate's only unsafe code: turning memory regions mapped into a PD into the safe views
//! the rest of the crate works on, and copying bytes in and out of shared data regions.
//!
//! Shared memory is only ever touched through atomics (queue headers and slots) or through
//! raw-pointer copies ([`SharedRegion`]); no Rust reference to bytes a peer may write at the
//! same time is ever formed, so a peer's concurrent writes can make the copied bytes garbage
//! but cannot break this program's memory safety. Copy first, then validate the private copy.

use core::ptr::NonNull;

use crate::queue::{queue_bytes, Corrupt, Header, QueueView, Slot, HEADER_BYTES};

/// A view of the queue in the shared region at `base` (`bytes` long) holding `capacity` slots.
///
/// # Safety
/// `base` must point to `bytes` bytes that stay mapped, readable and writable for the rest of
/// the program, and that this program accesses only through this crate's views (peers may
/// write them at any time: that is allowed, they are atomics).
pub unsafe fn queue_view(base: NonNull<u8>, bytes: usize, capacity: u32) -> Result<QueueView<'static>, Corrupt> {
    if !(base.as_ptr() as usize).is_multiple_of(core::mem::align_of::<Header>()) || bytes < queue_bytes(capacity) {
        return Err(Corrupt::Layout);
    }
    // SAFETY: the region is mapped for the program's lifetime and at least HEADER_BYTES long
    // (checked above), aligned for `Header`; `Header` consists of atomics and plain integers
    // for which every bit pattern is valid, and peers' writes are atomic-compatible.
    let header = unsafe { &*(base.as_ptr() as *const Header) };
    // SAFETY: as above; the slots follow the header inside the checked length, 16-byte
    // `Slot`s of atomics are 8-aligned at offset 256 of a 64-aligned base.
    let slots = unsafe { core::slice::from_raw_parts(base.as_ptr().add(HEADER_BYTES) as *const Slot, capacity as usize) };
    Ok(QueueView::new(header, slots))
}

/// A view of one queue of a tenant link whose region (`link_bytes` long) is at `link`.
///
/// # Safety
/// As for [`queue_view`], for the whole link region.
pub unsafe fn tenant_queue(link: NonNull<u8>, link_bytes: usize, which: crate::net::TenantQueue) -> Result<QueueView<'static>, Corrupt> {
    if link_bytes < crate::net::TENANT_LINK_BYTES {
        return Err(Corrupt::Layout);
    }
    // SAFETY: the offset lies inside the link region (checked above).
    let base = unsafe { NonNull::new_unchecked(link.as_ptr().add(which.offset())) };
    // SAFETY: the caller's promise covers the whole link region, and this queue's slot lies in it.
    unsafe { queue_view(base, crate::net::TENANT_QUEUE_STRIDE, crate::net::TENANT_BUFFERS) }
}

/// The [`crate::net::LinkControl`] words of the tenant link whose region is at `link`.
///
/// # Safety
/// As for [`queue_view`], for the whole link region.
pub unsafe fn link_control(link: NonNull<u8>, link_bytes: usize) -> Result<&'static crate::net::LinkControl, Corrupt> {
    let offset = crate::net::LINK_CONTROL_OFFSET;
    if link_bytes < offset + core::mem::size_of::<crate::net::LinkControl>() || !(link.as_ptr() as usize).is_multiple_of(8) {
        return Err(Corrupt::Layout);
    }
    // SAFETY: inside the mapped link region (checked), 8-aligned; the block is one atomic, for
    // which every bit pattern is valid, and peers write it only as a whole word.
    Ok(unsafe { &*(link.as_ptr().add(offset) as *const crate::net::LinkControl) })
}

/// A data region shared with peers: bytes moved in and out by copies with bounds checks.
#[derive(Clone, Copy)]
pub struct SharedRegion {
    base: NonNull<u8>,
    len: usize,
}

/// An access outside a [`SharedRegion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds {
    pub offset: u64,
    pub len: usize,
    pub region_len: usize,
}

impl core::fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "{} bytes at offset {:#x} do not fit a region of {:#x} bytes", self.len, self.offset, self.region_len)
    }
}

impl SharedRegion {
    /// The region of `len` bytes at `base`.
    ///
    /// # Safety
    /// `base..base+len` must stay mapped and writable for the lifetime of the value (and its
    /// copies), and not be accessed through Rust references anywhere in this program.
    pub const unsafe fn new(base: NonNull<u8>, len: usize) -> Self {
        SharedRegion { base, len }
    }

    /// A region over memory this program owns (host tests, or a PD's private buffer).
    pub fn from_mut_slice(slice: &'static mut [u8]) -> Self {
        let len = slice.len();
        SharedRegion { base: NonNull::from(slice).cast(), len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of the first byte (for translation to a physical address).
    pub fn base_addr(&self) -> usize {
        self.base.as_ptr() as usize
    }

    fn check(&self, offset: u64, len: usize) -> Result<usize, OutOfBounds> {
        let fits = usize::try_from(offset).ok().and_then(|o| o.checked_add(len).filter(|end| *end <= self.len).map(|_| o));
        fits.ok_or(OutOfBounds { offset, len, region_len: self.len })
    }

    /// Copies `out.len()` bytes at `offset` into `out`.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), OutOfBounds> {
        let o = self.check(offset, out.len())?;
        // SAFETY: `o..o+len` is inside the mapped region (checked); `out` is private memory
        // that cannot overlap a region never referenced by Rust references.
        unsafe { core::ptr::copy_nonoverlapping(self.base.as_ptr().add(o), out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copies `data` to `offset`.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), OutOfBounds> {
        let o = self.check(offset, data.len())?;
        // SAFETY: as in `read`, with the roles swapped.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.base.as_ptr().add(o), data.len()) };
        Ok(())
    }

    /// Copies `len` bytes from `src` at `src_offset` to this region at `offset`. The two
    /// regions must be different mappings (they are, for every link: a PD never maps one
    /// region twice).
    pub fn copy_from(&self, offset: u64, src: &SharedRegion, src_offset: u64, len: usize) -> Result<(), OutOfBounds> {
        let d = self.check(offset, len)?;
        let s = src.check(src_offset, len)?;
        // SAFETY: both ranges are inside their mapped regions (checked) and the regions are
        // distinct mappings, so the ranges do not overlap in this address space.
        unsafe { core::ptr::copy_nonoverlapping(src.base.as_ptr().add(s), self.base.as_ptr().add(d), len) };
        Ok(())
    }
}

/// The view of one queue region of the NIC link (driver <-> virtualiser), `name` for messages;
/// panics with a message naming the region if it is too small or its header is malformed (a PD
/// start-up check: the description is wrong).
///
/// # Safety
/// As [`queue_view`]: `vaddr` must point to `size` bytes mapped for the rest of the
/// program and touched only through queue views.
pub unsafe fn nic_queue(name: &str, vaddr: NonNull<u8>, size: usize) -> QueueView<'static> {
    if size < crate::net::NIC_QUEUE_BYTES {
        panic!("queue region {name} is {size:#x} bytes; the NIC link needs {:#x}", crate::net::NIC_QUEUE_BYTES);
    }
    // SAFETY: forwarded to the caller.
    match unsafe { queue_view(vaddr, size, crate::net::NIC_BUFFERS) } {
        Ok(v) => v,
        Err(e) => panic!("queue region {name}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::{Consumer, Descriptor, Producer};
    use std::boxed::Box;
    use std::vec;

    #[test]
    fn queue_over_raw_memory() {
        #[repr(C, align(64))]
        struct Mem([u8; 256 + 16 * 8]);
        let mem: &'static mut Mem = Box::leak(Box::new(Mem([0; 256 + 128])));
        let base = NonNull::from(&mut mem.0).cast::<u8>();
        // SAFETY: leaked (lives forever) and not referenced again.
        let view = unsafe { queue_view(base, 256 + 128, 8) }.unwrap();
        let mut p = Producer::new(view, 8).unwrap();
        let mut c = Consumer::new(view, 8).unwrap();
        p.enqueue(Descriptor::new(4096, 60)).unwrap();
        assert_eq!(c.dequeue().unwrap(), Some(Descriptor::new(4096, 60)));
        // SAFETY: as above.
        assert_eq!(unsafe { queue_view(base, 256 + 127, 8) }.err(), Some(Corrupt::Layout));
        // SAFETY: as above (misaligned base is refused before any access).
        assert_eq!(unsafe { queue_view(NonNull::new(base.as_ptr().wrapping_add(8)).unwrap(), 300, 2) }.err(), Some(Corrupt::Layout));
    }

    #[test]
    fn region_copies_are_bounds_checked() {
        let a = SharedRegion::from_mut_slice(vec![0u8; 64].leak());
        let b = SharedRegion::from_mut_slice(vec![0u8; 32].leak());
        a.write(60, &[1, 2, 3, 4]).unwrap();
        assert!(a.write(61, &[1, 2, 3, 4]).is_err());
        assert!(a.write(u64::MAX, &[1]).is_err());
        b.copy_from(0, &a, 60, 4).unwrap();
        let mut out = [0u8; 4];
        b.read(0, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(b.copy_from(30, &a, 0, 4).is_err());
        assert!(b.copy_from(0, &a, 62, 4).is_err());
    }
}
