//! The `airlock` command line, beside the gateway it runs: the clients an
//! operator uses (`approvals`, `audit`, `sessions`, `policy explain`, `policy replay`, `roles suggest`, `quota show`).
//!
//! The binary lives in this crate, not in `airlock-gateway`, because it also
//! runs the demo (`airlock-demo`, which starts a gateway in front of the
//! simulated Azure): the gateway library stays free of the simulator, clap
//! and these clients.

pub mod approvals;
pub mod audit;
pub mod ca;
mod error_text;
pub mod explain;
pub mod quota;
pub mod replay;
pub mod roles;

pub use error_text::error_text;
