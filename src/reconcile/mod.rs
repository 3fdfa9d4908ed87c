//! Bringing the repository to its declared state: `plan` (pure), `policy` (what a CSR may ask),
//! `apply` (sign and write), and `review`, everything `check` and `plan` show a reviewer.

pub mod apply;
pub mod fuzzing;
pub mod keyscan;
pub mod plan;
pub mod policy;
pub mod review;
pub mod status;
