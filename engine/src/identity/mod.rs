//! Layer 3, identity: the link table from identifiers to live profiles. The rules
//! (`crate::input::rules`) say which identifiers link; resolution itself runs in the write
//! path (`crate::write`), which applies them to the identity graph.

mod links;

pub(crate) use links::Links;
