//! One module per subcommand, each a clap `Args` struct with `fn run`.

pub mod bench;
pub mod build;
pub mod doctor;
pub mod import;
pub mod new;
pub mod ops;
pub mod serve;
pub mod wasi_run;
