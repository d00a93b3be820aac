//! `lightchain-profiler`: what a package costs to run, measured and predicted.
//!
//! [`profile`] measures execution, witness generation, proving and verification (and peak
//! memory) over many runs at several input sizes, and fits the cost curve `seconds = fixed +
//! per_gas · gas` by least squares. [`estimate`] quotes a task (gas, fee, predicted time,
//! memory) without proving: it is what a node's `lc_estimateGas` answers. [`plot`] draws the
//! measured points, the fitted curve and its error band as SVG or PNG.

pub mod estimate;
pub mod fit;
pub mod plot;
pub mod profile;

pub use estimate::{Estimate, estimate};
pub use fit::CostCurve;
pub use profile::{Profile, ProfileOptions, SizePoint, profile};

/// Errors of the profiler.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Aivm(#[from] lightchain_aivm::AivmError),
    #[error(transparent)]
    Package(#[from] lightchain_packager::PackageError),
    #[error("{0}")]
    Invalid(String),
    #[error("plot: {0}")]
    Plot(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = ProfileError> = std::result::Result<T, E>;
