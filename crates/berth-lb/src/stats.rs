//! Traffic counters (being written).
#[derive(Default)]
pub struct Stats {}
