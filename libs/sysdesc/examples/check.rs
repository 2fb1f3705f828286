//! Checks a system description and prints its diagnostics rustc-style:
//! `cargo run -p edgeos-sysdesc --example check -- system.xml [x86_64]`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: check FILE [aarch64|x86_64]");
        return ExitCode::from(2);
    };
    let arch = match args.next().as_deref() {
        Some("x86_64") => sysdesc::Arch::X86_64,
        _ => sysdesc::Arch::Aarch64,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("error: cannot read {path}: {err}");
            return ExitCode::from(2);
        }
    };
    match sysdesc::parse(&path, &text, arch) {
        Ok((desc, warnings)) => {
            eprint!("{}", sysdesc::render(&warnings, &text, false));
            let templates = if desc.templates.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} templates, {} channel arrays",
                    desc.templates.len(),
                    desc.channel_arrays.len()
                )
            };
            println!(
                "{path}: ok ({} protection domains, {} memory regions, {} channels{templates})",
                desc.protection_domains.len(),
                desc.memory_regions.len(),
                desc.channels.len()
            );
            ExitCode::SUCCESS
        }
        Err(diags) => {
            eprint!("{}", sysdesc::render(&diags, &text, false));
            ExitCode::FAILURE
        }
    }
}
