//! What `--board` may name: EdgeOS's own boards, which `build` makes images for, and the rest of
//! Microkit 2.3.0's boards, whose descriptions `check` validates so that a Microkit user can
//! check an existing system.xml unchanged.
//!
//! Names match with `-` and `_` taken as the same character, so Microkit's spelling
//! (`qemu_virt_aarch64`) names the same board as EdgeOS's (`qemu-virt-aarch64`).

use bootinfo::board::Board;
use sysdesc::Arch;

/// A board `check` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardInfo {
    /// The board's name as Microkit spells it.
    pub microkit_name: &'static str,
    /// Its architecture, or `None` for one the description checker has no rules for (RISC-V).
    pub arch: Option<Arch>,
    /// The most cores a Microkit configuration of the board has (its `smp-*` configurations;
    /// 1 when it has none).
    pub max_cores: u32,
}

const fn board(microkit_name: &'static str, arch: Option<Arch>, max_cores: u32) -> BoardInfo {
    BoardInfo { microkit_name, arch, max_cores }
}

const ARM: Option<Arch> = Some(Arch::Aarch64);
const X86: Option<Arch> = Some(Arch::X86_64);

/// Microkit 2.3.0's boards (its SDK build script's list) with their SMP core counts.
pub const MICROKIT_BOARDS: &[BoardInfo] = &[
    board("tqma8xqp1gb", ARM, 1),
    board("zcu102", ARM, 1),
    board("maaxboard", ARM, 4),
    board("imx8mm_evk", ARM, 1),
    board("imx8mp_evk", ARM, 1),
    board("imx8mq_evk", ARM, 1),
    board("imx8mp_iotgate", ARM, 1),
    board("odroidc2", ARM, 1),
    board("odroidc4", ARM, 4),
    board("ultra96v2", ARM, 1),
    board("qemu_virt_aarch64", ARM, 4),
    board("qemu_virt_riscv64", None, 4),
    board("rpi4b_1gb", ARM, 1),
    board("rpi4b_2gb", ARM, 1),
    board("rpi4b_4gb", ARM, 1),
    board("rpi4b_8gb", ARM, 1),
    board("rockpro64", ARM, 1),
    board("hifive_p550", None, 4),
    board("star64", None, 4),
    board("ariane", None, 1),
    board("cheshire", None, 1),
    board("serengeti", None, 1),
    board("x86_64_generic", X86, 1),
    board("x86_64_generic_vtx", X86, 1),
];

fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y || (x == b'-' || x == b'_') && (y == b'-' || y == b'_'))
}

/// The EdgeOS board `name` stands for, if `build` can build for it.
pub fn buildable(name: &str) -> Option<&'static Board> {
    bootinfo::board::BOARDS.iter().find(|b| same_name(b.name, name))
}

/// The names of the boards `build` can build for.
pub fn buildable_names() -> String {
    bootinfo::board::BOARDS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
}

/// The board `name` stands for (in either spelling).
pub fn find(name: &str) -> Option<&'static BoardInfo> {
    MICROKIT_BOARDS.iter().find(|b| same_name(b.microkit_name, name))
}

/// Every board name `check` accepts, for messages.
pub fn known_names() -> String {
    MICROKIT_BOARDS.iter().filter(|b| b.arch.is_some()).map(|b| b.microkit_name).collect::<Vec<_>>().join(", ")
}

/// The options a description is checked with on board `name` with `cores` cores (default: 1),
/// or a ready-to-print error.
pub fn check_options(name: &str, cores: Option<u32>) -> Result<sysdesc::Options, String> {
    let Some(b) = find(name) else {
        return Err(format!(
            "error: unknown board '{name}'\n  help: known boards: {}; '-' and '_' are interchangeable (qemu-virt-aarch64 = qemu_virt_aarch64)",
            known_names()
        ));
    };
    let Some(arch) = b.arch else {
        return Err(format!(
            "error: board '{name}' is RISC-V, and EdgeOS checks descriptions for aarch64 and x86_64 only\n  help: pass an aarch64 or x86_64 board: {}",
            known_names()
        ));
    };
    let cores = cores.unwrap_or(1);
    if cores == 0 || cores > b.max_cores {
        let plural = if b.max_cores == 1 { "core" } else { "cores" };
        return Err(format!(
            "error: --cores {cores} does not fit board '{name}', whose configurations have 1..={} {plural}\n  help: pass --cores 1{}",
            b.max_cores,
            if b.max_cores > 1 { format!(" to --cores {}", b.max_cores) } else { " or leave it out".to_string() }
        ));
    }
    Ok(sysdesc::Options { arch, cores })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_name_the_same_board() {
        assert_eq!(find("qemu-virt-aarch64"), find("qemu_virt_aarch64"));
        assert_eq!(buildable("qemu_virt_aarch64").map(|b| b.name), Some("qemu-virt-aarch64"));
        assert!(buildable("x86_64_generic").is_none());
        assert!(find("qemu_virt_aarch6").is_none());
    }

    #[test]
    fn options_follow_the_board() {
        assert_eq!(check_options("x86_64_generic", None), Ok(sysdesc::Options { arch: Arch::X86_64, cores: 1 }));
        assert_eq!(check_options("qemu-virt-aarch64", Some(4)), Ok(sysdesc::Options { arch: Arch::Aarch64, cores: 4 }));
        assert!(check_options("qemu-virt-aarch64", Some(5)).unwrap_err().contains("1..=4 cores"));
        assert!(check_options("x86_64_generic", Some(0)).is_err());
        assert!(check_options("star64", None).unwrap_err().contains("RISC-V"));
        assert!(check_options("pdp11", None).unwrap_err().starts_with("error: unknown board 'pdp11'"));
    }
}
