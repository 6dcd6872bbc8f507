//! Suppression list operations on an open engine: import, list, delete, and loading the
//! lists (with the profiles they match) on open.

use crate::base::error::StorageError;
use crate::identity::Links;
use crate::index::suppression::{List, SuppressionLists};
use crate::input::normalize::forms::SUPPRESSIBLE_TAGS;
use crate::storage::Store;

/// Lists the engine keeps for erasures and objections; never deleted.
pub const RESERVED_LISTS: [&str; 2] = [
    crate::privacy::forget::ERASED_LIST,
    crate::privacy::objections::OBJECTIONS_LIST,
];

/// Profiles a digest matches: every link of an email or phone form keyed over it.
pub(crate) fn profiles_of(store: &Store, links: &Links, digest: &[u8; 32], list: &mut List) {
    for tag in SUPPRESSIBLE_TAGS {
        list.members
            .extend(links.holders(&store.link_key(tag, digest)));
    }
}

/// Reads every list from the store and matches it against the links.
pub(crate) fn load_lists(store: &Store, links: &Links) -> Result<SuppressionLists, StorageError> {
    let mut lists = SuppressionLists::default();
    for entry in store.suppression_entries() {
        let (name, digest, kind) = entry?;
        let list = lists.lists.entry(name).or_default();
        if list.digests.insert(digest) {
            list.kinds[usize::from(kind.clamp(1, 3) - 1)] += 1;
            profiles_of(store, links, &digest, list);
        }
    }
    lists.recompute_any();
    Ok(lists)
}
