//! rust_sample: reference Tokio/axum HTTP API with a selectable allocator.

mod alloc;
mod server;
mod stress;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

const USAGE: &str = "\
usage:
  rust_sample --version
  rust_sample [serve] [--bind ADDR] [--port N] [--workers N]
  rust_sample stress --threads N --pattern local|cross|steady|cache|realloc
                     [--ops M] [--size BYTES] [--seconds S]
    N worker threads in total for every pattern (cross: N >= 2, half producers, half consumers)";

fn version_line() -> String {
    format!(
        "{} {} allocator={} target={} libc={} allocator_version={}",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        alloc::NAME,
        alloc::TARGET,
        alloc::LIBC,
        alloc::version()
    )
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("rust_sample: {msg}\n{USAGE}");
    ExitCode::from(2)
}

/// Fetch the value following a `--flag` (also accepts `--flag=value`).
fn take_value(
    flag: &str,
    inline: Option<String>,
    it: &mut impl Iterator<Item = String>,
) -> Result<String, String> {
    inline
        .or_else(|| it.next())
        .ok_or_else(|| format!("missing value for {flag}"))
}

fn parse<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("invalid value for {flag}: {v:?}"))
}

fn split_flag(arg: String) -> (String, Option<String>) {
    match arg.split_once('=') {
        Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
        _ => (arg, None),
    }
}

fn cmd_serve(args: impl Iterator<Item = String>) -> Result<ExitCode, String> {
    let mut bind: IpAddr = IpAddr::from([0, 0, 0, 0]);
    let mut port: u16 = match std::env::var("PORT") {
        Ok(p) if !p.trim().is_empty() => parse("PORT", p.trim())?,
        _ => 8080,
    };
    let mut workers: Option<usize> = None;
    let mut it = args;
    while let Some(arg) = it.next() {
        let (flag, inline) = split_flag(arg);
        match flag.as_str() {
            "--bind" => bind = parse(&flag, &take_value(&flag, inline, &mut it)?)?,
            "--port" => port = parse(&flag, &take_value(&flag, inline, &mut it)?)?,
            "--workers" => workers = Some(parse(&flag, &take_value(&flag, inline, &mut it)?)?),
            other => return Err(format!("unknown serve option {other:?}")),
        }
    }
    let code = server::serve(SocketAddr::new(bind, port), workers);
    Ok(ExitCode::from(code as u8))
}

/// One JSON line; field order is part of the output contract.
#[derive(serde::Serialize)]
struct StressReport {
    mode: &'static str,
    pattern: &'static str,
    threads: usize,
    /// Worker OS threads the run spawned: always `threads`.
    os_threads: usize,
    ops: u64,
    size: usize,
    seconds: f64,
    ops_per_sec: f64,
    allocator: &'static str,
    libc: &'static str,
}

fn cmd_stress(args: impl Iterator<Item = String>) -> Result<ExitCode, String> {
    let mut cfg = stress::Config {
        threads: 1,
        pattern: stress::Pattern::Local,
        ops: stress::DEFAULT_OPS,
        size: stress::DEFAULT_SIZE,
        seconds: None,
    };
    let mut it = args;
    while let Some(arg) = it.next() {
        let (flag, inline) = split_flag(arg);
        let v = take_value(&flag, inline, &mut it)?;
        match flag.as_str() {
            "--threads" => cfg.threads = parse(&flag, &v)?,
            "--ops" => cfg.ops = parse(&flag, &v.replace('_', ""))?,
            "--size" => cfg.size = parse(&flag, &v)?,
            "--seconds" => cfg.seconds = Some(parse(&flag, &v)?),
            "--pattern" => {
                cfg.pattern = stress::Pattern::parse(&v).ok_or_else(|| {
                    let names: Vec<_> = stress::Pattern::ALL.iter().map(|p| p.name()).collect();
                    format!("invalid --pattern {v:?} ({})", names.join("|"))
                })?
            }
            other => return Err(format!("unknown stress option {other:?}")),
        }
    }
    if cfg.threads == 0 {
        return Err("--threads must be >= 1".into());
    }
    if cfg.ops == 0 && cfg.seconds.is_none() {
        return Err("--ops must be >= 1".into());
    }
    let out = match stress::run(&cfg) {
        Ok(out) => out,
        Err(msg) => {
            // A valid command line asking for what the pattern cannot do: one line, no usage.
            eprintln!("rust_sample: stress: {msg}");
            return Ok(ExitCode::from(2));
        }
    };
    let secs = out.elapsed.as_secs_f64();
    let line = StressReport {
        mode: "stress",
        pattern: cfg.pattern.name(),
        threads: cfg.threads,
        os_threads: out.os_threads,
        ops: out.ops,
        size: cfg.size,
        seconds: secs,
        ops_per_sec: if secs > 0.0 {
            out.ops as f64 / secs
        } else {
            0.0
        },
        allocator: alloc::NAME,
        libc: alloc::LIBC,
    };
    let line = serde_json::to_string(&line).map_err(|e| e.to_string())?;
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let result = match args.peek().map(String::as_str) {
        Some("--version" | "-V" | "version") => {
            println!("{}", version_line());
            return ExitCode::SUCCESS;
        }
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("serve") => {
            args.next();
            cmd_serve(args)
        }
        Some("stress") => {
            args.next();
            cmd_stress(args)
        }
        Some(a) if a.starts_with("--") => cmd_serve(args),
        Some(other) => Err(format!("unknown command {other:?}")),
        None => cmd_serve(args),
    };
    match result {
        Ok(code) => code,
        Err(msg) => usage_error(&msg),
    }
}
