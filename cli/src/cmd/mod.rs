//! One module per command.

pub mod inspect;
pub mod model;
pub mod run;
