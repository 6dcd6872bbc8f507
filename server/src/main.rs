//! The `cidb` command: data generation, import, statistics, integrity check, lookups,
//! segments, hashed exports, and the HTTP/JSON query server.

mod api;
mod cli;
mod history;
mod http;
mod keys;
mod push;

/// sled allocates heavily on every write; mimalloc makes ingest markedly faster than the
/// system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let serving = matches!(args.command, cli::Command::Serve(_) | cli::Command::Demo(_));
    tracing_subscriber_init(serving);
    let json = args.global.json;
    if let Err(e) = cli::run(args) {
        if let Some(bad) = e.downcast_ref::<cli::ExprError>() {
            // A bad expression: its position (and, on a terminal, the line with a caret).
            if json {
                match serde_json::to_string(&bad.to_json()) {
                    Ok(line) => eprintln!("{line}"),
                    Err(_) => eprintln!("error: {bad}"),
                }
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

fn tracing_subscriber_init(serving: bool) {
    // Logs go to stderr: as `RUST_LOG` says, or for the server warnings and errors (a 500
    // answer carries only an error id; the error is logged under it). They never carry
    // personal data.
    let filter = match std::env::var("RUST_LOG") {
        Ok(filter) => filter,
        Err(_) if serving => "warn".to_string(),
        Err(_) => return,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
}
