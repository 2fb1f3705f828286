//! Reading program images (PD and kernel ELF files) and patching their variables.

use std::collections::HashMap;

use bootinfo::layout::{align_up, PAGE_SIZE};
use bootinfo::Perms;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Sym};
use object::Endianness;

/// One loadable segment, with its file bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedSegment {
    /// Virtual address of the first byte (not necessarily page aligned).
    pub vaddr: u64,
    /// Physical address the ELF asks for (used for the kernel image).
    pub paddr: u64,
    pub mem_size: u64,
    pub data: Vec<u8>,
    pub perms: Perms,
}

impl LoadedSegment {
    /// The end of the segment's address range.
    pub fn end(&self) -> u64 {
        self.vaddr + self.mem_size
    }
    /// The page-aligned range of addresses the segment occupies.
    pub fn page_range(&self) -> (u64, u64) {
        (self.vaddr & !(PAGE_SIZE - 1), align_up(self.end(), PAGE_SIZE))
    }
}

/// A symbol's address and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub addr: u64,
    pub size: u64,
}

/// A parsed ELF executable.
#[derive(Clone, Debug)]
pub struct ProgramImage {
    pub entry: u64,
    pub segments: Vec<LoadedSegment>,
    pub symbols: HashMap<String, Symbol>,
}

/// Why a program image could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum ElfError {
    NotElf(String),
    WrongMachine(u16),
    NotExecutable,
    NoSegments,
    Malformed(String),
}

impl std::fmt::Display for ElfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ElfError::NotElf(e) => write!(f, "not a 64-bit little-endian ELF file ({e})"),
            ElfError::WrongMachine(m) => write!(f, "ELF machine {m} is not aarch64 ({})", elf::EM_AARCH64.0),
            ElfError::NotExecutable => write!(f, "ELF file is not an executable (ET_EXEC)"),
            ElfError::NoSegments => write!(f, "ELF file has no loadable segments"),
            ElfError::Malformed(e) => write!(f, "malformed ELF file: {e}"),
        }
    }
}

/// Why a symbol could not be patched.
#[derive(Debug, PartialEq, Eq)]
pub enum PatchError {
    NotFound,
    TooSmall { have: u64, need: u64 },
    NotInSegment,
    ReadOnly,
}

impl ProgramImage {
    /// Parses an aarch64 ELF64 executable.
    pub fn parse(bytes: &[u8]) -> Result<Self, ElfError> {
        let header = elf::FileHeader64::<Endianness>::parse(bytes).map_err(|e| ElfError::NotElf(e.to_string()))?;
        let endian = header.endian().map_err(|e| ElfError::NotElf(e.to_string()))?;
        if endian != Endianness::Little {
            return Err(ElfError::NotElf("big-endian".into()));
        }
        let machine = header.e_machine(endian);
        if machine != elf::EM_AARCH64 {
            return Err(ElfError::WrongMachine(machine.0));
        }
        if header.e_type(endian) != elf::ET_EXEC {
            return Err(ElfError::NotExecutable);
        }
        let malformed = |e: object::Error| ElfError::Malformed(e.to_string());
        let mut segments = Vec::new();
        for ph in header.program_headers(endian, bytes).map_err(malformed)? {
            if ph.p_type(endian) != elf::PT_LOAD || ph.p_memsz(endian) == 0 {
                continue;
            }
            let data = ph.data(endian, bytes).map_err(|_| ElfError::Malformed("segment data out of bounds".into()))?;
            let flags = ph.p_flags(endian).0;
            let mem_size = ph.p_memsz(endian);
            if (data.len() as u64) > mem_size {
                return Err(ElfError::Malformed("segment file size exceeds memory size".into()));
            }
            let vaddr = ph.p_vaddr(endian);
            if vaddr.checked_add(mem_size).is_none() {
                return Err(ElfError::Malformed("segment wraps the address space".into()));
            }
            segments.push(LoadedSegment {
                vaddr,
                paddr: ph.p_paddr(endian),
                mem_size,
                data: data.to_vec(),
                perms: Perms {
                    read: flags & elf::PF_R.0 != 0,
                    write: flags & elf::PF_W.0 != 0,
                    execute: flags & elf::PF_X.0 != 0,
                },
            });
        }
        if segments.is_empty() {
            return Err(ElfError::NoSegments);
        }
        let mut symbols = HashMap::new();
        let sections = header.sections(endian, bytes).map_err(malformed)?;
        let table = sections.symbols(endian, bytes, elf::SHT_SYMTAB).map_err(malformed)?;
        for sym in table.iter() {
            if sym.st_shndx(endian) == elf::SHN_UNDEF {
                continue;
            }
            if let Ok(name) = table.symbol_name(endian, sym) {
                if let Ok(name) = std::str::from_utf8(name) {
                    if !name.is_empty() {
                        symbols.insert(name.to_string(), Symbol { addr: sym.st_value(endian), size: sym.st_size(endian) });
                    }
                }
            }
        }
        Ok(ProgramImage { entry: header.e_entry(endian), segments, symbols })
    }

    /// Writes `value` into the initial contents of `symbol`. The symbol must be at least as large
    /// as `value` and lie in a writable... or any loadable segment (the value is an initial value,
    /// the PD may treat it as read-only). A symbol in the zero-filled tail of a segment (`.bss`)
    /// gets file bytes: the segment's file data grows to cover it.
    pub fn patch(&mut self, symbol: &str, value: &[u8]) -> Result<(), PatchError> {
        let sym = *self.symbols.get(symbol).ok_or(PatchError::NotFound)?;
        let need = value.len() as u64;
        if sym.size < need {
            return Err(PatchError::TooSmall { have: sym.size, need });
        }
        let seg = self
            .segments
            .iter_mut()
            .find(|s| sym.addr >= s.vaddr && sym.addr + need <= s.end())
            .ok_or(PatchError::NotInSegment)?;
        if seg.perms.execute {
            return Err(PatchError::ReadOnly);
        }
        let at = (sym.addr - seg.vaddr) as usize;
        if seg.data.len() < at + value.len() {
            seg.data.resize(at + value.len(), 0);
        }
        seg.data[at..at + value.len()].copy_from_slice(value);
        Ok(())
    }

    /// The address of a symbol, if the image has it.
    pub fn symbol(&self, name: &str) -> Option<Symbol> {
        self.symbols.get(name).copied()
    }
}
