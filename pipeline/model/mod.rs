//! The models: pure computations from frames of the lake (as of a day) to
//! the rows of the marts. Each module takes its inputs as arguments and
//! returns frames or rows; none reads or writes files, and none knows
//! about the last run (that is `nightly`) or the order of the stages (that
//! is `stages` and `run`).

pub mod cases;
pub mod closed_periods;
pub mod escalation;
pub mod followups;
pub mod measure;
pub mod plans;
pub mod raters;
pub mod satisfaction;
pub mod score;
pub mod staff;
pub mod trends;
