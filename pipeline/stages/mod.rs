//! The compute stages: the lake as of a day -> the marts, in the staging
//! area. Each stage is one function that [`crate::run::compute`] calls in
//! order, with typed inputs and outputs:
//!
//! 1. [`lake`]: the lake as this run sees it, one scan per table;
//! 2. and 3. [`views`]: the lake tables as they stood at the end of
//!    `--as-of` (later rows dropped, later rectifications not yet known,
//!    ratings removed on appeal left out of `scored_ratings`), the cases
//!    derived and the ratings rated one calendar year at a time, with what
//!    the last run kept reused through the two [`Stores`];
//! 4. [`indicator_values`]: every indicator definition over the views,
//!    with the improvement plans verified against the values between the
//!    definitions that do not read the plans and those that do;
//! 5. and 6. [`scores_and_trends`]: scores, closed periods, trends and
//!    cross-checks;
//! 9. [`people`]: staff measures and the monthly 服务之星;
//!
//! and [`Marts`] writes what they make. A stage reads the lake and the
//! policy and calls the models; it never publishes (that is `run`) and
//! never renders.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate, NaiveTime};
use chrono_tz::Tz;
use polars::prelude::*;

use crate::frame::{self, instant, Builder};
use crate::ingest::{self, tables};
use crate::lake::{self, MonthScan, OutDir, Spill, Staging};
use crate::model::measure::{self, Indicator};
use crate::model::raters::Window;
use crate::model::satisfaction;
use crate::model::{cases, closed_periods, escalation, followups, plans, raters, score, trends};
use crate::nightly::bad_reviews::BadReviewStore;
use crate::nightly::cases::{self as case_reuse, CaseStore};
use crate::nightly::raters::{CarriedItem, OpenSums, PeriodResults, RaterStore, YearResults};
use crate::policy::LoadedPolicy;
use crate::progress::Progress;
use crate::time::calendar::WorkCalendar;
use crate::time::periods::{Grain, Period};
use crate::time::{local_day, local_to_utc};

mod catalog;
pub use catalog::*;
mod views;
pub use views::*;
mod rate;
use rate::*;
mod scores;
pub use scores::*;
mod marts;
pub use marts::*;
mod people;
pub use people::*;

#[cfg(test)]
mod tests;
