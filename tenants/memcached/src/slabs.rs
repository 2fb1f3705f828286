//! memcached's item size arithmetic and slab class table, used to charge items against the
//! memory limit and to report `stats items`, `stats slabs` and `me` the way memcached does.
//!
//! We do not allocate from slabs (items are ordinary heap allocations), but charging each item the
//! chunk size memcached would give it makes an instance hold about as many items as memcached
//! does with the same `-m`, and lets `SERVER_ERROR object too large for cache` trip at exactly the
//! same value length. The numbers are memcached 1.6's defaults on a 64-bit host: a 48-byte item
//! header, 8 bytes of CAS, 4 bytes of client flags only when they are non-zero, `-n 48`,
//! `-f 1.25`, 1 MiB pages and a 512 KiB largest chunk.

/// memcached's `sizeof(item)` on 64-bit hosts.
pub const ITEM_HEADER_SIZE: usize = 48;
/// Bytes of CAS value stored with every item (memcached's `-C` is off by default).
pub const CAS_SIZE: usize = 8;
/// The smallest chunk adds this to the item header (memcached `-n`).
const MIN_CHUNK_EXTRA: u32 = 48;
/// A slab page (memcached `slab_page_size`).
pub const PAGE_SIZE: u32 = 1024 * 1024;
/// The largest chunk (memcached `slab_chunk_max`): larger items span several chunks.
pub const CHUNK_MAX: u32 = PAGE_SIZE / 2;
/// Chunk sizes are multiples of this.
const CHUNK_ALIGN: u32 = 8;
/// memcached's `MAX_NUMBER_OF_SLAB_CLASSES`; class ids run from 1 to `CLASS_COUNT`.
pub const MAX_CLASSES: usize = 64;

/// The memory memcached accounts for one item (its `ITEM_ntotal`): header, key and its NUL,
/// client flags when non-zero, the value and its trailing `\r\n`, and the CAS value.
pub const fn item_total_size(key_len: usize, value_len: usize, flags: u32) -> usize {
    let flags_size = if flags == 0 { 0 } else { 4 };
    ITEM_HEADER_SIZE + key_len + 1 + flags_size + value_len + 2 + CAS_SIZE
}

/// The table of chunk sizes: `SIZES[id]` for class ids `1..=CLASS_COUNT` (index 0 unused).
const SIZES: ([u32; MAX_CLASSES], usize) = build_sizes();

/// The number of slab classes (the largest class id).
pub const CLASS_COUNT: usize = SIZES.1;

/// Builds the chunk size table the way memcached's `slabs_init` does with default settings.
const fn build_sizes() -> ([u32; MAX_CLASSES], usize) {
    let mut sizes = [0u32; MAX_CLASSES];
    let mut size = ITEM_HEADER_SIZE as u32 + MIN_CHUNK_EXTRA;
    let mut id = 1;
    while id < MAX_CLASSES - 1 {
        // memcached stops when the next size would reach chunk_max / factor (factor 1.25 = 5/4).
        if size as u64 * 5 >= CHUNK_MAX as u64 * 4 {
            break;
        }
        if size % CHUNK_ALIGN != 0 {
            size += CHUNK_ALIGN - size % CHUNK_ALIGN;
        }
        sizes[id] = size;
        // memcached multiplies by the double 1.25 and truncates; 5/4 is exact in binary.
        size = size * 5 / 4;
        id += 1;
    }
    sizes[id] = CHUNK_MAX;
    (sizes, id)
}

/// The slab class memcached would store an item of `total` bytes in, or `None` for 0 bytes.
/// Items larger than the largest chunk are "chunked" and reported in the largest class.
pub fn class_of(total: usize) -> Option<u8> {
    if total == 0 {
        return None;
    }
    // The table is short (about 40 classes) and sorted: a linear scan is fine.
    let id = (1..=CLASS_COUNT)
        .find(|&id| total <= SIZES.0[id] as usize)
        .unwrap_or(CLASS_COUNT);
    // CLASS_COUNT < MAX_CLASSES = 64, so every id fits in a u8.
    u8::try_from(id).ok()
}

/// The chunk size of class `id` (0 for an id outside the table).
pub fn chunk_size(id: u8) -> u32 {
    match usize::from(id) {
        id @ 1..=CLASS_COUNT => SIZES.0[id],
        _ => 0,
    }
}

/// How many chunks of class `id` fit in one page.
pub fn chunks_per_page(id: u8) -> u32 {
    match chunk_size(id) {
        0 => 0,
        size => PAGE_SIZE / size,
    }
}

/// The bytes an item of `total` bytes is charged against the memory limit: its chunk size, or,
/// for items larger than the largest chunk, its size rounded up to the chunk alignment.
pub fn charged_size(total: usize) -> usize {
    match class_of(total) {
        Some(id) if total <= CHUNK_MAX as usize => chunk_size(id) as usize,
        _ => total.div_ceil(CHUNK_ALIGN as usize) * CHUNK_ALIGN as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_table_matches_memcached_defaults() {
        // As printed by memcached 1.6 `stats slabs` / `memcached -vv` with default settings.
        let expected = [
            96, 120, 152, 192, 240, 304, 384, 480, 600, 752, 944, 1184, 1480, 1856, 2320, 2904,
            3632, 4544, 5680, 7104, 8880, 11104, 13880, 17352, 21696, 27120, 33904, 42384, 52984,
            66232, 82792, 103496, 129376, 161720, 202152, 252696, 315872, 394840, 524288,
        ];
        assert_eq!(CLASS_COUNT, expected.len());
        for (index, size) in expected.iter().enumerate() {
            assert_eq!(chunk_size(index as u8 + 1), *size, "class {}", index + 1);
        }
        assert_eq!(chunks_per_page(1), 10922);
        assert_eq!(chunks_per_page(4), 5461);
    }

    #[test]
    fn item_sizes_match_memcached() {
        // `me` on memcached 1.6.18: key "a", 1-byte value, flags 0 -> size=61, cls=1.
        assert_eq!(item_total_size(1, 1, 0), 61);
        assert_eq!(class_of(61), Some(1));
        // key "bb", 100-byte value, flags 1 -> 165 bytes, class 4 (192-byte chunks).
        assert_eq!(item_total_size(2, 100, 1), 165);
        assert_eq!(class_of(165), Some(4));
        assert_eq!(charged_size(165), 192);
        assert_eq!(class_of(0), None);
        assert_eq!(class_of(2_000_000), Some(CLASS_COUNT as u8));
        assert_eq!(charged_size(600_001), 600_008);
    }
}
