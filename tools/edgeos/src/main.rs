//! `edgeos`: check, build and draw Microkit-style system descriptions.
//!
//! ```text
//! edgeos check system.xml
//! edgeos check --board x86_64_generic microkit-system.xml
//! edgeos build system.xml --board qemu-virt-aarch64 --search-path build/elf -o build/edgeos.img
//! edgeos graph system.xml -o system.dot --svg system.svg
//! ```
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use edgeos_tool::{boards, build, graph, load_description, Loaded};

#[derive(Parser)]
#[command(name = "edgeos", version, about = "Check, build and draw EdgeOS system descriptions (Microkit dialect)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How to print errors: `human` (source line and caret, the default) or `short`
    /// (one `file:line:col: error: message` line each, for scripts and editors).
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Short,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and validate a system description; print every error, exit 0 if valid.
    Check {
        /// The system description (system.xml).
        file: PathBuf,
        /// Validate for this board's architecture (aarch64 or x86_64 rules). Any Microkit 2.3.0
        /// aarch64 or x86_64 board, in either spelling (`qemu_virt_aarch64` = `qemu-virt-aarch64`),
        /// e.g. `x86_64_generic`, `rpi4b_4gb`, `odroidc4`.
        #[arg(long, default_value = "qemu-virt-aarch64")]
        board: String,
        /// Number of cores of the configuration (as Microkit's `smp-*` configurations): `cpu`
        /// attributes must name one of them, and domain scheduling needs exactly 1. Default: 1.
        #[arg(long, value_name = "N")]
        cores: Option<u32>,
    },
    /// Build one bootable image from a system description and the program images it names.
    Build {
        /// The system description (system.xml).
        file: PathBuf,
        /// Target board; images can be built for qemu-virt-aarch64 (or `qemu_virt_aarch64`).
        #[arg(long, default_value = "qemu-virt-aarch64")]
        board: String,
        /// Folders searched for program images (and the kernel), in order; the description's own
        /// folder is searched last.
        #[arg(long = "search-path", value_name = "DIR")]
        search_path: Vec<PathBuf>,
        /// The kernel ELF; default: `edgeos-kernel.elf` found on the search path.
        #[arg(long)]
        kernel: Option<PathBuf>,
        /// Where to write the image.
        #[arg(short, long)]
        output: PathBuf,
        /// Where to write the human-readable report; default: the image path with `.report.txt`.
        #[arg(short, long)]
        report: Option<PathBuf>,
        /// Build a test image: root PDs may end the run with an exit status (the kernel powers
        /// QEMU off and the status becomes QEMU's exit code, through semihosting). Sets the boot
        /// blob's FLAG_DEBUG_EXIT; never use it for a production image.
        #[arg(long)]
        debug_exit: bool,
    },
    /// Print the PD / channel / memory graph as Graphviz DOT.
    Graph {
        /// The system description (system.xml).
        file: PathBuf,
        /// Write DOT here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Also render an SVG with Graphviz `dot` (when installed).
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Validate for this board first, as `check --board` does.
        #[arg(long, default_value = "qemu-virt-aarch64")]
        board: String,
        /// Number of cores, as `check --cores`.
        #[arg(long, value_name = "N")]
        cores: Option<u32>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Prints diagnostics in the chosen format.
fn report(loaded: &Loaded, diags: &[sysdesc::Diagnostic], format: Format) {
    if diags.is_empty() {
        return;
    }
    match format {
        Format::Short => {
            for d in diags {
                eprintln!("{}", d.one_line());
            }
        }
        Format::Human => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            eprint!("{}", sysdesc::render(diags, &loaded.text, color));
        }
    }
}

fn error_summary(diags: &[sysdesc::Diagnostic], file: &Path) -> String {
    let errors = diags.iter().filter(|d| d.severity == sysdesc::Severity::Error).count();
    format!("{}: {} error{} found", file.display(), errors, if errors == 1 { "" } else { "s" })
}

/// The board `build` makes an image for.
fn board(name: &str) -> Result<&'static bootinfo::board::Board, String> {
    if let Some(board) = boards::buildable(name) {
        return Ok(board);
    }
    let what = if boards::find(name).is_some() { "cannot build images for board" } else { "unknown board" };
    Err(format!(
        "error: {what} '{name}' (images can be built for: {})\n  help: `edgeos check --board {name}` validates a description for any Microkit board",
        boards::buildable_names()
    ))
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Check { file, board: b, cores } => {
            let options = boards::check_options(&b, cores)?;
            let loaded = load_description(&file)?;
            match loaded.parse_with(&options) {
                Ok((_, warnings)) => {
                    report(&loaded, &warnings, cli.format);
                    println!("{}: ok", file.display());
                    Ok(())
                }
                Err(diags) => {
                    report(&loaded, &diags, cli.format);
                    Err(error_summary(&diags, &file))
                }
            }
        }
        Command::Build { file, board: b, search_path, kernel, output, report: report_path, debug_exit } => {
            let board = board(&b)?;
            let loaded = load_description(&file)?;
            let parse_options = sysdesc::Options { arch: sysdesc::Arch::Aarch64, cores: board.cores };
            let (system, warnings) = match loaded.parse_with(&parse_options) {
                Ok(ok) => ok,
                Err(diags) => {
                    report(&loaded, &diags, cli.format);
                    return Err(error_summary(&diags, &file));
                }
            };
            report(&loaded, &warnings, cli.format);
            let mut search = search_path;
            if let Some(dir) = file.parent() {
                search.push(if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir.to_path_buf() });
            }
            let options = build::Options { board, search_path: search, kernel, debug_exit };
            match build::build(&loaded, &system, &options) {
                Ok(built) => {
                    let report_path = report_path.unwrap_or_else(|| {
                        let mut p = output.clone().into_os_string();
                        p.push(".report.txt");
                        PathBuf::from(p)
                    });
                    write_file(&output, &built.image)?;
                    write_file(&report_path, built.report.as_bytes())?;
                    println!(
                        "built {} ({} KiB, {} PDs); report in {}",
                        output.display(),
                        built.image.len() / 1024,
                        system.protection_domains.len(),
                        report_path.display()
                    );
                    Ok(())
                }
                Err(build::BuildError::Description(diags)) => {
                    report(&loaded, &diags, cli.format);
                    Err(error_summary(&diags, &file))
                }
                Err(build::BuildError::Other(message)) => Err(format!("error: {message}")),
            }
        }
        Command::Graph { file, output, svg, board: b, cores } => {
            let options = boards::check_options(&b, cores)?;
            let loaded = load_description(&file)?;
            let system = match loaded.parse_with(&options) {
                Ok((system, _)) => system,
                Err(diags) => {
                    report(&loaded, &diags, cli.format);
                    return Err(error_summary(&diags, &file));
                }
            };
            let dot = graph::to_dot(&system);
            match &output {
                Some(path) => write_file(path, dot.as_bytes())?,
                None => print!("{dot}"),
            }
            if let Some(svg) = svg {
                graph::render_svg(&dot, &svg)?;
                eprintln!("wrote {}", svg.display());
            }
            Ok(())
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| format!("error: cannot create {}: {e}", dir.display()))?;
        }
    }
    std::fs::write(path, bytes).map_err(|e| format!("error: cannot write {}: {e}", path.display()))
}
