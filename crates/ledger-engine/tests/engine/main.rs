//! Engine tests against the real sled store in temporary directories.

mod support;

mod batches;
mod business_date;
mod checkpoints;
mod concurrency;
mod history;
mod lifecycle;
mod model;
mod recorded_time;
mod retained;
mod subscription;
mod usage_codes;
mod year_points;
