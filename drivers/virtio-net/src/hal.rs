//! The `virtio-drivers` HAL over the memory the system description gives this PD: a private
//! DMA region for the virtqueues (bump-allocated, never freed: queues live forever), the two
//! packet-buffer DMA regions shared with the virtualiser, and the virtio-mmio register window.
//! Virtual-to-physical translation is by region: every address the device sees lies in one of
//! them, and anything else is a bug in this driver (it panics loudly).
//!
//! DMA memory is mapped cached: QEMU's devices are coherent with the CPU's caches. A
//! non-coherent board needs cache maintenance here (clean before handing a buffer to the
//! device, invalidate after), in `share`/`unshare`.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// One mapped region: where it is in this PD and in physical memory.
pub struct Region {
    vaddr: AtomicUsize,
    paddr: AtomicUsize,
    size: AtomicUsize,
}

impl Region {
    const fn new() -> Self {
        Region { vaddr: AtomicUsize::new(0), paddr: AtomicUsize::new(0), size: AtomicUsize::new(0) }
    }

    /// Records where the region is (once, at start-up).
    pub fn set(&self, vaddr: usize, paddr: usize, size: usize) {
        self.vaddr.store(vaddr, Ordering::Relaxed);
        self.paddr.store(paddr, Ordering::Relaxed);
        self.size.store(size, Ordering::Relaxed);
    }

    fn translate(&self, vaddr: usize, len: usize) -> Option<usize> {
        let base = self.vaddr.load(Ordering::Relaxed);
        let size = self.size.load(Ordering::Relaxed);
        let offset = vaddr.checked_sub(base)?;
        (size != 0 && offset.checked_add(len)? <= size).then(|| self.paddr.load(Ordering::Relaxed) + offset)
    }

    fn to_virtual(&self, paddr: usize, len: usize) -> Option<usize> {
        let base = self.paddr.load(Ordering::Relaxed);
        let size = self.size.load(Ordering::Relaxed);
        let offset = paddr.checked_sub(base)?;
        (size != 0 && offset.checked_add(len)? <= size).then(|| self.vaddr.load(Ordering::Relaxed) + offset)
    }
}

/// The virtqueues' memory (private to the driver).
pub static QUEUE_MEMORY: Region = Region::new();
/// Bump pointer into `QUEUE_MEMORY`.
static QUEUE_MEMORY_USED: AtomicUsize = AtomicUsize::new(0);
/// Receive buffers (shared with the virtualiser).
pub static RX_BUFFERS: Region = Region::new();
/// Transmit buffers (shared with the virtualiser).
pub static TX_BUFFERS: Region = Region::new();
/// The virtio-mmio register window (all 32 transports).
pub static MMIO: Region = Region::new();

/// The HAL type handed to `virtio-drivers`.
pub struct EdgeosHal;

// SAFETY: `dma_alloc` hands out zeroed (zeroed at boot, never reused), page-aligned, physically
// contiguous memory from a region mapped for the PD's lifetime; `share` returns the physical
// address of the same bytes; `mmio_phys_to_virt` returns the mapping of the register window.
unsafe impl Hal for EdgeosHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let bytes = pages * PAGE_SIZE;
        let start = QUEUE_MEMORY_USED.fetch_add(bytes, Ordering::Relaxed);
        let base = QUEUE_MEMORY.vaddr.load(Ordering::Relaxed);
        let Some(paddr) = QUEUE_MEMORY.translate(base + start, bytes) else {
            panic!("virtqueue memory exhausted: {bytes} more bytes wanted after {start}; enlarge the driver's queue region");
        };
        let vaddr = NonNull::new((base + start) as *mut u8).expect("queue memory is mapped above 0");
        (paddr as PhysAddr, vaddr)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // Virtqueues live as long as the driver.
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        match MMIO.to_virtual(paddr as usize, size) {
            Some(v) => NonNull::new(v as *mut u8).expect("the register window is mapped above 0"),
            None => panic!("device registers at {paddr:#x} are outside the mapped virtio-mmio window"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let vaddr = buffer.cast::<u8>().as_ptr() as usize;
        let len = buffer.len();
        for region in [&RX_BUFFERS, &TX_BUFFERS, &QUEUE_MEMORY] {
            if let Some(paddr) = region.translate(vaddr, len) {
                return paddr as PhysAddr;
            }
        }
        panic!("buffer at {vaddr:#x} ({len} bytes) is in no DMA region")
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
