//! Everything gitca writes for people and machines: the report, the redactor, and the
//! encoders that keep a value from a pull request from becoming syntax where it lands.

pub mod encode;
pub mod redact;
pub mod report;
pub mod usage;
