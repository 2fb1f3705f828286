//! `edgeos graph`: the system as a Graphviz graph. PDs are boxes (nested children inside a
//! cluster with their parent), memory regions are cylinders joined to the PDs that map them
//! (labelled with perms), channels are edges (an arrow for the protected-call direction), and
//! IRQs are small diamonds pointing into their PD. Templates of featherweight processes are 3-D
//! boxes labelled with their instance ceiling (`×max_instances`) and instance regions; channel
//! arrays, instance windows (dashed) and fork grants (dotted) are edges from the static PDs.

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

fn perms(p: &sysdesc::Perms) -> String {
    format!("{}{}{}", if p.r { "r" } else { "" }, if p.w { "w" } else { "" }, if p.x { "x" } else { "" })
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
    for (i, t) in s.templates.iter().enumerate() {
        let max = s.fork_of(i).map_or(0, |(_, f)| f.max_instances);
        let mut label = format!("{} \u{d7}{max}\nprio {}", t.name, t.priority);
        if t.passive {
            label.push_str(", passive");
        }
        for r in &t.instance_regions {
            label.push_str(&format!("\n{}: {:#x} bytes each", r.name, r.size));
        }
        let _ = writeln!(w, "  tpl{i} [shape=box3d, style=filled, fillcolor=\"#efe0ff\", label={}];", quote(&label));
        for tm in &t.maps {
            if let sysdesc::RegionRef::Static(r) = tm.target {
                let _ = writeln!(w, "  tpl{i} -> mr{r} [arrowhead=none, color=\"#3c8c3c\", label={}];", quote(&perms(&tm.map.perms)));
            }
        }
    }
    for (i, pd) in s.protection_domains.iter().enumerate() {
        for win in &pd.instance_windows {
            let label = format!("window {} {}\n{:#x} + i*{:#x}", win.mr, perms(&win.perms), win.vaddr, win.stride);
            let _ = writeln!(w, "  pd{i} -> tpl{} [style=dashed, color=\"#3c8c3c\", arrowhead=none, label={}];", win.template_index, quote(&label));
        }
        for f in &pd.forks {
            let label = format!("fork #{} \u{2264}{}, {:#x} bytes", f.id, f.max_instances, f.memory);
            let _ = writeln!(w, "  pd{i} -> tpl{} [style=dotted, color=gray40, label={}];", f.template_index, quote(&label));
        }
    }
    for a in &s.channel_arrays {
        let (p, t) = (&a.pd_end, &a.template_end);
        let label = quote(&format!("{}:{} (array)", p.id, t.id));
        let (from, to, style) = match (p.pp, t.pp) {
            (true, _) => (format!("pd{}", p.pd_index), format!("tpl{}", t.template_index), "dir=forward, penwidth=2, color=\"#1f4f99\""),
            (_, true) => (format!("tpl{}", t.template_index), format!("pd{}", p.pd_index), "dir=forward, penwidth=2, color=\"#1f4f99\""),
            _ => (format!("pd{}", p.pd_index), format!("tpl{}", t.template_index), "dir=both, arrowsize=0.6"),
        };
        let _ = writeln!(w, "  {from} -> {to} [{style}, label={label}];");
    }
    for (i, pd) in s.protection_domains.iter().enumerate() {
        for m in &pd.maps {
            if let Some(r) = s.memory_regions.iter().position(|r| r.name == m.mr) {
                let _ = writeln!(w, "  pd{i} -> mr{r} [arrowhead=none, color=\"#3c8c3c\", label={}];", quote(&perms(&m.perms)));
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
