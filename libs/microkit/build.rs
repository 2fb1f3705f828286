//! Makes every PD that depends on this runtime link with `pd.ld`.
//!
//! `cargo:rustc-link-arg` from a library's build script only reaches the library's own targets,
//! so the script is handed to the final link as a "library" instead: a copy named
//! `libedgeos_pd_layout.a` in a search directory, linked with `-l` (unbundled). The linker sees
//! that the file is not an archive and reads it as a linker script. Only for bare-metal targets:
//! host builds (tests, docs) link normally.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=pd.ld");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "none" {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("pd.ld");
    std::fs::copy(&script, out.join("libedgeos_pd_layout.a")).expect("copy pd.ld");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static:-bundle=edgeos_pd_layout");
}
