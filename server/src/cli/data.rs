//! Commands on data: generate, import, stats, check, lookup.

use super::{output, Global};
use crate::api;
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use engine::{Generator, ImportOptions, IngestReport, Lookup};
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of persons to generate (each yields 1-4 records).
    #[arg(long, default_value_t = 10_000)]
    pub persons: u64,
    /// Random seed; the same seed gives the same file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Mean events per person (Zipf-like counts over the three years before the
    /// reference time)
    #[arg(long, default_value_t = engine::DEFAULT_EVENTS_PER_PERSON)]
    pub events_per_person: f64,
    /// Write live traffic instead: `--events` events in small records (one identifier, a
    /// few page views, opens and purchases) for the persons an earlier run with the same
    /// `--persons` and `--seed` created
    #[arg(long, requires = "events")]
    pub events_only: bool,
    /// Events to write with `--events-only`
    #[arg(long)]
    pub events: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// JSON Lines, one record per line.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import (`-` for standard input).
    pub file: PathBuf,
    /// Source for records that name none (CSV: rows without a source column).
    #[arg(long)]
    pub source: Option<String>,
    /// File format (default: from the extension, `.csv` is CSV, anything else JSON Lines).
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// CSV: map a column onto a field, e.g. `--map "E-mail=email"` (repeatable).
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    pub maps: Vec<String>,
    /// Compact the storage after the import (as `cidb compact`): a large first import
    /// leaves about half its storage as old versions of the profiles it rewrote.
    #[arg(long)]
    pub compact: bool,
    /// JSON Lines file: apply the records in file order. By default the file is read
    /// twice: first to group the records that can touch one profile, then group by
    /// group (each in file order), which gives the same profiles (but for their ids)
    /// with far fewer rewrites.
    #[arg(long)]
    pub in_file_order: bool,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct LookupArgs {
    /// Find by email.
    #[arg(long)]
    pub email: Option<String>,
    /// Find by phone (national formats use --default-region).
    #[arg(long)]
    pub phone: Option<String>,
    /// Find by profile id (merged ids redirect).
    #[arg(long)]
    pub id: Option<u32>,
    /// Find by any identifier, as TYPE=VALUE (e.g. crm_id=C-1).
    #[arg(long, value_name = "TYPE=VALUE")]
    pub identifier: Option<String>,
}

pub fn generate(global: &Global, args: GenerateArgs) -> anyhow::Result<()> {
    let bar = output::progress_bar(
        Some(args.persons),
        global.json || args.out.is_none(),
        "persons",
    );
    let mut progress = |done: u64| bar.set_position(done);
    if !(args.events_per_person.is_finite() && args.events_per_person >= 0.0) {
        anyhow::bail!("--events-per-person must be a number of 0 or more");
    }
    let generator =
        Generator::new(args.persons, args.seed).with_events_per_person(args.events_per_person);
    let write = |w: &mut dyn std::io::Write,
                 progress: &mut dyn FnMut(u64)|
     -> std::io::Result<engine::GenerateSummary> {
        match (args.events_only, args.events) {
            (true, Some(events)) => generator.write_events_only(events, w, progress),
            _ => generator.write_jsonl(w, progress),
        }
    };
    let summary = match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = BufWriter::new(file);
            let s = write(&mut w, &mut progress)?;
            w.flush()?;
            s
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            let s = write(&mut w, &mut progress)?;
            w.flush()?;
            s
        }
    };
    bar.finish_and_clear();
    if let Some(path) = &args.out {
        if global.json {
            output::json(&api::data::Generated::new(&summary, path.clone()))?;
        } else {
            eprintln!(
                "wrote {} records ({} events) of {} persons to {}",
                summary.records,
                summary.events,
                summary.persons,
                path.display()
            );
        }
    }
    Ok(())
}

pub fn import(global: &Global, args: ImportArgs) -> anyhow::Result<()> {
    let mut options = ImportOptions::default();
    if let Some(s) = &args.source {
        options = options.with_source(s.clone());
    }
    for m in &args.maps {
        let Some((col, field)) = m.split_once('=') else {
            bail!("--map {m:?}: expected COLUMN=FIELD");
        };
        options = options.with_csv_rename(col, field);
    }
    let format = args.format.unwrap_or(
        if args
            .file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            FileFormat::Csv
        } else {
            FileFormat::Jsonl
        },
    );
    let db = global.open()?;
    if args.in_file_order {
        options = options.in_file_order();
    }
    let stdin = args.file.as_os_str() == "-";
    let (file, size) = if stdin {
        (None, None)
    } else {
        let mut file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        // Resumable: a rerun after a crash skips what the interrupted run applied.
        // The file's identity and modification time too: a file changed since the crash
        // (even in the middle, which the fingerprint does not read) starts over.
        let identity = file.metadata().ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino(), m.mtime(), m.mtime_nsec())
        });
        let meaning = format!(
            "{format:?}\0{:?}\0{:?}\0{identity:?}",
            args.source, args.maps
        );
        let key = engine::input_fingerprint(&mut file, meaning.as_bytes())
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        options = options.resumable(key);
        (Some(file), size)
    };
    let grouped = file.is_some() && format == FileFormat::Jsonl && !args.in_file_order;
    // A grouped import reads the file twice: the bar covers both passes.
    let bar = output::progress_bar(
        size.map(|s| if grouped { 2 * s } else { s }),
        global.json,
        "",
    );
    let mut progress = |p: engine::Progress| {
        bar.set_position(p.scanned + p.bytes);
        if p.records == 0 && p.bytes == 0 && p.scanned > 0 {
            bar.set_message("grouping records by person");
        } else {
            bar.set_message(format!("{} records", p.records));
        }
    };
    let report = match (format, file) {
        (FileFormat::Jsonl, Some(file)) => db.import_jsonl_file(&file, &options, &mut progress),
        (FileFormat::Jsonl, None) => db.import_jsonl(
            BufReader::with_capacity(1 << 20, std::io::stdin()),
            &options,
            &mut progress,
        ),
        (FileFormat::Csv, Some(file)) => db.import_csv(file, &options, &mut progress),
        (FileFormat::Csv, None) => db.import_csv(std::io::stdin(), &options, &mut progress),
    }
    .with_context(|| format!("import of {} stopped", args.file.display()))?;
    bar.finish_and_clear();
    if let Some(lines) = report.resumed_skipped_lines {
        let through = report
            .resumed_after_line
            .map(|line| format!(" (every line up to {line} among them)"))
            .unwrap_or_default();
        eprintln!(
            "resumed an interrupted import of this file: its {lines} lines applied before were left out{through}"
        );
    }
    if args.compact {
        let compacted = db.close_and_compact().context("compacting the storage")?;
        eprintln!("{}", compaction_summary(&compacted));
    } else {
        db.close_for_fast_open().context("closing the database")?;
    }
    if global.json {
        output::json(&api::ingest::IngestReport::from(&report))
    } else {
        print_report(&report);
        Ok(())
    }
}

fn print_report(r: &IngestReport) {
    println!("records:          {}", r.records);
    println!("accepted:         {}", r.accepted);
    println!("new profiles:     {}", r.new_profiles);
    println!("updated profiles: {}", r.updated_profiles);
    println!("merges:           {}", r.merged_profiles);
    println!("rejected:         {}", r.rejected_count);
    for rej in r.rejected.iter().take(20) {
        let field = rej
            .field
            .as_deref()
            .map(|f| format!("{f}: "))
            .unwrap_or_default();
        println!("  line {}: {field}{}", rej.line, rej.reason);
    }
    println!("warnings:         {}", r.warning_count);
    for w in r.warnings.iter().take(20) {
        println!("  line {}: {}: {}", w.line, w.field, w.reason);
    }
    for (source, fields) in &r.dropped_by_scope {
        let list: Vec<String> = fields.iter().map(|(f, n)| format!("{f} ×{n}")).collect();
        println!("dropped by {source} scope policy: {}", list.join(", "));
    }
}

pub fn stats(global: &Global) -> anyhow::Result<()> {
    let db = global.open()?;
    let s = db.stats();
    if global.json {
        return output::json(&api::data::Stats::from(&s));
    }
    println!("profiles:        {}", s.profiles);
    println!("profile ids:     {}", s.profile_ids);
    println!("records:         {}", s.records);
    println!("merges:          {}", s.merges);
    println!("events:          {}", s.events);
    println!(
        "term bitmaps:    {} ({} bytes)",
        s.indexes.term_bitmaps, s.indexes.term_bytes
    );
    println!(
        "numeric indexes: {} ({} slices)",
        s.indexes.numeric_indexes, s.indexes.numeric_slices
    );
    println!(
        "event keys:      {} ({} entries)",
        s.indexes.event_keys, s.indexes.event_entries
    );
    println!("disk bytes:      {}", s.disk_bytes);
    Ok(())
}

/// `cidb compact`: rewrites the closed database's storage with only its live data.
pub fn compact(global: &Global) -> anyhow::Result<()> {
    let report = engine::Engine::compact(&global.data)
        .with_context(|| format!("compacting {}", global.data.display()))?;
    if global.json {
        return output::json(&api::data::CompactReport::from(&report));
    }
    println!("{}", compaction_summary(&report));
    Ok(())
}

fn compaction_summary(r: &engine::CompactReport) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    format!(
        "storage compacted: {} keys ({:.1} MB of keys and values), {:.1} MB -> {:.1} MB",
        r.keys,
        mb(r.live_bytes),
        mb(r.bytes_before),
        mb(r.bytes_after)
    )
}

pub fn check(global: &Global) -> anyhow::Result<()> {
    let db = global.open()?;
    let report = db.check()?;
    if global.json {
        output::json(&api::data::CheckReport::from(&report))?;
    } else {
        println!(
            "checked {} profiles and {} events",
            report.profiles, report.events
        );
        for p in &report.problems {
            println!("problem: {p}");
        }
    }
    if !report.is_clean() {
        bail!("check found {} problem(s)", report.problems.len());
    }
    Ok(())
}

impl LookupArgs {
    /// The lookup these options describe.
    pub fn lookup(&self) -> anyhow::Result<Lookup> {
        Ok(if let Some(e) = &self.email {
            Lookup::Email(e.clone())
        } else if let Some(p) = &self.phone {
            Lookup::Phone(p.clone())
        } else if let Some(id) = self.id {
            Lookup::Id(id)
        } else if let Some(spec) = &self.identifier {
            let Some((kind, value)) = spec.split_once('=') else {
                bail!("--identifier {spec:?}: expected TYPE=VALUE");
            };
            Lookup::Identifier(kind.to_string(), value.to_string())
        } else {
            bail!("give one of --email, --phone, --id or --identifier")
        })
    }
}

pub fn lookup(global: &Global, args: LookupArgs) -> anyhow::Result<()> {
    let how = args.lookup()?;
    let db = global.open()?;
    let Some(view) = db.lookup(&how)? else {
        bail!("no profile found");
    };
    let view = api::profiles::ProfileView::from(&view);
    if global.json {
        output::json(&view)
    } else {
        println!("{}", serde_json::to_string_pretty(&view)?);
        Ok(())
    }
}
