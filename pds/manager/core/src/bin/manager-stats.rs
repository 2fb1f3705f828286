//! `manager-stats`: prints the featherweight manager's statistics record
//! (`edgeos_manager_core::stats`) from a memory dump, or from a running QEMU through its human
//! monitor.
//!
//! ```text
//! manager-stats FILE [--offset BYTES]
//! manager-stats --qemu SOCKET (--paddr ADDR | --report build/edgeos.report.txt [--region manager_stats]) [--size BYTES]
//! ```
//!
//! For `--qemu`, start QEMU with a monitor socket, e.g.
//! `qemu/run.sh build/edgeos.img -monitor unix:/tmp/edgeos-mon.sock,server,nowait`; the region's
//! physical address is its `region manager_stats 0x...` line in the image report that
//! `edgeos build --report` writes. The record is read with `xp /Ngx PADDR`; a record caught while
//! the manager rewrote it (odd sequence) is read again.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use edgeos_manager_core::stats::{record_size, DecodeError, StatsRecord};

const USAGE: &str = "usage: manager-stats FILE [--offset BYTES]\n       manager-stats --qemu SOCKET (--paddr ADDR | --report REPORT [--region NAME]) [--size BYTES]";

fn number(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
        None => s.replace('_', "").parse(),
    };
    r.map_err(|_| format!("not a number: {s}"))
}

/// The physical address of region `name` in an image report (`region NAME 0xSTART..0xEND ...`).
fn region_paddr(report: &str, name: &str) -> Option<(u64, u64)> {
    report.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        if w.next() != Some("region") || w.next() != Some(name) {
            return None;
        }
        let (a, b) = w.next()?.split_once("..")?;
        let (a, b) = (number(a).ok()?, number(b).ok()?);
        Some((a, b.checked_sub(a)?))
    })
}

/// The 64-bit words of `xp /Ngx` output (lines `ADDRESS: 0x... 0x...`), in order.
fn parse_xp(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((addr, rest)) = line.trim_start_matches("(qemu) ").split_once(": ") else { continue };
        if addr.is_empty() || !addr.trim().chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        for w in rest.split_whitespace() {
            if let Some(h) = w.strip_prefix("0x") {
                if let Ok(v) = u64::from_str_radix(h, 16) {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// Reads `bytes` bytes of guest physical memory at `paddr` through the monitor at `socket`.
fn read_qemu(socket: &str, paddr: u64, bytes: usize) -> Result<Vec<u8>, String> {
    let words = bytes.div_ceil(8);
    let mut s = UnixStream::connect(socket).map_err(|e| format!("{socket}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
    writeln!(s, "xp /{words}gx {paddr:#x}").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = String::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.to_string()),
        }
        if parse_xp(&text).len() >= words || Instant::now() > deadline {
            break;
        }
    }
    let w = parse_xp(&text);
    if w.len() < words {
        return Err(format!("the monitor answered {} of {words} words:\n{text}", w.len()));
    }
    Ok(w[..words].iter().flat_map(|v| v.to_le_bytes()).take(bytes).collect())
}

fn run(args: &[String]) -> Result<StatsRecord, String> {
    let mut file = None;
    let (mut offset, mut qemu, mut paddr, mut report, mut size) = (0u64, None, None, None, None);
    let mut region = "manager_stats".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--offset" => offset = number(&val()?)?,
            "--qemu" => qemu = Some(val()?),
            "--paddr" => paddr = Some(number(&val()?)?),
            "--report" => report = Some(val()?),
            "--region" => region = val()?,
            "--size" => size = Some(number(&val()?)? as usize),
            "-h" | "--help" => return Err(USAGE.into()),
            _ if file.is_none() && !a.starts_with("--") => file = Some(a.clone()),
            _ => return Err(format!("unexpected argument {a}\n{USAGE}")),
        }
    }
    if let Some(f) = file {
        let bytes = std::fs::read(&f).map_err(|e| format!("{f}: {e}"))?;
        let at = (offset as usize).min(bytes.len());
        return StatsRecord::decode(&bytes[at..]).map_err(|e| format!("{f}: {e}"));
    }
    let Some(socket) = qemu else { return Err(USAGE.into()) };
    let (addr, region_size) = match (paddr, report) {
        (Some(p), _) => (p, None),
        (None, Some(r)) => {
            let text = std::fs::read_to_string(&r).map_err(|e| format!("{r}: {e}"))?;
            let (a, s) = region_paddr(&text, &region).ok_or_else(|| format!("{r}: no region {region}"))?;
            (a, Some(s as usize))
        }
        (None, None) => return Err(format!("--qemu needs --paddr or --report\n{USAGE}")),
    };
    let size = size.or(region_size).unwrap_or(record_size(16)).min(1 << 20);
    for _ in 0..10 {
        match StatsRecord::decode(&read_qemu(&socket, addr, size)?) {
            Err(DecodeError::Torn) => std::thread::sleep(Duration::from_millis(20)),
            r => return r.map_err(|e| format!("{addr:#x}: {e}")),
        }
    }
    Err("the record stayed torn over 10 reads".into())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(r) => {
            print!("{r}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("manager-stats: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeos_manager_core::{parse, Manager};

    fn sample() -> StatsRecord {
        let s = parse(b"service echo fork 1 ports 7 protocols udp policy shared pool 2").unwrap();
        let mut m = Manager::new(&s, 62_500_000);
        m.pooled(0, Ok(0), 3000, 0);
        m.record(8, 12345)
    }

    #[test]
    fn decodes_a_file_at_an_offset() {
        let r = sample();
        let mut bytes = vec![0x55u8; 100];
        let mut rec = vec![0u8; 4096];
        r.encode(&mut rec).unwrap();
        bytes.extend_from_slice(&rec);
        let path = std::env::temp_dir().join(format!("manager-stats-test-{}.bin", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let p = path.to_string_lossy().to_string();
        let got = run(&[p.clone(), "--offset".into(), "100".into()]).unwrap();
        assert_eq!(got, r);
        assert!(got.to_string().contains("service echo (fork 1, ports 7-7 udp, policy shared, idle 0 s, pool 2)"));
        assert!(run(std::slice::from_ref(&p)).unwrap_err().contains("bad magic"));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn monitor_output_and_reports() {
        let text = "QEMU 10.0.0 monitor - type 'help' for more information\r\n(qemu) xp /3gx 0x40000000\r\n\
                    0000000040000000: 0x0000000153474d45 0x0000000000000002\r\n0000000040000010: 0x00000000000000ff\r\n(qemu) ";
        assert_eq!(parse_xp(text), vec![0x0000_0001_5347_4d45, 2, 0xff]);
        let report = "pd manager ...\nregion manager_stats 0x0040123000..0x0040125000 (8 KiB, 2 pages of 4 KiB, allocated)\n";
        assert_eq!(region_paddr(report, "manager_stats"), Some((0x40123000, 0x2000)));
        assert_eq!(region_paddr(report, "other"), None);
        assert_eq!(number("0x1_000").unwrap(), 0x1000);
    }
}
