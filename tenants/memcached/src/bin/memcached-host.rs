//! `memcached-host`: the EdgeOS memcached library served over the host's TCP and UDP sockets,
//! so real clients and Debian's memcached can be compared with it before it runs in a tenant.
//!
//! One thread per TCP connection, one for UDP and one for the expiry crawler, all sharing one
//! store behind a mutex: simple rather than fast, since this exists for testing.
//!
//! ```text
//! memcached-host [--listen ADDR] [--port N] [--udp-port N] [--memory-limit-mb N]
//!                [--item-size-max BYTES] [--disable-evictions] [--strict-keys]
//! ```

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memcached::{udp, Action, Config, Connection, Store};

/// How many slots the crawler examines per second.
const CRAWL_BUDGET: usize = 10_000;

/// Command-line options.
struct Options {
    listen: String,
    port: u16,
    udp_port: u16,
    config: Config,
}

const USAGE: &str = "usage: memcached-host [--listen ADDR] [--port N] [--udp-port N] \
[--memory-limit-mb N] [--item-size-max BYTES] [--disable-evictions] [--strict-keys]";

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1".into(),
        port: 11211,
        udp_port: 0,
        config: Config::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
            text.parse()
                .map_err(|_| format!("{name}: `{text}` is not a valid number\n{USAGE}"))
        }
        match arg.as_str() {
            "--listen" | "-l" => options.listen = value(&arg)?,
            "--port" | "-p" => options.port = number(&arg, &value(&arg)?)?,
            "--udp-port" | "-U" => options.udp_port = number(&arg, &value(&arg)?)?,
            "--memory-limit-mb" | "-m" => {
                let megabytes: usize = number(&arg, &value(&arg)?)?;
                options.config.memory_limit = megabytes
                    .checked_mul(1024 * 1024)
                    .ok_or_else(|| format!("{arg}: {megabytes} MiB does not fit in memory"))?;
            }
            "--item-size-max" | "-I" => options.config.item_size_max = number(&arg, &value(&arg)?)?,
            "--disable-evictions" | "-M" => options.config.evictions = false,
            "--strict-keys" => options.config.strict_keys = true,
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    options.config.tcp_port = options.port;
    options.config.udp_port = options.udp_port;
    options.config.process_id = std::process::id();
    options.config.hash_seed = RandomState::new().build_hasher().finish();
    Ok(options)
}

/// Whole seconds since the unix epoch (the library's notion of time).
fn now() -> u32 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

/// Locks the store, carrying on if another thread panicked while holding it.
fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serves one TCP client until it closes or the protocol says to close.
fn serve_tcp(mut stream: TcpStream, store: Arc<Mutex<Store>>) {
    lock(&store).connection_opened();
    let _ = stream.set_nodelay(true);
    let mut connection = Connection::new();
    let mut input = vec![0u8; 64 * 1024];
    let mut output = Vec::new();
    loop {
        let received = match stream.read(&mut input) {
            Ok(0) => break,
            Ok(received) => received,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        output.clear();
        let action = connection.feed(&input[..received], &mut lock(&store), now(), &mut output);
        if !output.is_empty() && stream.write_all(&output).is_err() {
            break;
        }
        if action == Action::Close {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    lock(&store).connection_closed();
}

/// Answers UDP requests until the socket fails.
fn serve_udp(socket: UdpSocket, store: Arc<Mutex<Store>>) {
    let mut datagram = vec![0u8; 65536];
    loop {
        let (received, peer) = match socket.recv_from(&mut datagram) {
            Ok(received) => received,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => {
                eprintln!("memcached-host: UDP receive failed: {error}");
                return;
            }
        };
        let replies = udp::handle_datagram(&datagram[..received], &mut lock(&store), now());
        for reply in replies {
            // A reply lost to a full socket buffer is what UDP clients expect to handle.
            let _ = socket.send_to(&reply, peer);
        }
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("memcached-host: {message}");
            return ExitCode::from(2);
        }
    };
    let store = Arc::new(Mutex::new(Store::new(options.config, now())));
    let address = format!("{}:{}", options.listen, options.port);
    let listener = match TcpListener::bind(&address) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("memcached-host: cannot listen on TCP {address}: {error}");
            return ExitCode::FAILURE;
        }
    };
    if options.udp_port != 0 {
        let udp_address = format!("{}:{}", options.listen, options.udp_port);
        match UdpSocket::bind(&udp_address) {
            Ok(socket) => {
                let store = Arc::clone(&store);
                thread::spawn(move || serve_udp(socket, store));
            }
            Err(error) => {
                eprintln!("memcached-host: cannot bind UDP {udp_address}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    {
        let store = Arc::clone(&store);
        thread::spawn(move || loop {
            thread::sleep(Duration::from_secs(1));
            lock(&store).crawl(now(), CRAWL_BUDGET);
        });
    }
    eprintln!(
        "memcached-host: serving on tcp {address}{}, {} MiB",
        if options.udp_port != 0 {
            format!(" and udp port {}", options.udp_port)
        } else {
            String::new()
        },
        options.config.memory_limit / (1024 * 1024)
    );
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let store = Arc::clone(&store);
                thread::spawn(move || serve_tcp(stream, store));
            }
            Err(error) => eprintln!("memcached-host: accept failed: {error}"),
        }
    }
    ExitCode::SUCCESS
}
