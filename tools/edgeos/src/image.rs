//! Writing the bootable image: an ELF64 file with only program headers, which QEMU's `-kernel`
//! loader (and any ELF boot loader) loads by physical address.

/// A piece of the image: `data` loaded at physical `paddr` (virtual `vaddr`), zero-filled up to
/// `mem_size`.
#[derive(Clone, Debug)]
pub struct ImageSegment {
    pub paddr: u64,
    pub vaddr: u64,
    pub mem_size: u64,
    pub data: Vec<u8>,
    /// ELF `PF_*` flags.
    pub flags: u32,
}

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const EM_AARCH64: u16 = 183;
const PT_LOAD: u32 = 1;
const ALIGN: u64 = 0x1000;

/// Serialises an aarch64 ELF executable with the given entry point and segments.
pub fn write_elf(entry: u64, segments: &[ImageSegment]) -> Vec<u8> {
    let mut out = Vec::new();
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    let phoff = EHDR_SIZE as u64;
    put16(&mut out, 2); // ET_EXEC
    put16(&mut out, EM_AARCH64);
    put32(&mut out, 1);
    put64(&mut out, entry);
    put64(&mut out, phoff);
    put64(&mut out, 0); // no section headers
    put32(&mut out, 0);
    put16(&mut out, EHDR_SIZE as u16);
    put16(&mut out, PHDR_SIZE as u16);
    put16(&mut out, segments.len() as u16);
    put16(&mut out, 0);
    put16(&mut out, 0);
    put16(&mut out, 0);
    debug_assert_eq!(out.len(), EHDR_SIZE);

    // File offsets: each segment's data at an offset congruent to its address modulo ALIGN.
    let mut offset = (EHDR_SIZE + PHDR_SIZE * segments.len()) as u64;
    let mut offsets = Vec::with_capacity(segments.len());
    for s in segments {
        let want = s.vaddr % ALIGN;
        let cur = offset % ALIGN;
        offset += (want + ALIGN - cur) % ALIGN;
        offsets.push(offset);
        offset += s.data.len() as u64;
    }
    for (s, off) in segments.iter().zip(&offsets) {
        put32(&mut out, PT_LOAD);
        put32(&mut out, s.flags);
        put64(&mut out, *off);
        put64(&mut out, s.vaddr);
        put64(&mut out, s.paddr);
        put64(&mut out, s.data.len() as u64);
        put64(&mut out, s.mem_size.max(s.data.len() as u64));
        put64(&mut out, ALIGN);
    }
    for (s, off) in segments.iter().zip(&offsets) {
        out.resize(*off as usize, 0);
        out.extend_from_slice(&s.data);
    }
    out
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::ProgramImage;

    #[test]
    fn written_image_reads_back() {
        let segs = vec![
            ImageSegment { paddr: 0x4020_0000, vaddr: 0xffff_0000_4020_0000, mem_size: 0x3000, data: vec![1; 0x1800], flags: 5 },
            ImageSegment { paddr: 0x4030_0000, vaddr: 0x4030_0000, mem_size: 0x10, data: vec![2; 0x10], flags: 4 },
        ];
        let bytes = write_elf(0x4020_0000, &segs);
        // Symbols are optional: an image without a symbol table is still an executable.
        let img = ProgramImage::parse(&bytes).expect("parses");
        assert_eq!(img.entry, 0x4020_0000);
        assert_eq!(img.segments.len(), 2);
        assert_eq!(img.segments[0].paddr, 0x4020_0000);
        assert_eq!(img.segments[0].mem_size, 0x3000);
        assert_eq!(img.segments[0].data, vec![1; 0x1800]);
        assert_eq!(img.segments[1].data, vec![2; 0x10]);
        assert!(img.segments[0].perms.execute && img.segments[0].perms.read && !img.segments[0].perms.write);
    }
}
