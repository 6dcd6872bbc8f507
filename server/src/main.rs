//! The `cidb` command: data generation, import, statistics, integrity check, lookups,
//! segments, hashed exports, and the HTTP/JSON query server.

mod cli;
mod http;
mod keys;
mod render;

/// sled allocates heavily on every write; mimalloc makes ingest markedly faster than the
/// system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() {
    tracing_subscriber_init();
    let args = cli::Cli::parse();
    let json = args.global.json;
    if let Err(e) = cli::run(args) {
        if let Some(bad) = e.downcast_ref::<cli::ExprError>() {
            // A bad expression: its position (and, on a terminal, the line with a caret).
            if json {
                eprintln!("{}", bad.to_json());
            } else {
                eprintln!("error: {}", bad.render());
            }
            std::process::exit(2);
        }
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}

fn tracing_subscriber_init() {
    // Logs go to stderr only when RUST_LOG is set; they never carry personal data.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
}
