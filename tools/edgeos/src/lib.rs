//! The EdgeOS system tool as a library: loading descriptions, building images, drawing graphs.
//! The `edgeos` binary (main.rs) is a thin command-line layer over it.
#![forbid(unsafe_code)]

pub mod boards;
pub mod build;
pub mod elf;
pub mod graph;
pub mod image;
mod report;

use std::path::{Path, PathBuf};

/// A system description read from disk, kept with its text so that diagnostics can quote it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    /// The name diagnostics use (the path as given).
    pub name: String,
    pub text: String,
}

/// Reads a description file; the error is a ready-to-print message.
pub fn load_description(path: &Path) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
    Ok(Loaded { path: path.to_path_buf(), name: path.display().to_string(), text })
}

impl Loaded {
    /// Parses and validates the description with aarch64 rules (every board so far is aarch64).
    pub fn parse(&self) -> Result<(sysdesc::SystemDescription, Vec<sysdesc::Diagnostic>), Vec<sysdesc::Diagnostic>> {
        sysdesc::parse(&self.name, &self.text, sysdesc::Arch::Aarch64)
    }

    /// Parses and validates the description with explicit options (architecture, cores).
    pub fn parse_with(
        &self,
        options: &sysdesc::Options,
    ) -> Result<(sysdesc::SystemDescription, Vec<sysdesc::Diagnostic>), Vec<sysdesc::Diagnostic>> {
        sysdesc::parse_with(&self.name, &self.text, options)
    }
}
