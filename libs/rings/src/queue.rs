//! The queue: shared layout, the producer and consumer ends, and descriptor checks.

use core::fmt;

use crate::sync::{fence, AtomicU32, AtomicU64, Ordering};

/// Bytes of the shared header in front of the slots.
pub const HEADER_BYTES: usize = 256;
/// Bytes of one slot.
pub const SLOT_BYTES: usize = 16;

/// The largest capacity a queue may have (keeps `tail - head` far from wrapping ambiguity).
pub const MAX_CAPACITY: u32 = 1 << 20;

/// Bytes of shared memory a queue of `capacity` slots needs.
pub const fn queue_bytes(capacity: u32) -> usize {
    HEADER_BYTES + SLOT_BYTES * capacity as usize
}

/// The shared header of a queue. Each index sits on its own 64-byte line so the two sides do
/// not write the same cache line.
#[repr(C, align(64))]
pub struct Header {
    /// Written only by the producer: the number of descriptors ever published (free-running).
    tail: AtomicU32,
    _pad0: [u32; 15],
    /// Written only by the consumer: the number of descriptors ever consumed (free-running).
    head: AtomicU32,
    _pad1: [u32; 15],
    /// 1: the consumer asks to be notified when the producer next publishes. Set by the
    /// consumer, cleared by whichever side acts on it.
    want_signal: AtomicU32,
    _pad2: [u32; 15],
    _pad3: [u32; 16],
}

#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<Header>() == HEADER_BYTES);
#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<Slot>() == SLOT_BYTES);

impl Header {
    /// A zeroed header (an empty queue nobody waits on).
    pub fn new() -> Self {
        Header {
            tail: AtomicU32::new(0),
            _pad0: [0; 15],
            head: AtomicU32::new(0),
            _pad1: [0; 15],
            want_signal: AtomicU32::new(0),
            _pad2: [0; 15],
            _pad3: [0; 16],
        }
    }
}

impl Default for Header {
    fn default() -> Self {
        Self::new()
    }
}

/// One shared slot: a descriptor as the peer wrote it (untrusted).
#[repr(C)]
pub struct Slot {
    offset: AtomicU64,
    len: AtomicU32,
    _reserved: AtomicU32,
}

impl Slot {
    /// A zeroed slot.
    pub fn new() -> Self {
        Slot { offset: AtomicU64::new(0), len: AtomicU32::new(0), _reserved: AtomicU32::new(0) }
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

/// A buffer handed over a queue: its offset in the link's data region and the length of the
/// data in it (0 for empty buffers on a free queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Descriptor {
    pub offset: u64,
    pub len: u32,
}

impl Descriptor {
    pub const fn new(offset: u64, len: u32) -> Self {
        Descriptor { offset, len }
    }
}

/// The peer broke the queue protocol: what it wrote is refused, never followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corrupt {
    /// The peer's index implies `items` items in a queue of `capacity`.
    Index { items: u32, capacity: u32 },
    /// A descriptor's offset is outside the data region or not at a buffer boundary.
    Offset { offset: u64 },
    /// A descriptor's length exceeds the buffer size.
    Length { len: u32, max: u32 },
    /// The memory handed to a queue view is too small, misaligned, or the capacity is not a
    /// power of two in `1..=MAX_CAPACITY`.
    Layout,
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            Corrupt::Index { items, capacity } => {
                write!(f, "peer index implies {items} items in a queue of {capacity}")
            }
            Corrupt::Offset { offset } => write!(f, "descriptor offset {offset:#x} is not a buffer in the region"),
            Corrupt::Length { len, max } => write!(f, "descriptor length {len} exceeds the buffer size {max}"),
            Corrupt::Layout => f.write_str("queue memory too small or misaligned, or capacity not a power of two"),
        }
    }
}

/// Why an enqueue did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnqueueError {
    /// No free slot (cannot happen on a queue sized for every buffer of its link).
    Full,
    /// The consumer's index is impossible.
    Corrupt(Corrupt),
}

impl From<Corrupt> for EnqueueError {
    fn from(c: Corrupt) -> Self {
        EnqueueError::Corrupt(c)
    }
}

/// A view of one queue's shared memory: header and slots. Carries no trusted state.
#[derive(Clone, Copy)]
pub struct QueueView<'a> {
    header: &'a Header,
    slots: &'a [Slot],
}

impl<'a> QueueView<'a> {
    /// A view of `header` and `slots` (which must hold at least the capacity the ends use).
    pub fn new(header: &'a Header, slots: &'a [Slot]) -> Self {
        QueueView { header, slots }
    }
}

/// Shared memory of a queue with `N` slots owned by ordinary Rust code (tests, benchmarks,
/// queues between threads). PDs use [`crate::raw::queue_view`] over a mapped region instead.
pub struct QueueStorage<const N: usize> {
    header: Header,
    slots: [Slot; N],
}

impl<const N: usize> QueueStorage<N> {
    pub fn new() -> Self {
        QueueStorage { header: Header::new(), slots: core::array::from_fn(|_| Slot::new()) }
    }

    pub fn view(&self) -> QueueView<'_> {
        QueueView::new(&self.header, &self.slots)
    }
}

impl<const N: usize> Default for QueueStorage<N> {
    fn default() -> Self {
        Self::new()
    }
}

fn check_capacity(view: &QueueView<'_>, capacity: u32) -> Result<u32, Corrupt> {
    if !capacity.is_power_of_two() || capacity > MAX_CAPACITY || view.slots.len() < capacity as usize {
        return Err(Corrupt::Layout);
    }
    Ok(capacity - 1)
}

/// The producing end of a queue. Its `tail` and the capacity are private; only the consumer's
/// `head` is read from shared memory (and checked).
pub struct Producer<'a> {
    view: QueueView<'a>,
    capacity: u32,
    mask: u32,
    tail: u32,
    /// The consumer's `head` as last read and checked: free slots are known without touching
    /// the consumer's cache line until they run out.
    head_seen: u32,
}

impl<'a> Producer<'a> {
    /// The producer of the queue in `view` with `capacity` slots (a power of two). It starts
    /// from the shared `tail` as it finds it (zero in a fresh region) and never reads it again.
    pub fn new(view: QueueView<'a>, capacity: u32) -> Result<Self, Corrupt> {
        let mask = check_capacity(&view, capacity)?;
        let tail = view.header.tail.load(Ordering::Relaxed);
        let mut producer = Producer { view, capacity, mask, tail, head_seen: tail };
        producer.len()?;
        Ok(producer)
    }

    /// The capacity (private).
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Items the consumer has not yet taken, from the consumer's published `head` (read now).
    #[inline]
    pub fn len(&mut self) -> Result<u32, Corrupt> {
        let head = self.view.header.head.load(Ordering::Acquire);
        let items = self.tail.wrapping_sub(head);
        // Also refuses a head that moved backwards past our last check only if it implies too
        // many items; a head moving within bounds can only hurt the consumer itself.
        if items > self.capacity {
            return Err(Corrupt::Index { items, capacity: self.capacity });
        }
        self.head_seen = head;
        Ok(items)
    }

    /// True if nothing is waiting for the consumer.
    #[inline]
    pub fn is_empty(&mut self) -> Result<bool, Corrupt> {
        Ok(self.len()? == 0)
    }

    /// True if there is no free slot.
    pub fn is_full(&mut self) -> Result<bool, Corrupt> {
        Ok(self.len()? == self.capacity)
    }

    /// Publishes one descriptor. Ownership of its buffer passes to the consumer at the `tail`
    /// store: the caller must not touch the buffer afterwards.
    #[inline]
    pub fn enqueue(&mut self, descriptor: Descriptor) -> Result<(), EnqueueError> {
        if self.tail.wrapping_sub(self.head_seen) >= self.capacity && self.len()? == self.capacity {
            return Err(EnqueueError::Full);
        }
        let slot = &self.view.slots[(self.tail & self.mask) as usize];
        slot.offset.store(descriptor.offset, Ordering::Relaxed);
        slot.len.store(descriptor.len, Ordering::Relaxed);
        self.tail = self.tail.wrapping_add(1);
        // Release: the slot (and the buffer contents written before) are visible before `tail`.
        self.view.header.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Call once after a batch of enqueues: true if the consumer asked for a notification, in
    /// which case the request is consumed and the caller must notify the consumer's channel.
    /// This gives at most one notification per batch.
    ///
    /// The SeqCst fence orders the `tail` store before the flag load; with the consumer's fence
    /// in [`Consumer::request_signal`], either this load sees the flag or the consumer's
    /// re-check sees the new items, so no wake-up is lost.
    #[inline]
    pub fn signal_wanted(&mut self) -> bool {
        fence(Ordering::SeqCst);
        if self.view.header.want_signal.load(Ordering::Relaxed) != 0 {
            self.view.header.want_signal.store(0, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

/// The consuming end of a queue. Its `head` and the capacity are private; only the producer's
/// `tail` is read from shared memory (and checked).
pub struct Consumer<'a> {
    view: QueueView<'a>,
    capacity: u32,
    mask: u32,
    head: u32,
    /// The producer's `tail` as last read and checked: items known to be waiting without
    /// touching the producer's cache line until they run out.
    tail_seen: u32,
}

impl<'a> Consumer<'a> {
    /// The consumer of the queue in `view` with `capacity` slots (a power of two).
    pub fn new(view: QueueView<'a>, capacity: u32) -> Result<Self, Corrupt> {
        let mask = check_capacity(&view, capacity)?;
        let head = view.header.head.load(Ordering::Relaxed);
        let mut consumer = Consumer { view, capacity, mask, head, tail_seen: head };
        consumer.len()?;
        Ok(consumer)
    }

    /// The capacity (private).
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Items waiting, from the producer's published `tail` (read now).
    #[inline]
    pub fn len(&mut self) -> Result<u32, Corrupt> {
        // Acquire: slots written before this `tail` was published are visible.
        let tail = self.view.header.tail.load(Ordering::Acquire);
        let items = tail.wrapping_sub(self.head);
        if items > self.capacity {
            return Err(Corrupt::Index { items, capacity: self.capacity });
        }
        self.tail_seen = tail;
        Ok(items)
    }

    /// True if nothing is waiting.
    #[inline]
    pub fn is_empty(&mut self) -> Result<bool, Corrupt> {
        Ok(self.len()? == 0)
    }

    /// Takes the next descriptor, if any. Its fields are NOT yet checked: pass it through a
    /// [`BufferLayout`] before following it. Ownership of the buffer passes to the caller.
    #[inline]
    pub fn dequeue(&mut self) -> Result<Option<Descriptor>, Corrupt> {
        if self.tail_seen == self.head && self.len()? == 0 {
            return Ok(None);
        }
        let slot = &self.view.slots[(self.head & self.mask) as usize];
        let descriptor = Descriptor { offset: slot.offset.load(Ordering::Relaxed), len: slot.len.load(Ordering::Relaxed) };
        self.head = self.head.wrapping_add(1);
        // Release: our reads of the slot happen before the producer may reuse it.
        self.view.header.head.store(self.head, Ordering::Release);
        Ok(Some(descriptor))
    }

    /// Asks the producer to notify us when it next publishes. Call after draining, then
    /// re-check the queue: if it is no longer empty, [`cancel_signal`](Self::cancel_signal)
    /// and keep draining; otherwise wait. The SeqCst fence orders the flag store before the
    /// re-check's `tail` load (see [`Producer::signal_wanted`]).
    #[inline]
    pub fn request_signal(&mut self) {
        self.view.header.want_signal.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Withdraws a request made by [`request_signal`](Self::request_signal) (work arrived in
    /// between, so no notification is needed).
    #[inline]
    pub fn cancel_signal(&mut self) {
        self.view.header.want_signal.store(0, Ordering::Relaxed);
    }

    /// The drain loop's ending, in one call: requests a signal and re-checks. Returns true if
    /// the queue is empty and the caller may wait (the request stays); false if work arrived
    /// (the request is withdrawn; drain again).
    #[inline]
    pub fn finish_batch(&mut self) -> Result<bool, Corrupt> {
        self.request_signal();
        if self.is_empty()? {
            Ok(true)
        } else {
            self.cancel_signal();
            Ok(false)
        }
    }
}

/// How a link's data region is cut into buffers: `count` buffers of `buffer_size` bytes each,
/// starting at offset 0. Checks descriptors read from a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferLayout {
    pub buffer_size: u32,
    pub count: u32,
}

impl BufferLayout {
    pub const fn new(buffer_size: u32, count: u32) -> Self {
        BufferLayout { buffer_size, count }
    }

    /// Total bytes the buffers cover.
    pub const fn region_bytes(&self) -> u64 {
        self.buffer_size as u64 * self.count as u64
    }

    /// Offset of buffer `index`.
    #[inline]
    pub const fn offset(&self, index: u32) -> u64 {
        index as u64 * self.buffer_size as u64
    }

    /// Checks that `d` names a whole buffer of this region and that its length fits in it;
    /// returns the buffer's index.
    #[inline]
    pub fn check(&self, d: Descriptor) -> Result<u32, Corrupt> {
        let size = self.buffer_size as u64;
        if size == 0 || !d.offset.is_multiple_of(size) || d.offset / size >= self.count as u64 {
            return Err(Corrupt::Offset { offset: d.offset });
        }
        if d.len > self.buffer_size {
            return Err(Corrupt::Length { len: d.len, max: self.buffer_size });
        }
        Ok((d.offset / size) as u32)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_wraparound() {
        let storage = QueueStorage::<4>::new();
        let mut p = Producer::new(storage.view(), 4).unwrap();
        let mut c = Consumer::new(storage.view(), 4).unwrap();
        for round in 0..10u64 {
            for i in 0..4 {
                p.enqueue(Descriptor::new(round * 4 + i, i as u32)).unwrap();
            }
            assert_eq!(p.enqueue(Descriptor::new(0, 0)), Err(EnqueueError::Full));
            assert_eq!(c.len(), Ok(4));
            for i in 0..4 {
                assert_eq!(c.dequeue().unwrap(), Some(Descriptor::new(round * 4 + i, i as u32)));
            }
            assert_eq!(c.dequeue().unwrap(), None);
        }
    }

    #[test]
    fn indices_wrap_past_u32() {
        let storage = QueueStorage::<8>::new();
        storage.header.tail.store(u32::MAX - 3, Ordering::Relaxed);
        storage.header.head.store(u32::MAX - 3, Ordering::Relaxed);
        let mut p = Producer::new(storage.view(), 8).unwrap();
        let mut c = Consumer::new(storage.view(), 8).unwrap();
        for i in 0..100u64 {
            p.enqueue(Descriptor::new(i, 0)).unwrap();
            assert_eq!(c.dequeue().unwrap().unwrap().offset, i);
        }
    }

    #[test]
    fn bad_capacity_refused() {
        let storage = QueueStorage::<8>::new();
        assert!(Producer::new(storage.view(), 6).is_err());
        assert!(Producer::new(storage.view(), 16).is_err());
        assert!(Consumer::new(storage.view(), 0).is_err());
    }

    #[test]
    fn corrupt_peer_tail_is_refused() {
        let storage = QueueStorage::<8>::new();
        let mut c = Consumer::new(storage.view(), 8).unwrap();
        // A hostile producer claims 1000 items.
        storage.header.tail.store(1000, Ordering::Relaxed);
        assert_eq!(c.dequeue(), Err(Corrupt::Index { items: 1000, capacity: 8 }));
        // Going "backwards" looks like ~4 billion items: refused too.
        storage.header.tail.store(u32::MAX, Ordering::Relaxed);
        assert!(matches!(c.len(), Err(Corrupt::Index { .. })));
    }

    #[test]
    fn corrupt_peer_head_is_refused() {
        let storage = QueueStorage::<8>::new();
        let mut p = Producer::new(storage.view(), 8).unwrap();
        p.enqueue(Descriptor::new(0, 0)).unwrap();
        // A hostile consumer claims to have consumed more than was ever produced: refused at
        // the next read of its index (an explicit one, or when the cached free space runs out).
        storage.header.head.store(100, Ordering::Relaxed);
        assert!(matches!(p.len(), Err(Corrupt::Index { .. })));
        let mut refused = false;
        for _ in 0..8 {
            if let Err(e) = p.enqueue(Descriptor::new(0, 0)) {
                assert!(matches!(e, EnqueueError::Corrupt(_)));
                refused = true;
                break;
            }
        }
        assert!(refused);
    }

    #[test]
    fn a_peer_overwriting_our_own_index_changes_nothing() {
        let storage = QueueStorage::<8>::new();
        let mut p = Producer::new(storage.view(), 8).unwrap();
        let mut c = Consumer::new(storage.view(), 8).unwrap();
        p.enqueue(Descriptor::new(7, 1)).unwrap();
        // The consumer scribbles on `tail`; the producer never reads it back.
        storage.header.tail.store(0, Ordering::Relaxed);
        storage.header.tail.store(1, Ordering::Relaxed);
        p.enqueue(Descriptor::new(8, 1)).unwrap();
        assert_eq!(c.dequeue().unwrap().unwrap().offset, 7);
        assert_eq!(c.dequeue().unwrap().unwrap().offset, 8);
    }

    #[test]
    fn signal_protocol_one_notification_per_batch() {
        let storage = QueueStorage::<8>::new();
        let mut p = Producer::new(storage.view(), 8).unwrap();
        let mut c = Consumer::new(storage.view(), 8).unwrap();
        // Nobody asked: no signal.
        p.enqueue(Descriptor::new(0, 0)).unwrap();
        assert!(!p.signal_wanted());
        while c.dequeue().unwrap().is_some() {}
        assert!(c.finish_batch().unwrap());
        // A batch of three gives one signal.
        for i in 0..3 {
            p.enqueue(Descriptor::new(i, 0)).unwrap();
        }
        assert!(p.signal_wanted());
        assert!(!p.signal_wanted());
        // Work arriving between drain and re-check: the consumer keeps going.
        assert_eq!(c.dequeue().unwrap().unwrap().offset, 0);
        assert!(!c.finish_batch().unwrap());
        p.enqueue(Descriptor::new(9, 0)).unwrap();
        assert!(!p.signal_wanted(), "the request was withdrawn");
    }

    #[test]
    fn buffer_layout_checks() {
        let l = BufferLayout::new(2048, 4);
        assert_eq!(l.check(Descriptor::new(2048 * 3, 2048)), Ok(3));
        assert_eq!(l.check(Descriptor::new(2048 * 4, 0)), Err(Corrupt::Offset { offset: 8192 }));
        assert_eq!(l.check(Descriptor::new(100, 0)), Err(Corrupt::Offset { offset: 100 }));
        assert_eq!(l.check(Descriptor::new(u64::MAX, 0)), Err(Corrupt::Offset { offset: u64::MAX }));
        assert_eq!(l.check(Descriptor::new(0, 2049)), Err(Corrupt::Length { len: 2049, max: 2048 }));
        assert!(BufferLayout::new(0, 4).check(Descriptor::new(0, 0)).is_err());
    }
}
