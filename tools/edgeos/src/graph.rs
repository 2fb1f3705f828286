//! `edgeos graph`: the system as a Graphviz graph. PDs are boxes (nested children inside a
//! cluster with their parent), memory regions are cylinders joined to the PDs that map them
//! (labelled with perms), channels are edges (an arrow for the protected-call direction), and
//! IRQs are small diamonds pointing into their PD.

use std::fmt::Write;
use std::path::Path;
use std::process::Command;

use sysdesc::SystemDescription;

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The description as DOT text.
pub fn to_dot(s: &SystemDescription) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "digraph system {{");
    let _ = writeln!(w, "  rankdir=LR;");
    let _ = writeln!(w, "  node [fontname=\"Helvetica\", fontsize=11];");
    let _ = writeln!(w, "  edge [fontname=\"Helvetica\", fontsize=9];");
    for (i, pd) in s.protection_domains.iter().enumerate() {
        let mut label = format!("{}\nprio {}", pd.name, pd.priority);
        if pd.passive {
            label.push_str(", passive");
        }
        let _ = writeln!(
            w,
            "  pd{i} [shape=box, style=\"rounded,filled\", fillcolor={}, label={}];",
            if pd.parent.is_some() { "\"#fde9c9\"" } else { "\"#d6e6ff\"" },
            quote(&label)
        );
        if let Some(p) = pd.parent {
            let _ = writeln!(w, "  pd{p} -> pd{i} [style=dashed, label={}, color=gray40];", quote(&format!("child {}", pd.child_id.unwrap_or(0))));
        }
        for irq in &pd.irqs {
            if let sysdesc::Irq::Arm { irq: n, id, .. } = irq {
                let _ = writeln!(w, "  irq{i}_{id} [shape=diamond, style=filled, fillcolor=\"#ffd6d6\", label=\"IRQ {n}\"];");
                let _ = writeln!(w, "  irq{i}_{id} -> pd{i} [label=\"id {id}\"];");
            }
        }
    }
    for (i, mr) in s.memory_regions.iter().enumerate() {
        let mut label = format!("{}\n{:#x} bytes", mr.name, mr.size);
        if let Some(p) = mr.phys_addr {
            label.push_str(&format!("\n@ {p:#x}"));
        }
        let _ = writeln!(w, "  mr{i} [shape=cylinder, style=filled, fillcolor=\"#e4f5e1\", label={}];", quote(&label));
    }
    for (i, pd) in s.protection_domains.iter().enumerate() {
        for m in &pd.maps {
            if let Some(r) = s.memory_regions.iter().position(|r| r.name == m.mr) {
                let perms = format!("{}{}{}", if m.perms.r { "r" } else { "" }, if m.perms.w { "w" } else { "" }, if m.perms.x { "x" } else { "" });
                let _ = writeln!(w, "  pd{i} -> mr{r} [arrowhead=none, color=\"#3c8c3c\", label={}];", quote(&perms));
            }
        }
    }
    for c in &s.channels {
        let [a, b] = &c.ends;
        let label = quote(&format!("{}:{}", a.id, b.id));
        let (from, to, style) = match (a.pp, b.pp) {
            (true, _) => (a.pd_index, b.pd_index, "dir=forward, penwidth=2, color=\"#1f4f99\""),
            (_, true) => (b.pd_index, a.pd_index, "dir=forward, penwidth=2, color=\"#1f4f99\""),
            _ => (a.pd_index, b.pd_index, "dir=both, arrowsize=0.6"),
        };
        let _ = writeln!(w, "  pd{from} -> pd{to} [{style}, label={label}];");
    }
    let _ = writeln!(w, "}}");
    out
}

/// Renders DOT to SVG with Graphviz; a clear error when `dot` is missing.
pub fn render_svg(dot: &str, svg: &Path) -> Result<(), String> {
    use std::io::Write as _;
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .arg("-o")
        .arg(svg)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("error: cannot run Graphviz `dot` ({e}); install graphviz (tools/install-deps.sh does)"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(dot.as_bytes())
        .map_err(|e| format!("error: writing to dot: {e}"))?;
    let status = child.wait().map_err(|e| format!("error: dot: {e}"))?;
    if !status.success() {
        return Err(format!("error: dot failed ({status})"));
    }
    Ok(())
}
