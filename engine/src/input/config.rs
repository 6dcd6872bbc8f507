//! Engine configuration.

use crate::input::rules::IdentityRules;
use crate::input::scope::ScopePolicies;

/// How an engine normalizes, resolves and persists. Build with [`Config::default`] and the
/// `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// ISO alpha-2 region for national phone formats when a record has no country.
    pub default_region: Option<String>,
    /// Identity rules.
    pub identity: IdentityRules,
    /// Scope policies per source.
    pub scopes: ScopePolicies,
    /// Write an index checkpoint once this many profiles changed since the last one
    /// (or half the live profiles, whichever is larger). Bounds crash-recovery work.
    pub checkpoint_min_dirty: usize,
    /// Records per committed batch in the file importers (from 2,048 up, the first three
    /// batches of an import ramp up: 1/8, 1/4, 1/2 of it).
    pub import_batch_records: usize,
    /// Parser threads in the importers (0 = number of cores).
    pub import_threads: usize,
    /// Keep exported rows in memory until their profile changes (about 300–400 bytes per
    /// exported profile and platform); makes repeated exports and syncs much faster.
    pub export_cache: bool,
    /// A batch with at least this many events-only records stores their event chunks in
    /// the event journal (a few large values) rather than under a key each; smaller
    /// batches, such as most HTTP ingests, write keys as before so that the journal's
    /// per-batch sets stay few.
    pub journal_min_chunks: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_region: None,
            identity: IdentityRules::default(),
            scopes: ScopePolicies::default(),
            checkpoint_min_dirty: 200_000,
            import_batch_records: 20_000,
            import_threads: 0,
            export_cache: true,
            journal_min_chunks: 1024,
        }
    }
}

impl Config {
    /// Sets the default phone region.
    pub fn with_default_region(mut self, region: &str) -> Self {
        self.default_region = Some(region.to_ascii_uppercase());
        self
    }

    /// Sets the identity rules.
    pub fn with_identity_rules(mut self, rules: IdentityRules) -> Self {
        self.identity = rules;
        self
    }

    /// Sets the scope policies.
    pub fn with_scope_policies(mut self, scopes: ScopePolicies) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets the checkpoint threshold.
    pub fn with_checkpoint_min_dirty(mut self, n: usize) -> Self {
        self.checkpoint_min_dirty = n.max(1);
        self
    }

    /// Sets the number of events-only records from which a batch writes to the event
    /// journal (at least 1).
    pub fn with_journal_min_chunks(mut self, n: usize) -> Self {
        self.journal_min_chunks = n.max(1);
        self
    }

    /// Turns the export row cache on or off.
    pub fn with_export_cache(mut self, on: bool) -> Self {
        self.export_cache = on;
        self
    }

    /// Sets the importers' batch size (records per committed batch).
    pub fn with_import_batch_records(mut self, n: usize) -> Self {
        self.import_batch_records = n.clamp(1, crate::base::limits::MAX_BATCH_RECORDS);
        self
    }
}
