//! Test helpers: writing small aarch64 ELF executables with chosen segments and symbols, so the
//! image builder can be tested without a cross-compiled program, and a folder to build in.

#![allow(dead_code)]

use std::path::Path;

use edgeos_tool::build::{build, BuildError, Options};
use edgeos_tool::elf::ProgramImage;
use edgeos_tool::Loaded;

/// A segment of a synthetic program: (vaddr, mem_size, data, flags PF_R=4 PF_W=2 PF_X=1).
pub struct Seg {
    pub vaddr: u64,
    pub mem_size: u64,
    pub data: Vec<u8>,
    pub flags: u32,
}

/// Writes an ELF64 aarch64 executable with `segs` and absolute symbols `(name, addr, size)`.
pub fn elf(entry: u64, segs: &[Seg], symbols: &[(&str, u64, u64)]) -> Vec<u8> {
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24]; // null symbol
    for (name, addr, size) in symbols {
        let off = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        symtab.extend_from_slice(&off.to_le_bytes());
        symtab.push(0x11); // STB_GLOBAL, STT_OBJECT
        symtab.push(0);
        symtab.extend_from_slice(&0xfff1u16.to_le_bytes()); // SHN_ABS
        symtab.extend_from_slice(&addr.to_le_bytes());
        symtab.extend_from_slice(&size.to_le_bytes());
    }
    let shstrtab = b"\0.symtab\0.strtab\0.shstrtab\0".to_vec();
    let phnum = segs.len();
    let mut out = vec![0u8; 64 + 56 * phnum];
    let mut seg_offsets = Vec::new();
    for s in segs {
        while out.len() as u64 % 0x1000 != s.vaddr % 0x1000 {
            out.push(0);
        }
        seg_offsets.push(out.len() as u64);
        out.extend_from_slice(&s.data);
    }
    let place = |out: &mut Vec<u8>, bytes: &[u8]| {
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        let at = out.len() as u64;
        out.extend_from_slice(bytes);
        at
    };
    let symtab_off = place(&mut out, &symtab);
    let strtab_off = place(&mut out, &strtab);
    let shstrtab_off = place(&mut out, &shstrtab);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let shoff = out.len() as u64;
    let sh = |name: u32, ty: u32, off: u64, size: u64, link: u32, entsize: u64| {
        let mut h = Vec::new();
        h.extend_from_slice(&name.to_le_bytes());
        h.extend_from_slice(&ty.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes()); // flags
        h.extend_from_slice(&0u64.to_le_bytes()); // addr
        h.extend_from_slice(&off.to_le_bytes());
        h.extend_from_slice(&size.to_le_bytes());
        h.extend_from_slice(&link.to_le_bytes());
        h.extend_from_slice(&(if ty == 2 { 1u32 } else { 0 }).to_le_bytes()); // info: first global
        h.extend_from_slice(&8u64.to_le_bytes());
        h.extend_from_slice(&entsize.to_le_bytes());
        h
    };
    let headers = [
        vec![0u8; 64],
        sh(1, 2, symtab_off, symtab.len() as u64, 2, 24),
        sh(9, 3, strtab_off, strtab.len() as u64, 0, 0),
        sh(17, 3, shstrtab_off, shstrtab.len() as u64, 0, 0),
    ];
    for h in headers {
        out.extend_from_slice(&h);
    }
    // File header.
    let mut eh = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    eh.extend_from_slice(&2u16.to_le_bytes());
    eh.extend_from_slice(&183u16.to_le_bytes());
    eh.extend_from_slice(&1u32.to_le_bytes());
    eh.extend_from_slice(&entry.to_le_bytes());
    eh.extend_from_slice(&64u64.to_le_bytes());
    eh.extend_from_slice(&shoff.to_le_bytes());
    eh.extend_from_slice(&0u32.to_le_bytes());
    eh.extend_from_slice(&64u16.to_le_bytes());
    eh.extend_from_slice(&56u16.to_le_bytes());
    eh.extend_from_slice(&(phnum as u16).to_le_bytes());
    eh.extend_from_slice(&64u16.to_le_bytes());
    eh.extend_from_slice(&4u16.to_le_bytes());
    eh.extend_from_slice(&3u16.to_le_bytes());
    out[..64].copy_from_slice(&eh);
    for (i, (s, off)) in segs.iter().zip(&seg_offsets).enumerate() {
        let mut ph = Vec::new();
        ph.extend_from_slice(&1u32.to_le_bytes());
        ph.extend_from_slice(&s.flags.to_le_bytes());
        ph.extend_from_slice(&off.to_le_bytes());
        ph.extend_from_slice(&s.vaddr.to_le_bytes());
        ph.extend_from_slice(&s.vaddr.to_le_bytes());
        ph.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
        ph.extend_from_slice(&s.mem_size.to_le_bytes());
        ph.extend_from_slice(&0x1000u64.to_le_bytes());
        out[64 + 56 * i..64 + 56 * (i + 1)].copy_from_slice(&ph);
    }
    out
}

/// A typical PD program: code at 0x200000, data at 0x201000 with the runtime's variables and an
/// IPC buffer page, plus the extra `symbols` (each 8 bytes, in the data segment).
pub fn pd_program(extra: &[&str]) -> Vec<u8> {
    let mut symbols: Vec<(&str, u64, u64)> = vec![
        ("microkit_name", 0x201000, 64),
        ("microkit_passive", 0x201040, 1),
        ("microkit_irqs", 0x201048, 8),
        ("microkit_notifications", 0x201050, 8),
        ("microkit_pps", 0x201058, 8),
        ("__sel4_ipc_buffer_obj", 0x203000, 0x1000),
    ];
    for (i, name) in extra.iter().enumerate() {
        symbols.push((name, 0x201100 + 8 * i as u64, 8));
    }
    let segs = [
        Seg { vaddr: 0x200000, mem_size: 0x100, data: vec![0xd5; 0x100], flags: 5 },
        Seg { vaddr: 0x201000, mem_size: 0x3000, data: vec![0; 0x200], flags: 6 },
    ];
    elf(0x200000, &segs, &symbols)
}

/// A kernel: one RX segment at the board's load address, linked high.
pub fn kernel() -> Vec<u8> {
    let segs = [Seg { vaddr: 0x4020_0000, mem_size: 0x5000, data: vec![0x11; 0x4000], flags: 5 }];
    elf(0x4020_0000, &segs, &[])
}

/// A temporary folder with a kernel and programs, and builds of descriptions against it.
pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("edgeos-kernel.elf"), kernel()).unwrap();
        Env { dir }
    }
    pub fn program(&self, name: &str, bytes: Vec<u8>) {
        std::fs::write(self.dir.path().join(name), bytes).unwrap();
    }
    pub fn build(&self, xml: &str) -> Result<(Vec<u8>, String), BuildError> {
        self.build_with(xml, false)
    }
    /// Builds a test image (`--debug-exit`) when `debug_exit`.
    pub fn build_with(&self, xml: &str, debug_exit: bool) -> Result<(Vec<u8>, String), BuildError> {
        let loaded = Loaded { path: "system.xml".into(), name: "system.xml".into(), text: xml.to_string() };
        let (system, _) = loaded.parse().unwrap_or_else(|d| panic!("invalid test description: {d:?}"));
        let options = Options {
            board: &bootinfo::board::QEMU_VIRT_AARCH64,
            search_path: vec![self.dir.path().to_path_buf()],
            kernel: None,
            debug_exit,
        };
        build(&loaded, &system, &options).map(|b| (b.image, b.report))
    }
    /// The located errors of a build that must fail on the description.
    pub fn diagnostics(&self, xml: &str) -> Vec<sysdesc::Diagnostic> {
        match self.build(xml) {
            Ok(_) => panic!("build unexpectedly succeeded"),
            Err(BuildError::Description(d)) => d,
            Err(BuildError::Other(m)) => panic!("expected located errors, got: {m}"),
        }
    }
    pub fn errors(&self, xml: &str) -> Vec<String> {
        match self.build(xml) {
            Ok(_) => panic!("build unexpectedly succeeded"),
            Err(BuildError::Description(d)) => d.iter().map(|d| d.one_line()).collect(),
            Err(BuildError::Other(m)) => vec![m],
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The blob segment of a built image (right after the kernel) and the image's segments.
pub fn blob_of(image: &[u8]) -> (Vec<u8>, ProgramImage) {
    let img = ProgramImage::parse(image).expect("image is an ELF");
    let blob = img.segments.iter().find(|s| s.data.starts_with(b"EDGEBOOT")).expect("blob segment").data.clone();
    (blob, img)
}
