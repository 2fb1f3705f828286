//! The boards EdgeOS builds for: one place for each board's memory map, read by the image
//! builder (to lay out memory and check fixed addresses) and by the kernel (devices it drives).

/// What the tool and the kernel need to know about a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    /// The name used on the command line (`--board`).
    pub name: &'static str,
    /// First byte of RAM.
    pub ram_base: u64,
    /// Bytes of RAM the image may assume (the QEMU run configuration gives at least this).
    pub ram_size: u64,
    /// Where the kernel image is loaded (its first segment's physical address).
    pub kernel_paddr: u64,
    /// The PL011 console.
    pub uart: u64,
    /// The GIC distributor.
    pub gic_distributor: u64,
    /// The GICv2 CPU interface.
    pub gic_cpu_interface: u64,
    /// The GICv3 redistributors.
    pub gic_redistributor: u64,
    /// The PL031 real-time clock, if any.
    pub rtc: Option<u64>,
    /// Physical ranges of device registers that PDs may map (start, size).
    pub device_ranges: &'static [(u64, u64)],
    /// The interrupt the kernel keeps for its own timer (never granted to a PD).
    pub kernel_timer_irq: u32,
    /// Number of cores.
    pub cores: u32,
}

/// QEMU `virt` for aarch64, as started by `qemu/run.sh` (1 GiB of RAM).
pub const QEMU_VIRT_AARCH64: Board = Board {
    name: "qemu-virt-aarch64",
    ram_base: 0x4000_0000,
    ram_size: 0x4000_0000,
    kernel_paddr: 0x4020_0000,
    uart: 0x0900_0000,
    gic_distributor: 0x0800_0000,
    gic_cpu_interface: 0x0801_0000,
    gic_redistributor: 0x080a_0000,
    rtc: Some(0x0901_0000),
    device_ranges: &[(0x0800_0000, 0x0100_0000), (0x0900_0000, 0x0100_0000), (0x0a00_0000, 0x0000_4000)],
    // The EL1 virtual timer's PPI; the physical timer (30) is left to PDs, as in seL4.
    kernel_timer_irq: 27,
    cores: 1,
};

/// Every supported board.
pub const BOARDS: &[Board] = &[QEMU_VIRT_AARCH64];

/// Looks a board up by its command-line name.
pub fn by_name(name: &str) -> Option<&'static Board> {
    BOARDS.iter().find(|b| b.name == name)
}

impl Board {
    /// True if `[paddr, paddr + size)` lies in RAM.
    pub fn in_ram(&self, paddr: u64, size: u64) -> bool {
        paddr >= self.ram_base && paddr.checked_add(size).is_some_and(|e| e <= self.ram_base + self.ram_size)
    }
    /// True if `[paddr, paddr + size)` lies inside one device range.
    pub fn in_devices(&self, paddr: u64, size: u64) -> bool {
        self.device_ranges
            .iter()
            .any(|&(s, n)| paddr >= s && paddr.checked_add(size).is_some_and(|e| e <= s + n))
    }
}
